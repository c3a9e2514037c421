/* streetwatch review: keyboard triage. Hand-written, no dependencies; the pages work without it. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var help = $("help"), list = $("case-list"), head = $("case"), busy = false, mode = null;
  /* the page's language: its messages come from the server's catalogue (body data-i18n), never from here */
  var MSG = JSON.parse(document.body.dataset.i18n || "{}");
  function msg(key, values) {
    return (MSG[key] || key).replace(/%\((\w+)\)s/g, function (_m, name) { return values && name in values ? values[name] : ""; });
  }

  function typing(el) {
    if (!el || !el.tagName) return false;
    if (el.isContentEditable) return true;
    if (el.tagName === "INPUT") return el.type !== "checkbox" && el.type !== "radio";
    return el.tagName === "TEXTAREA" || el.tagName === "SELECT";
  }
  function go(url) { if (url && !busy) { busy = true; window.location.href = url; } }
  function note(text) {
    var p = $("flash");
    if (!p) { p = document.createElement("p"); p.id = "flash"; p.className = "flash"; document.querySelector("main").before(p); }
    p.textContent = text;
  }
  function submit(id) {
    var form = $(id);
    if (!form || busy) return;
    var button = form.querySelector("button[type=submit]"), fieldset = form.querySelector("fieldset");
    if ((button && button.disabled) || (fieldset && fieldset.disabled)) { note(msg("not_possible")); return; }
    busy = true;
    if (form.requestSubmit) form.requestSubmit(); else form.submit();
  }
  function toggleHelp(show) { if (help) help.hidden = show === undefined ? !help.hidden : !show; }
  if ($("help-toggle")) $("help-toggle").addEventListener("click", function () { toggleHelp(); });

  /* list page: j/k moves a highlight, Enter opens */
  var rows = list ? Array.prototype.slice.call(list.querySelectorAll("tbody tr[data-href]")) : [], sel = -1;
  function select(i) {
    if (!rows.length) return;
    if (sel >= 0) rows[sel].classList.remove("selected");
    sel = Math.max(0, Math.min(rows.length - 1, i));
    rows[sel].classList.add("selected");
    rows[sel].scrollIntoView({ block: "nearest" });
  }
  rows.forEach(function (row) {
    row.addEventListener("click", function (e) { if (!e.target.closest("a")) go(row.dataset.href); });
  });

  /* case page: split check boxes move with j/k, Enter splits */
  function splitKeys(e) {
    var boxes = Array.prototype.slice.call(document.querySelectorAll(".split-box")), i = boxes.indexOf(e.target);
    if (e.key === "j" || e.key === "ArrowDown") { if (boxes[i + 1]) boxes[i + 1].focus(); e.preventDefault(); return true; }
    if (e.key === "k" || e.key === "ArrowUp") { if (boxes[i - 1]) boxes[i - 1].focus(); e.preventDefault(); return true; }
    if (e.key === "Enter") { submit("form-split"); e.preventDefault(); return true; }
    return false;
  }

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var t = e.target;
    if (e.key === "Escape") {
      mode = null; toggleHelp(false);
      var armed = document.querySelector(".armed"); if (armed) armed.classList.remove("armed");
      if (t && t.blur) t.blur();
      return;
    }
    if (typing(t)) return; /* Enter in a field submits its own form */
    if (t && t.classList && t.classList.contains("split-box") && splitKeys(e)) return;
    if (e.key === "?") { toggleHelp(); e.preventDefault(); return; }
    if (e.key === "/") { var f = document.querySelector("#filters select, #filters input"); if (f) { f.focus(); e.preventDefault(); } return; }
    if (list) {
      if (e.key === "j" || e.key === "ArrowDown") { select(sel + 1); e.preventDefault(); }
      else if (e.key === "k" || e.key === "ArrowUp") { select(sel - 1); e.preventDefault(); }
      else if ((e.key === "Enter" || e.key === "o") && rows.length && (t === document.body || t === document.documentElement || !t.closest("a,button"))) {
        go(rows[sel >= 0 ? sel : 0].dataset.href); e.preventDefault();
      }
      return;
    }
    if (!head) return;
    if (mode === "reject" && /^[1-9]$/.test(e.key)) {
      var radio = document.querySelector('#form-reject input[data-key="' + e.key + '"]');
      if (radio) { radio.checked = true; submit("form-reject"); }
      e.preventDefault(); return;
    }
    var k = e.key, field;
    if (k === "c") submit("form-confirm");
    else if (k === "r") submit("form-resolve");
    else if (k === "x") {
      var fs = document.querySelector("#form-reject fieldset");
      if (!fs || fs.disabled) { note(msg("not_possible")); return; }
      mode = "reject"; $("form-reject").classList.add("armed"); $("form-reject").scrollIntoView({ block: "nearest" });
      note(msg("reject_keys", { n: document.querySelectorAll("#form-reject input[data-key]").length }));
    }
    else if (k === "d") { field = $("due-at"); if (field && !field.disabled) { field.focus(); } }
    else if (k === "m") { field = $("merge-other"); if (field) { field.focus(); } }
    else if (k === "s") { field = document.querySelector(".split-box"); if (field) { field.focus(); } }
    else if (k === "j" || k === "n" || k === "ArrowRight") go(head.dataset.next || head.dataset.list);
    else if (k === "k" || k === "p" || k === "ArrowLeft") go(head.dataset.prev);
    else if (k === "u") go(head.dataset.list);
    else return;
    e.preventDefault();
  });
})();
