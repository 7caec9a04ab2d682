// The API docs page of a service (/projects/P/services/S/docs): Swagger UI over the service's
// OpenAPI as the hub serves it to this page, "Try it out" through the page's try-it route with the
// page's XSRF token (the signed-in session; no token in the page).
(function () {
  'use strict';
  function start() {
    var root = document.getElementById('swagger');
    if (!root || typeof window.SwaggerUIBundle !== 'function') {
      var missing = document.getElementById('docs-missing');
      if (missing) missing.hidden = false;
      return;
    }
    var xsrf = root.getAttribute('data-xsrf') || '';
    window.SwaggerUIBundle({
      url: root.getAttribute('data-spec'),
      domNode: root,
      deepLinking: false,
      supportedSubmitMethods: ['post'],
      requestInterceptor: function (request) {
        request.headers['X-XSRFToken'] = xsrf;
        return request;
      },
    });
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
