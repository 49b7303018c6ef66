// Uploads the chosen file into the object store (PUT, the file streamed as the body, the CSRF
// token in a header: a form post would be buffered), then opens the datasource wizard on it.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form) { return; }
  var base = document.body.getAttribute("data-base") || "";
  var status = document.getElementById("upload-status");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var file = document.getElementById("upload-file").files[0];
    if (!file) { status.textContent = "Choose a file first."; return; }
    var folder = document.getElementById("upload-folder").value.trim();
    if (folder && folder.charAt(folder.length - 1) !== "/") { folder += "/"; }
    var uri = folder + file.name;
    var token = form.querySelector("input[name=csrf_token]").value;
    var button = document.getElementById("upload-button");
    button.disabled = true;
    function send(overwrite) {
      status.textContent = "Uploading " + file.name + " (" + file.size.toLocaleString("en-US") + " bytes)…";
      return fetch(base + "/upload?uri=" + encodeURIComponent(uri) + (overwrite ? "&overwrite=1" : ""),
                   {method: "PUT", body: file, credentials: "same-origin", headers: {"X-CSRF-Token": token}})
        .then(function (response) {
          return response.json().catch(function () { return {error: response.statusText}; })
            .then(function (answer) { return {ok: response.ok, answer: answer}; });
        });
    }
    send(false)
      .then(function (result) {
        // an object of that name is there already: replacing it changes what its datasources read
        if (!result.ok && result.answer.exists &&
            window.confirm(uri + " exists already. Replace it? Datasources made from it would read the new file.")) {
          return send(true);
        }
        return result;
      })
      .then(function (result) {
        if (!result.ok) { throw new Error(result.answer.error || "the upload failed"); }
        status.textContent = "Uploaded to " + result.answer.uri + ".";
        window.location.href = base + "/create/datasource?location=" + encodeURIComponent(result.answer.uri);
      })
      .catch(function (error) { status.textContent = "Not uploaded: " + error.message; button.disabled = false; });
  });
})();
