// Asks before a form with data-confirm is submitted (the delete buttons). A static file, not an
// onsubmit attribute: the console's Content-Security-Policy runs no inline script.
(function () {
  "use strict";
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  });
})();
