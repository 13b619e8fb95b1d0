// Live instance states over Server-Sent Events. Pages work without it.
(function () {
  "use strict";
  var cells = document.querySelectorAll("[data-state-for]");
  if (!cells.length || !window.EventSource) { return; }
  var ids = [];
  cells.forEach(function (c) { ids.push(c.getAttribute("data-state-for")); });
  var onInstancePage = document.getElementById("operations") !== null;
  var params = new URLSearchParams(window.location.search);
  var q = new URLSearchParams();
  ids.forEach(function (id) { q.append("id", id); });
  if (params.get("sig")) { q.set("expires", params.get("expires")); q.set("sig", params.get("sig")); }
  var source = new EventSource("/ui/events?" + q.toString());
  // Ids are anyone's text ("__proto__", "constructor"): no inherited keys.
  var first = Object.create(null);
  source.addEventListener("states", function (e) {
    var states = JSON.parse(e.data);
    cells.forEach(function (c) {
      var id = c.getAttribute("data-state-for");
      if (!Object.prototype.hasOwnProperty.call(states, id)) { return; }
      var s = states[id];
      if (onInstancePage) {
        // A changed operation changes the timeline: load it again.
        if (first[id] === undefined) { first[id] = s.op; } else if (first[id] !== s.op) { source.close(); window.location.reload(); return; }
      }
      c.textContent = s.state;
    });
  });
})();
