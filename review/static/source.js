/* streetwatch review: stepping through a source's frames from the keyboard: `,` and `.` the previous and next frame
   (photo), `[` and `]` ten seconds back and on. The links do the same without the script. */
(function () {
  "use strict";
  if (!document.getElementById("source")) return;
  var keys = { ",": "frame-prev", ".": "frame-next", "[": "back-10", "]": "fwd-10" };
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var t = e.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA")) return;
    var link = keys[e.key] && document.getElementById(keys[e.key]);
    if (link) { e.preventDefault(); window.location.assign(link.href); }
  });
})();
