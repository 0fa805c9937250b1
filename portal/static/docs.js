// NXEM portal: Swagger UI of the API description (the page allows no inline script).
"use strict";

(function () {
  const el = document.getElementById("swagger-ui");
  if (el && window.SwaggerUIBundle) {
    window.SwaggerUIBundle({
      url: el.dataset.openapi, dom_id: "#swagger-ui", layout: "BaseLayout", deepLinking: true,
      presets: [window.SwaggerUIBundle.presets.apis, window.SwaggerUIBundle.SwaggerUIStandalonePreset],
    });
  }
})();
