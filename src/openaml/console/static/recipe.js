// Checks the model wizard's recipe as the user types (half a second after the last key), as
// CreateMLModel will: against the training datasource's schema, by the console's /check/recipe.
(function () {
  "use strict";
  var area = document.getElementById("recipe");
  if (!area) { return; }
  var base = document.body.getAttribute("data-base") || "";
  var shown = document.getElementById("recipe-check");
  var token = document.querySelector("#model-form input[name=csrf_token]").value;
  var timer = null, sent = 0;
  function check() {
    var mine = ++sent;
    if (!area.value.trim()) { shown.textContent = "Empty: the service chooses the default recipe."; shown.className = "small muted"; return; }
    var body = new URLSearchParams({csrf_token: token, datasource: area.getAttribute("data-datasource"), recipe: area.value});
    fetch(base + "/check/recipe", {method: "POST", body: body, credentials: "same-origin"})
      .then(function (response) {
        return response.json().then(function (found) {
          // refused before the check (an expired form): the console's reason, not a verdict
          if (!response.ok) { throw new Error(found.error || response.statusText); }
          return found;
        });
      })
      .then(function (found) {
        if (mine !== sent) { return; }  // an older check answering late
        shown.textContent = found.ok ? "The recipe is valid." : "Not valid: " + found.error;
        shown.className = found.ok ? "small" : "small field-error";
        area.setAttribute("aria-invalid", found.ok ? "false" : "true");
      })
      .catch(function (error) {
        if (mine !== sent) { return; }
        shown.textContent = "The recipe could not be checked now: " + error.message;
        shown.className = "small field-error";
      });
  }
  area.addEventListener("input", function () { window.clearTimeout(timer); timer = window.setTimeout(check, 500); });
  check();
})();
