// Start GOV.UK Frontend's components (loaded as a module from the hub itself).
import { initAll } from "/static/vendor/govuk/govuk-frontend.min.js";
initAll();
