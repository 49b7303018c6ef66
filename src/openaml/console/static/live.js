// Live status of the entities on a page whose jobs run: asks the console's /status every few
// seconds and updates their status badges and a model's training progress in place, so that
// nothing the user is typing is lost (the page once reloaded itself every 5 s). When the page's
// own entity finishes, the page reloads to show its results, unless a field has been edited:
// then a notice offers the reload instead.
(function () {
  "use strict";
  var ACTIVE = {PENDING: true, INPROGRESS: true};
  var base = document.body.getAttribute("data-base") || "";
  var note = document.getElementById("live-note");
  var edited = false;
  var delay = 2000;
  document.addEventListener("input", function () { edited = true; });

  function watched() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-entity]")).filter(function (badge) {
      return ACTIVE[badge.getAttribute("data-status")];
    });
  }

  function show(badge, state) {
    badge.textContent = state.status;
    badge.className = "status status-" + String(state.status).toLowerCase();
    badge.setAttribute("data-status", state.status);
  }

  function progress(state) {
    var line = document.getElementById("pass-progress");
    var bar = document.querySelector("progress[aria-labelledby=pass-progress]");
    if (!state.progress || !line) { return; }
    line.textContent = state.progress.text;
    line.className = "";
    if (bar) { bar.max = state.progress.of; bar.value = state.progress.pass; }
  }

  function followLog() {  // the job log page: the log as it grows
    var log = document.getElementById("job-log");
    if (!log) { return; }
    fetch(window.location.pathname + "?raw=1", {credentials: "same-origin"})
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (text) {
        if (text === null || !text) { return; }
        log.textContent = text;
        log.hidden = false;
        var none = document.getElementById("no-log");
        if (none) { none.hidden = true; }
      })
      .catch(function () { /* the next poll tries again */ });
  }

  function finished() {
    if (!edited) { window.location.reload(); return; }
    if (note) {
      note.textContent = "The job has finished. ";
      var link = document.createElement("a");
      link.href = window.location.href;
      link.textContent = "Reload to see its results";
      note.appendChild(link);
    }
  }

  function poll() {
    var badges = watched();
    if (!badges.length) { if (note) { note.hidden = true; } return; }
    var query = badges.map(function (b) { return "e=" + encodeURIComponent(b.getAttribute("data-entity")); });
    fetch(base + "/status?" + query.join("&"), {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (response) { if (!response.ok) { throw new Error(response.status); } return response.json(); })
      .then(function (found) {
        var ownDone = false;
        badges.forEach(function (badge) {
          var state = found[badge.getAttribute("data-entity")];
          if (!state) { return; }
          if (badge.id === "page-status") { progress(state); followLog(); }
          if (state.status !== badge.getAttribute("data-status")) {
            show(badge, state);
            if (badge.id === "page-status" && !ACTIVE[state.status]) { ownDone = true; }
          }
        });
        delay = 2000;
        if (ownDone) { finished(); } else { window.setTimeout(poll, delay); }
      })
      .catch(function () { delay = Math.min(delay * 2, 30000); window.setTimeout(poll, delay); });
  }

  window.setTimeout(poll, delay);
})();
