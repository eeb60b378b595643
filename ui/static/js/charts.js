// Charts through the vendored Vega-Lite (vendor/, loaded as classic scripts before this module:
// the globals vega, vegaLite and vegaEmbed). Export as PNG or SVG from each chart's menu; the
// actions that would open a third-party site (the online editor) are off.

const EMBED_OPTIONS = {
  actions: { export: true, source: false, compiled: false, editor: false },
  renderer: "svg",
  tooltip: true,
  mode: "vega",
};
const CONFIG = {
  font: "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
  axis: { labelFontSize: 11, titleFontSize: 12, gridColor: "#e6e9ef" },
  legend: { labelFontSize: 11, titleFontSize: 12 },
  header: { labelFontSize: 12, labelFontWeight: 600 },
  view: { stroke: "#d5d9e0" },
};

const views = new Map();

/** Draw ``spec`` into ``node`` (replacing what was there); the Vega view is kept by ``name``. */
export async function draw(name, node, spec, downloadName) {
  const previous = views.get(name);
  if (previous) previous.finalize();
  node.textContent = "";
  // compiled here rather than by vega-embed, whose own compilation drew concatenated charts 0 px wide
  const compiled = window.vegaLite.compile(spec, { config: CONFIG }).spec;
  const result = await window.vegaEmbed(node, compiled, { ...EMBED_OPTIONS, downloadFileName: downloadName || name });
  views.set(name, result.view);
  return result.view;
}

export function view(name) {
  return views.get(name);
}
