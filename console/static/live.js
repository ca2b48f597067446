// Keeps the dashboard live: the console sends a `calls` event when a call ends, and htmx
// fetches the summary again (hx-trigger="calls from:body" on #summary).
(function () {
  if (!window.EventSource) return;
  const state = document.getElementById("live-state");
  const source = new EventSource("/events");
  source.addEventListener("calls", function () {
    document.body.dispatchEvent(new Event("calls"));
    if (state) state.textContent = "Updated " + new Date().toLocaleTimeString() + ".";
  });
  source.onerror = function () {
    if (state) state.textContent = "Reconnecting to live updates...";
  };
})();
