/* The API docs page: Swagger UI on the vendored bundle, from a file (no inline script). */
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    // The default badge asks a third-party validator about our schema: off.
    validatorUrl: null
  });
})();
