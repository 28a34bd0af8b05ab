/* Brand kit pages: live preview in the sandboxed iframe, preview widths, upload progress,
   character counters. No inline script anywhere; the preview endpoint sends its own strict CSP. */
(function () {
  "use strict";

  // The rich-text toolbar speaks the page's language: each editor announces itself before
  // it builds its toolbar from Trix.config.lang, and the wording (from Django, in
  // #trix-lang) is set then. This script loads before Trix so it never misses an editor.
  document.addEventListener("trix-before-initialize", function () {
    var trixLang = document.getElementById("trix-lang");
    if (trixLang && window.Trix) Object.assign(window.Trix.config.lang, trixLang.dataset);
  });

  // Live preview: the form is posted into the iframe (so the response keeps its own CSP).
  var form = document.querySelector("form[data-preview-url]");
  var frame = document.getElementById("preview");
  function refresh() {
    if (!form || !frame) return;
    var action = form.getAttribute("action"), target = form.getAttribute("target");
    var enctype = form.getAttribute("enctype");
    form.setAttribute("action", form.dataset.previewUrl);
    form.setAttribute("target", "preview");
    form.setAttribute("enctype", "application/x-www-form-urlencoded");
    form.submit();
    if (action === null) form.removeAttribute("action"); else form.setAttribute("action", action);
    if (target === null) form.removeAttribute("target"); else form.setAttribute("target", target);
    if (enctype === null) form.removeAttribute("enctype"); else form.setAttribute("enctype", enctype);
  }
  var timer = null;
  function later() { clearTimeout(timer); timer = setTimeout(refresh, 500); }
  if (form && frame) {
    form.addEventListener("input", later);
    form.addEventListener("change", function (event) {
      if (event.target.matches("[data-reload]")) {
        window.location.search = "?unit=" + encodeURIComponent(event.target.value);
        return;
      }
      later();
    });
    document.addEventListener("trix-change", later);
    document.addEventListener("trix-file-accept", function (event) { event.preventDefault(); });
    window.addEventListener("load", refresh);
  }

  // Desktop / mobile widths.
  document.querySelectorAll("[data-preview-width]").forEach(function (button) {
    button.addEventListener("click", function () {
      document.querySelectorAll("[data-preview-width]").forEach(function (b) { b.classList.remove("active"); });
      button.classList.add("active");
      frame.classList.toggle("preview-mobile", button.dataset.previewWidth === "mobile");
      frame.classList.toggle("preview-desktop", button.dataset.previewWidth !== "mobile");
    });
  });

  // Characters left in text zones.
  document.querySelectorAll("input[data-counter]").forEach(function (input) {
    var out = document.querySelector('[data-count-for="' + input.id + '"]');
    function count() { if (out) out.textContent = "(" + input.value.length + "/" + input.maxLength + ")"; }
    input.addEventListener("input", count);
    count();
  });

  // Library upload with a progress bar.
  var upload = document.getElementById("asset-upload");
  if (upload) {
    upload.addEventListener("submit", function (event) {
      event.preventDefault();
      var bar = upload.querySelector(".progress"), fill = upload.querySelector(".progress-bar");
      var errors = document.getElementById("upload-errors");
      var request = new XMLHttpRequest();
      request.open("POST", upload.action || window.location.pathname);
      request.setRequestHeader("Accept", "application/json");
      request.upload.addEventListener("progress", function (e) {
        if (!e.lengthComputable) return;
        var pct = Math.round((e.loaded / e.total) * 100);
        fill.style.width = pct + "%";
        fill.textContent = pct + " %";
      });
      request.addEventListener("load", function () {
        var body = {};
        try { body = JSON.parse(request.responseText); } catch (e) { body = {errors: [request.statusText]}; }
        if (body.ok) { window.location.reload(); return; }
        bar.classList.add("d-none");
        errors.textContent = (body.errors || []).join(" ");
      });
      request.addEventListener("error", function () { errors.textContent = upload.dataset.networkError; });
      errors.textContent = "";
      bar.classList.remove("d-none");
      request.send(new FormData(upload));
    });
  }
})();
