// /docs: Swagger UI over the app's own /openapi.json (served from /static/vendor, no CDN).
window.addEventListener("DOMContentLoaded", () => {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    validatorUrl: null, // never ask an outside validator
    deepLinking: true,
    persistAuthorization: false,
  });
});
