/* streetwatch review: draws the cases of /export.geojson on a Web Mercator plane, over the bureau's unit grids
   (/grids.geojson, each with its count of the filtered cases) and live drones' flights (/flights.geojson: a line
   each, a live one ending in a marker, the page refreshing while one flies); tiles only when configured. */
(function () {
  "use strict";
  var box = document.getElementById("map"), svg = document.getElementById("map-svg"), NS = "http://www.w3.org/2000/svg";
  if (!box || !svg) return;
  var MSG = JSON.parse(document.body.dataset.i18n || "{}"), LANG = document.body.dataset.lang || "en";
  function msg(key, values) {
    return (MSG[key] || key).replace(/%\((\w+)\)s/g, function (_m, name) { return values && name in values ? values[name] : ""; });
  }
  function typeName(p) { return (p.code ? p.code + " " : "") + ((LANG === "zh" ? p.name_zh : p.name_en) || p.name_en || p.problem_type); }
  var PALETTE = ["#d7301f", "#2b8cbe", "#31a354", "#756bb1", "#e6550d", "#636363", "#c51b8a", "#8c6d31"];
  function el(name, attrs, parent) {
    var node = document.createElementNS(NS, name);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    (parent || svg).appendChild(node);
    return node;
  }
  function merc(lon, lat) {
    var s = Math.sin(lat * Math.PI / 180);
    return [(lon + 180) / 360, 0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)];
  }
  function unmerc(x, y) {
    return [x * 360 - 180, Math.atan(Math.sinh(Math.PI * (1 - 2 * y))) * 180 / Math.PI];
  }
  function niceStep(span) {
    var p = Math.pow(10, Math.floor(Math.log10(span / 4))), m = span / 4 / p;
    return p * (m >= 5 ? 5 : m >= 2 ? 2 : 1);
  }
  function load(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/geo+json" } })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); });
  }
  Promise.all([load(box.dataset.geojson), box.dataset.grids ? load(box.dataset.grids) : null,
               box.dataset.flights ? load(box.dataset.flights).catch(function () { return null; }) : null])
    .then(function (all) { draw(all[0], all[1], all[2]); })
    .catch(function (err) { document.getElementById("map-note").textContent = msg("cannot_load", { error: err.message }); });

  function polygons(geom) {  // a Polygon's or MultiPolygon's rings, as a list of polygons
    return !geom ? [] : geom.type === "Polygon" ? [geom.coordinates] : geom.type === "MultiPolygon" ? geom.coordinates : [];
  }

  function drawGrids(grids, px) {
    var feats = grids.features || [], layer = el("g", { "class": "unit-grids" });
    var most = Math.max.apply(null, [1].concat(feats.map(function (f) { return f.properties.count; })));
    var queue = box.dataset.gridQueue;
    feats.forEach(function (f) {
      var p = f.properties, d = "", left = Infinity, right = -Infinity, top = Infinity;
      polygons(f.geometry).forEach(function (poly, pi) {
        poly.forEach(function (ring, ri) {
          ring.forEach(function (c, i) {
            var at = px(merc(c[0], c[1]));
            d += (i ? "L" : "M") + at[0].toFixed(1) + " " + at[1].toFixed(1);
            if (pi === 0 && ri === 0) { left = Math.min(left, at[0]); right = Math.max(right, at[0]); top = Math.min(top, at[1]); }
          });
          d += "Z";
        });
      });
      var link = el("a", { href: "/map?" + (queue ? queue + "&" : "") + "grid=" + encodeURIComponent(p.code), "class": "grid-area" }, layer);
      el("path", { d: d, "fill-rule": "evenodd", "fill-opacity": p.count ? (0.08 + 0.35 * p.count / most).toFixed(2) : 0.03 }, link);
      el("title", {}, link).textContent = msg("grid", { code: p.code, name: p.name || "", head: p.head || "-", n: p.count });
      // the label inside the top edge of the first outline, clear of the points in its middle
      if (top < Infinity) el("text", { x: (left + right) / 2, y: top + 14, "text-anchor": "middle", "class": "grid-count" }, link).textContent = (p.name || p.code) + ": " + p.count;
    });
    if (feats.length && grids.outside) {
      var li = document.createElement("li");
      li.textContent = msg("outside_grids", { n: grids.outside });
      document.getElementById("legend").appendChild(li);
    }
  }

  function lines(flights) {  // each flight's track, as Web Mercator points (a drone just up has flown one: a Point)
    return ((flights && flights.features) || []).filter(function (f) { return f.geometry && (f.geometry.type === "LineString" || f.geometry.type === "Point"); })
      .map(function (f) {
        var coords = f.geometry.type === "Point" ? [f.geometry.coordinates] : f.geometry.coordinates;
        return { f: f, pts: coords.map(function (c) { return merc(c[0], c[1]); }) };
      });
  }

  function drawFlights(tracks, px) {
    var layer = el("g", { "class": "flights" }), live = false;
    tracks.forEach(function (tr) {
      var p = tr.f.properties, d = tr.pts.map(function (m, i) { var at = px(m); return (i ? "L" : "M") + at[0].toFixed(1) + " " + at[1].toFixed(1); }).join("");
      var g = el("g", { "class": "flight" + (p.live ? " live" : "") }, layer);
      el("path", { d: d, fill: "none", stroke: "#444", "stroke-width": 2, "stroke-dasharray": p.live ? "6 3" : "none" }, g);
      el("title", {}, g).textContent = msg(p.live ? "flight_live" : "flight", { camera: p.camera_id, start: p.started_at.slice(0, 16).replace("T", " "), n: p.case_ids.length });
      if (p.live) {
        var at = px(tr.pts[tr.pts.length - 1]);
        el("circle", { cx: at[0], cy: at[1], r: 5, fill: "#444" }, g);
        live = true;
      }
    });
    return live;
  }

  // While a drone flies the page reloads every LIVE_REFRESH_MS to show its track and cases as they come;
  // window.streetwatchMap says, once the map is drawn, whether a refresh is due and lets a test run it now.
  var LIVE_REFRESH_MS = 15000;
  function scheduleRefresh(live) {
    var timer = live ? setTimeout(function () { window.location.reload(); }, LIVE_REFRESH_MS) : null;
    window.streetwatchMap = { liveRefreshMs: live ? LIVE_REFRESH_MS : null,
                              refreshNow: function () { clearTimeout(timer); window.location.reload(); } };
  }

  function draw(gj, grids, flights) {
    var feats = (gj.features || []).filter(function (f) { return f.geometry && f.geometry.type === "Point"; });
    var W = box.clientWidth || 800, H = box.clientHeight || 520;
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    var outline = [];  // with no case to show, the grids frame the map
    ((grids && grids.features) || []).forEach(function (f) {
      polygons(f.geometry).forEach(function (poly) { poly[0].forEach(function (c) { outline.push(merc(c[0], c[1])); }); });
    });
    if (!feats.length) {
      el("text", { x: W / 2, y: outline.length ? 24 : H / 2, "text-anchor": "middle", "class": "empty" }).textContent = msg("no_points");
      if (!outline.length && !lines(flights).length) return scheduleRefresh(false);
    }
    var pts = feats.map(function (f) { return merc(f.geometry.coordinates[0], f.geometry.coordinates[1]); });
    var tracks = lines(flights), flown = [];
    tracks.forEach(function (tr) { flown = flown.concat(tr.pts); });
    var frame = pts.length || flown.length ? pts.concat(flown) : outline;
    var xs = frame.map(function (p) { return p[0]; }), ys = frame.map(function (p) { return p[1]; });
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs), y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
    var fit = Math.min(W / Math.max(x1 - x0, 1e-9), H / Math.max(y1 - y0, 1e-9)) * 0.8;
    var z = Math.max(1, Math.min(19, Math.floor(Math.log2(fit / 256))));
    var scale = 256 * Math.pow(2, z), cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
    function px(p) { return [(p[0] - cx) * scale + W / 2, (p[1] - cy) * scale + H / 2]; }
    var tiles = box.dataset.tiles;
    if (tiles) {
      var n = Math.pow(2, z), tx0 = Math.floor((cx - W / 2 / scale) * n), tx1 = Math.floor((cx + W / 2 / scale) * n);
      var ty0 = Math.floor((cy - H / 2 / scale) * n), ty1 = Math.floor((cy + H / 2 / scale) * n);
      for (var tx = tx0; tx <= tx1; tx++) for (var ty = Math.max(0, ty0); ty <= Math.min(n - 1, ty1); ty++) {
        var at = px([tx / n, ty / n]), wx = ((tx % n) + n) % n;
        el("image", { href: tiles.replace("{z}", z).replace("{x}", wx).replace("{y}", ty), x: at[0], y: at[1], width: 256, height: 256 });
      }
    } else {
      var nw = unmerc(cx - W / 2 / scale, cy - H / 2 / scale), se = unmerc(cx + W / 2 / scale, cy + H / 2 / scale);
      var step = niceStep(Math.max(se[0] - nw[0], nw[1] - se[1])), g = el("g", { "class": "grid" });
      for (var lon = Math.ceil(nw[0] / step) * step; lon <= se[0]; lon += step) {
        var a = px(merc(lon, 0)); el("line", { x1: a[0], y1: 0, x2: a[0], y2: H }, g);
        el("text", { x: a[0] + 3, y: H - 4 }, g).textContent = lon.toFixed(5).replace(/0+$/, "").replace(/\.$/, "");
      }
      for (var lat = Math.ceil(se[1] / step) * step; lat <= nw[1]; lat += step) {
        var b = px(merc(0, lat)); el("line", { x1: 0, y1: b[1], x2: W, y2: b[1] }, g);
        el("text", { x: 3, y: b[1] - 3 }, g).textContent = lat.toFixed(5).replace(/0+$/, "").replace(/\.$/, "");
      }
    }
    if (grids) drawGrids(grids, px);
    var live = tracks.length ? drawFlights(tracks, px) : false;
    var colours = {}, legend = document.getElementById("legend");
    feats.forEach(function (f, i) {
      var t = f.properties.problem_type;
      if (!(t in colours)) {
        colours[t] = PALETTE[Object.keys(colours).length % PALETTE.length];
        var li = document.createElement("li"), sw = document.createElement("span");
        sw.className = "swatch"; sw.dataset.colour = colours[t]; li.appendChild(sw); li.appendChild(document.createTextNode(" " + typeName(f.properties)));
        legend.appendChild(li);
      }
      var p = px(pts[i]), link = el("a", { href: "/cases/" + f.id + (box.dataset.queue ? "?" + box.dataset.queue : ""), "class": "case-point" });
      el("circle", { cx: p[0], cy: p[1], r: 7, fill: colours[t], "class": "st-" + f.properties.status }, link);
      el("title", {}, link).textContent = msg("point", { id: f.id, type: typeName(f.properties), status: MSG["status_" + f.properties.status] || f.properties.status, n: f.properties.sighting_count });
    });
    legend.querySelectorAll(".swatch").forEach(function (sw) {
      var dot = document.createElementNS(NS, "svg"); dot.setAttribute("width", 12); dot.setAttribute("height", 12);
      el("circle", { cx: 6, cy: 6, r: 5, fill: sw.dataset.colour }, dot); sw.appendChild(dot);
    });
    scheduleRefresh(live);
  }
})();
