// The drift view: GET /api/v1/drift drawn as one bar per input (the Kolmogorov-Smirnov distance
// between the inputs logged in the window and the serving model's training data, 0 to 1), per
// family, with the share of answers that carried a warning.

import { ApiError, getJSON } from "./api.js";
import { draw } from "./charts.js";

/** The bars of a report: one per family and input with a statistic. */
export function driftRows(report) {
  const rows = [];
  for (const [family, found] of Object.entries(report.families || {})) {
    for (const [input, figures] of Object.entries(found.inputs || {})) {
      if (figures.ks_statistic !== null) rows.push({ family, input, ks: figures.ks_statistic, rows: figures.rows });
    }
  }
  return rows;
}

function summary(report) {
  const hours = (report.window_s / 3600).toFixed(report.window_s < 3600 ? 2 : 0);
  const parts = Object.entries(report.families || {}).map(([family, found]) => {
    const warned = found.warned_share === null ? "no answers" : `${(100 * found.warned_share).toFixed(1)} % with warnings`;
    const reference = found.reference && !found.reference.matches_model ? "; the reference table is not this model's training data" : "";
    return `${family}: ${found.requests} answers, ${warned}${reference}`;
  });
  return `Last ${hours} h. ${parts.join(". ")}.`;
}

export async function showDrift(chart, note) {
  let report;
  try {
    report = await getJSON("/api/v1/drift");
  } catch (error) {
    note.textContent = error instanceof ApiError && error.status === 404 ? "The prediction log is off (PREDICTION_LOG=false)." : error.message;
    chart.textContent = "";
    return;
  }
  note.textContent = summary(report);
  const rows = driftRows(report);
  if (!rows.length) {
    chart.textContent = "No input has enough logged answers against a matching training table to compare yet.";
    return;
  }
  await draw("drift", chart, {
    data: { values: rows },
    facet: { row: { field: "family", type: "nominal", title: null } },
    spec: {
      width: 520,
      mark: { type: "bar", tooltip: true },
      encoding: {
        y: { field: "input", type: "nominal", sort: "-x", title: null },
        x: { field: "ks", type: "quantitative", scale: { domain: [0, 1] }, title: "KS distance to the training data" },
        color: { value: "#3b6ea8" },
      },
    },
    resolve: { scale: { y: "independent" } },
  }, "drift");
}
