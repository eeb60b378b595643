// Result cards (value, unit, 95 % interval, quality, warnings) and, on request, the per-prediction
// contributions as a bar chart. Each value carries its full precision in data-value.

import { draw } from "./charts.js";
import { el } from "./form.js";
import { decimalsFor, fmt, fmtInterval, humanise, targetDescription, targetLabel, unitText } from "./format.js";

/** {target: prediction} of a material or hardness response (hardness: the first load). */
export function predictionsOf(response) {
  if (Array.isArray(response.predictions)) {
    const out = {};
    for (const entry of response.predictions.slice(0, 1)) out.vickers_hardness = entry.vickers_hardness;
    return out;
  }
  return response.predictions;
}

function card(target, p) {
  const decimals = decimalsFor(p.value, p.confidence_interval);
  const unit = unitText(p.unit);
  const quality = p.prediction_quality;
  return el("article", { class: "card", "data-target": target }, [
    el("h3", { text: targetLabel(target), title: targetDescription(target) || null }),
    el("p", { class: "value" }, [
      el("span", { "data-testid": `value-${target}`, "data-value": String(p.value), text: fmt(p.value, decimals) }),
      unit ? el("span", { class: "unit", text: ` ${unit}` }) : null,
    ]),
    p.confidence_interval
      ? el("p", { class: "interval", title: "the model's 95 % prediction interval" }, [
          "95 %: ",
          el("span", {
            "data-testid": `interval-${target}`,
            "data-low": String(p.confidence_interval[0]),
            "data-high": String(p.confidence_interval[1]),
            text: fmtInterval(p.confidence_interval, decimals),
          }),
        ])
      : null,
    el("p", { class: "card-foot" }, [
      quality ? el("span", { class: `quality q-${quality}`, text: quality }) : null,
      p.uncertainty !== null && p.uncertainty !== undefined
        ? el("span", { class: "spread", title: "relative half-width of the 95 % interval", text: `±${fmt(100 * p.uncertainty, 1)} %` })
        : null,
    ]),
  ]);
}

export function renderResult(root, response, family) {
  root.textContent = "";
  const predictions = predictionsOf(response);
  const cards = el("div", { class: "cards", "data-testid": "result-cards" });
  for (const [target, p] of Object.entries(predictions)) cards.append(card(target, p));
  const heading = family === "hardness"
    ? `${response.formula} at ${fmt(response.predictions[0].load_n)} N`
    : `${humanise(family)} properties`;
  root.append(el("h2", { text: heading }), cards);
  if (response.warnings && response.warnings.length) {
    root.append(
      el("div", { class: "warnings", "data-testid": "warnings", role: "status" }, [
        el("h3", { text: "Warnings" }),
        el("ul", {}, response.warnings.map((w) => el("li", { text: w }))),
      ]),
    );
  }
  const info = response.model_info;
  root.append(
    el("p", {
      class: "model-info",
      text: `model ${info.name}:${info.version}, trained ${info.trained_at.slice(0, 10)} on ${info.training_samples.toLocaleString("en-US")} samples${response.cached ? " · cached answer" : ""}`,
    }),
  );
  if (response.feature_importance && response.contribution_base) {
    const box = el("section", { class: "contributions" }, [el("h3", { text: "What drives this prediction" })]);
    const choose = el("select", { id: "contribution-target", "aria-label": "target" });
    for (const target of Object.keys(predictions)) choose.append(el("option", { value: target, text: targetLabel(target) }));
    const chart = el("div", { class: "chart", "data-testid": "contributions-chart" });
    const note = el("p", { class: "hint" });
    box.append(el("label", { for: "contribution-target", text: "Target " }), choose, chart, note);
    root.append(box);
    const redraw = () => drawContributions(chart, note, response, choose.value, predictions[choose.value]);
    choose.addEventListener("change", redraw);
    redraw();
  }
}

const TOP_CONTRIBUTIONS = 12;

function drawContributions(node, note, response, target, prediction) {
  const rows = response.feature_importance
    .map((f) => ({ feature: f.name, category: f.category, contribution: f.contribution[target] || 0 }))
    .map((row) => ({ ...row, magnitude: Math.abs(row.contribution) }))
    .sort((a, b) => Math.abs(b.contribution) - Math.abs(a.contribution))
    .slice(0, TOP_CONTRIBUTIONS);
  const unit = unitText(prediction.unit);
  const base = response.contribution_base[target];
  note.textContent = `Base value ${fmt(base)} ${unit} plus the contributions of all features gives ${fmt(prediction.value)} ${unit}; the ${rows.length} largest are shown.`;
  const spec = {
    width: "container",
    height: { step: 20 },
    autosize: { type: "fit-x", contains: "padding" },
    data: { values: rows },
    mark: { type: "bar", tooltip: true },
    encoding: {
      y: { field: "feature", type: "nominal", sort: { field: "magnitude", op: "sum", order: "descending" }, title: null },
      x: { field: "contribution", type: "quantitative", title: `contribution (${unit || "dimensionless"})` },
      color: {
        condition: { test: "datum.contribution < 0", value: "#c2410c" },
        value: "#1d4ed8",
      },
    },
  };
  return draw("contributions", node, spec, `contributions-${target}`);
}
