// Swagger UI (vendored) on the service's own OpenAPI document. BentoML's description of a service
// served in development carries badges from third-party hosts; the page shows its own text in its
// place, and the online validator is off, so nothing is asked of any other host.
const DESCRIPTION =
  "Ceramic armor property prediction: mechanical, ballistic and hardness from a formula, each with its " +
  "calibrated 95 % interval. The web page is at [/ui/](/ui/); this document is [/docs.json](/docs.json).";

fetch("/docs.json")
  .then((response) => response.json())
  .then((spec) => {
    spec.info = { ...spec.info, title: "Ceramic armor property service", description: DESCRIPTION };
    delete spec.info.contact;
    if (spec.info.version === "None") delete spec.info.version; // BentoML's, for a service served from source
    window.ui = window.SwaggerUIBundle({
      spec,
      dom_id: "#swagger-ui",
      validatorUrl: null,
      deepLinking: true,
    });
  });
