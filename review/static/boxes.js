/* streetwatch review: the box editor on a case's frame or a source's frame. Drag to draw a box, a number key gives
   its class; b selects the next box, a number changes its class, Delete marks it wrong; Esc cancels. Each
   correction is one POST (X-CSRF-Token) with the frame's own fields (a case frame's data-sighting, a source frame's
   data-t) and a model box's data-model, then the page reloads on the same frame. Hand-written, no dependencies. */
(function () {
  "use strict";
  var section = document.getElementById("boxes");
  if (!section) return;
  var svg = document.getElementById("box-svg"), pending = document.getElementById("box-pending");
  var palette = document.getElementById("box-classes");
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var MSG = JSON.parse(document.body.dataset.i18n || "{}");
  var start = null, drawn = null, selected = -1, busy = false;
  function msg(key) { return MSG[key] || key; }
  function note(text) {
    var p = document.getElementById("flash");
    if (!p) { p = document.createElement("p"); p.id = "flash"; p.className = "flash"; document.querySelector("main").before(p); }
    p.textContent = text;
  }
  function groups() { return Array.prototype.slice.call(svg.querySelectorAll("g.box")); }
  function point(e) {
    var r = svg.getBoundingClientRect();
    return [Math.min(1, Math.max(0, (e.clientX - r.left) / r.width)), Math.min(1, Math.max(0, (e.clientY - r.top) / r.height))];
  }
  function show(a, b) {
    pending.setAttribute("x", Math.min(a[0], b[0]) * 1000); pending.setAttribute("y", Math.min(a[1], b[1]) * 1000);
    pending.setAttribute("width", Math.abs(b[0] - a[0]) * 1000); pending.setAttribute("height", Math.abs(b[1] - a[1]) * 1000);
  }
  function arm(on) { palette.classList.toggle("armed", on); }
  function cancel() {
    start = null; drawn = null; show([0, 0], [0, 0]); arm(false);
    groups().forEach(function (g) { g.classList.remove("selected"); }); selected = -1;
  }
  function classOfKey(key) {
    var li = palette.querySelector('li[data-key="' + key + '"]');
    return li ? li.dataset.class : null;
  }
  function send(fields) {
    if (busy) return;
    busy = true;
    var body = new URLSearchParams();
    ["sighting", "t"].forEach(function (k) { if (section.dataset[k]) body.set(k, section.dataset[k]); });
    Object.keys(fields).forEach(function (k) { body.set(k, fields[k]); });
    fetch(section.dataset.post, { method: "POST", credentials: "same-origin", body: body,
      headers: { "X-CSRF-Token": csrf, "Accept": "application/json" } })
      .then(function (r) { return r.json().then(function (j) { return [r.ok, j]; }); })
      .then(function (res) {
        if (!res[0]) { busy = false; note(res[1].detail || msg("box_not_saved")); return; }
        var url = new URL(window.location.href);
        if (section.dataset.sighting) url.searchParams.set("frame", section.dataset.sighting);
        if (section.dataset.t) url.searchParams.set("t", section.dataset.t);
        url.searchParams.set("flash", { draw: "box-drawn", relabel: "box-relabelled", wrong: "box-wrong" }[fields.action]);
        url.searchParams.set("saved", res[1].saved); /* a new URL each time: the page always loads again */
        url.hash = "boxes";
        window.location.replace(url.toString());
      })
      .catch(function (err) { busy = false; note(msg("box_not_saved") + " " + err); });
  }

  svg.addEventListener("mousedown", function (e) {
    if (e.button !== 0) return;
    cancel(); start = point(e); show(start, start); e.preventDefault();
  });
  window.addEventListener("mousemove", function (e) { if (start) show(start, point(e)); });
  window.addEventListener("mouseup", function (e) {
    if (!start) return;
    var end = point(e), a = start;
    start = null;
    if (Math.abs(end[0] - a[0]) < 0.004 || Math.abs(end[1] - a[1]) < 0.004) { cancel(); return; }
    drawn = [Math.min(a[0], end[0]), Math.min(a[1], end[1]), Math.max(a[0], end[0]), Math.max(a[1], end[1])];
    arm(true); note(msg("box_pick_class"));
  });

  /* capture: a key the editor uses never reaches the triage keys of app.js */
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var t = e.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA")) return;
    var used = true, cls;
    if (e.key === "Escape" && (drawn || selected >= 0)) { cancel(); note(msg("box_cancelled")); }
    else if (drawn && /^[0-9]$/.test(e.key)) {
      cls = classOfKey(e.key);
      if (cls) send({ action: "draw", "class": cls, x0: drawn[0], y0: drawn[1], x1: drawn[2], y1: drawn[3] });
    }
    else if (e.key === "b" || e.key === "B") {
      var all = groups();
      if (!all.length) return;
      drawn = null; show([0, 0], [0, 0]);
      all.forEach(function (g) { g.classList.remove("selected"); });
      selected = (selected + (e.key === "B" ? all.length - 1 : 1)) % all.length;
      all[selected].classList.add("selected"); arm(true);
      note(msg("box_selected").replace("%(class)s", all[selected].dataset.class));
    }
    else if (selected >= 0 && /^[0-9]$/.test(e.key)) {
      cls = classOfKey(e.key);
      if (cls) send({ action: "relabel", "class": cls, target: groups()[selected].dataset.target,
                      model: groups()[selected].dataset.model || "" });
    }
    else if (selected >= 0 && (e.key === "Delete" || e.key === "Backspace")) {
      send({ action: "wrong", target: groups()[selected].dataset.target, model: groups()[selected].dataset.model || "" });
    }
    else used = false;
    if (used) { e.preventDefault(); e.stopImmediatePropagation(); }
  }, true);
})();
