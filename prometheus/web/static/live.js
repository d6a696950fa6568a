// Live updates without a reload: one EventSource per page. Each "change" event makes
// htmx refresh the page's live region (hx-trigger="live from:body"); the region also
// refreshes every 30 s by itself, which keeps it current while the stream is down
// (EventSource reconnects on its own). The badge says which of the two is happening.
(function () {
  "use strict";
  var body = document.body;
  var badge = document.getElementById("live-status");
  if (!body.dataset.events || !window.EventSource || !badge) {
    return;
  }
  function show(state, text) {
    badge.className = "live " + state;
    badge.textContent = text;
  }
  var source = new EventSource(body.dataset.events);
  source.addEventListener("ready", function () {
    show("on", "live");
  });
  source.addEventListener("error", function () {
    show("off", "reconnecting; refreshing every 30 s");
  });
  source.addEventListener("change", function () {
    htmx.trigger(body, "live");
  });
})();
