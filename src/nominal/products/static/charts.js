// Draw every chart on the page from its Vega-Lite JSON with the hub's own vega-embed.
// The Content-Security-Policy forbids eval, so Vega runs its expressions through the
// interpreter (ast: true) instead of compiling them to functions; vega-embed's own
// stylesheet and action menu are switched off (the page offers a table and a CSV).
import { expressionInterpreter } from "/static/vendor/vega/vega-interpreter.js";

for (const el of document.querySelectorAll(".nominal-chart[data-spec]")) {
  const source = document.getElementById(el.dataset.spec);
  if (!source) continue;
  const spec = JSON.parse(source.textContent);
  window
    .vegaEmbed(el, spec, {
      ast: true,
      expr: expressionInterpreter,
      actions: false,
      defaultStyle: false,
      renderer: "svg",
      tooltip: false,
    })
    .then(() => el.setAttribute("data-rendered", "true"))
    .catch((error) => {
      el.setAttribute("data-error", String(error));
      el.textContent = "The chart could not be drawn; the table view below has the same figures.";
    });
}
