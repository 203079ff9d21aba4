/* Starts the API documentation viewer of /schema (Swagger UI) or /schema/redoc (Redoc).
   Both viewers are served from this site (see VENDORED.txt); nothing is fetched elsewhere:
   Swagger UI's online validator is off, Redoc uses the system's fonts. Redoc's search is off:
   it runs in a worker made from a blob, which the site's Content-Security-Policy refuses
   (Swagger UI's filter box finds operations by tag instead). */
(function () {
  "use strict";
  var root = document.getElementById("api-docs");
  if (!root) {
    return;
  }
  var specUrl = root.getAttribute("data-spec-url");
  var viewer = root.getAttribute("data-viewer");
  if (viewer === "swagger-ui" && window.SwaggerUIBundle) {
    window.SwaggerUIBundle({
      url: specUrl,
      domNode: root,
      deepLinking: true,
      filter: true,
      validatorUrl: null,
      presets: [window.SwaggerUIBundle.presets.apis],
      layout: "BaseLayout",
      persistAuthorization: false
    });
  } else if (viewer === "redoc" && window.Redoc) {
    var fonts = "system-ui, -apple-system, 'Segoe UI', Tahoma, sans-serif";
    window.Redoc.init(
      specUrl,
      {
        expandResponses: "200,201",
        disableSearch: true,
        theme: { typography: { fontFamily: fonts, headings: { fontFamily: fonts } } }
      },
      root
    );
  }
})();
