// Sweep one numeric input across its accepted range (log-spaced when the catalogue says its range
// spans decades) and draw every target as a line with its 95 % band, the current material marked:
// one /batch call holding the grid and the current material. Ballistic: the threat's reference
// velocity as a line on the V50 panel. Hardness: the formula against the indentation load on a
// log axis (one hardness call with up to its maximum number of loads).

import { postJSON } from "./api.js";
import { draw } from "./charts.js";
import { fmt, humanise, targetLabel, withUnit } from "./format.js";

export const SWEEP_POINTS = 25;

/** The swept values: ``n`` points from low to high, geometric when ``log``. */
export function grid(low, high, n, log) {
  const out = [];
  for (let i = 0; i < n; i += 1) {
    const t = i / (n - 1);
    out.push(log && low > 0 ? low * Math.pow(high / low, t) : low + (high - low) * t);
  }
  return out;
}

/** The composition with ``phase`` at ``x`` and the other phases scaled to fill 1 - x. */
export function withPhase(composition, phase, x) {
  const others = Object.entries(composition).filter(([k, v]) => k !== phase && k !== "basis" && v > 0);
  const rest = others.reduce((sum, [, v]) => sum + v, 0);
  const out = composition.basis ? { basis: composition.basis } : {};
  if (x > 0) out[phase] = x;
  for (const [k, v] of others) if (1 - x > 0) out[k] = (v / rest) * (1 - x);
  return out;
}

function withValue(material, spec, x) {
  if (spec.block === "composition") return { ...material, composition: withPhase(material.composition || {}, spec.name, x) };
  const block = { ...(material[spec.block] || {}), [spec.name]: x };
  return { ...material, [spec.block]: block };
}

function failedRows(results) {
  return results.filter((r) => r.error);
}

export async function materialSweep(family, material, spec, catalogue) {
  if (spec.block === "composition") {
    const others = Object.entries(material.composition || {}).filter(([k, v]) => k !== spec.name && k !== "basis" && v > 0);
    if (!others.length) {
      const message = `to sweep the ${spec.name} fraction, the material needs another phase to fill the rest`;
      return { error: { status: 422, type: "validation_error", message, details: [{ field: "composition", message }] }, rows: [] };
    }
  }
  const xs = grid(spec.low, spec.high, SWEEP_POINTS, spec.log_scaled);
  const materials = xs.map((x) => withValue(material, spec, x)).concat([material]);
  const answer = await postJSON(`/api/v1/predict/${family}/batch`, { materials, include_uncertainty: true });
  const bad = failedRows(answer.results);
  if (bad.length) return { error: bad[0].error, rows: [] };
  const current = (material[spec.block] || {})[spec.name] ?? spec.default;
  const threat = family === "ballistic" ? (material.armor || {}).threat : undefined;
  const reference = threat ? catalogue.armor.threats[threat].reference_velocity_m_s : undefined;
  const rows = [];
  answer.results.forEach((result, i) => {
    const isCurrent = i === xs.length;
    for (const [target, p] of Object.entries(result.predictions)) {
      rows.push({
        x: isCurrent ? current : xs[i],
        target,
        panel: withUnit(targetLabel(target), p.unit),
        value: p.value,
        low: p.confidence_interval[0],
        high: p.confidence_interval[1],
        current: isCurrent,
        warned: result.warnings.length > 0,
        warning: result.warnings.join(" · "),
      });
    }
  });
  const warned = answer.results.slice(0, xs.length).filter((r) => r.warnings.length).length;
  return { rows, reference, threat, warnings: { current: answer.results[xs.length].warnings, warned, points: xs.length } };
}

export async function hardnessSweep(formulaBody, catalogue) {
  const spec = catalogue.formula.load;
  const n = catalogue.limits.max_loads - 1;
  const xs = grid(spec.low, spec.high, n, true);
  const current = formulaBody.load_n !== undefined ? formulaBody.load_n : spec.default;
  const answer = await postJSON("/api/v1/predict/hardness", { ...formulaBody, load_n: xs.concat([current]) });
  const rows = answer.predictions.map((entry, i) => ({
    x: entry.load_n,
    target: "vickers_hardness",
    panel: `Vickers hardness of ${answer.formula} (GPa)`,
    value: entry.vickers_hardness.value,
    low: entry.vickers_hardness.confidence_interval[0],
    high: entry.vickers_hardness.confidence_interval[1],
    current: i === xs.length,
  }));
  return { rows, warnings: { current: answer.warnings, warned: null }, loadDependence: answer.load_dependence };
}

const X_FORMAT = ".4~g";

const Y_MARGIN = 0.06; // of the span, above and below: a band never meets the frame

/** A panel's y range: every value, interval end and the reference inside it with a margin
 * (the band is never clipped); not below 0 when nothing drawn is. */
export function yDomain(rows, reference) {
  const ys = rows.flatMap((r) => [r.value, r.low, r.high]).concat(reference === undefined ? [] : [reference]);
  const finite = ys.filter(Number.isFinite);
  const low = Math.min(...finite);
  const high = Math.max(...finite);
  const margin = Y_MARGIN * (high - low || Math.abs(high) || 1);
  return [low >= 0 ? Math.max(0, low - margin) : low - margin, high + margin];
}

function panelSpec(panel, rows, xTitle, log, width, reference) {
  const x = { field: "x", type: "quantitative", title: xTitle, scale: log ? { type: "log", nice: false } : { zero: false, nice: false } };
  const domain = yDomain(rows.filter((r) => r.panel === panel), reference);
  const y = { field: "value", type: "quantitative", title: null, scale: { domain, nice: false, zero: false } };
  const layers = [
    {
      transform: [{ filter: "!datum.current" }],
      mark: { type: "area", opacity: 0.22, color: "#2563eb" },
      encoding: { x, y: { ...y, field: "low" }, y2: { field: "high" } },
    },
    {
      transform: [{ filter: "!datum.current" }],
      mark: { type: "line", color: "#1d4ed8", strokeWidth: 2 },
      encoding: { x, y },
    },
    {
      transform: [{ filter: "!datum.current" }],
      mark: { type: "point", filled: true, size: 22 },
      encoding: {
        x,
        y,
        color: { condition: { test: "datum.warned", value: "#d97706" }, value: "#1d4ed8" },
        tooltip: [
          { field: "x", title: xTitle, format: X_FORMAT },
          { field: "value", title: "value", format: X_FORMAT },
          { field: "low", title: "95 % low", format: X_FORMAT },
          { field: "high", title: "95 % high", format: X_FORMAT },
          { field: "warning", title: "warnings" },
        ],
      },
    },
  ];
  if (reference !== undefined) {
    layers.push({
      data: { values: [{ reference }] },
      mark: { type: "rule", color: "#b91c1c", strokeDash: [6, 4], strokeWidth: 1.5 },
      encoding: { y: { field: "reference", type: "quantitative" } },
    });
  }
  layers.push({
    transform: [{ filter: "datum.current" }],
    mark: { type: "point", filled: true, size: 100, color: "#ea580c", stroke: "white", strokeWidth: 1.5, opacity: 1 },
    encoding: {
      x,
      y,
      tooltip: [
        { field: "x", title: `current ${xTitle}`, format: X_FORMAT },
        { field: "value", title: "value", format: X_FORMAT },
      ],
    },
  });
  return {
    title: { text: panel, fontSize: 12, anchor: "start" },
    width,
    height: 170,
    transform: [{ filter: { field: "panel", equal: panel } }],
    layer: layers,
  };
}

/** One panel per target (its own y scale), in the family's order; the data set is named "points". */
export function sweepSpec(rows, xTitle, log, width, columns, reference) {
  const panels = [...new Set(rows.map((r) => r.panel))];
  const referencePanel = rows.find((r) => r.target === "v50_velocity");
  return {
    data: { name: "points", values: rows },
    columns,
    concat: panels.map((panel) =>
      panelSpec(panel, rows, xTitle, log, width, referencePanel && referencePanel.panel === panel ? reference : undefined),
    ),
  };
}

export async function drawSweep(node, result, xTitle, log) {
  const panels = new Set(result.rows.map((r) => r.panel)).size;
  const columns = panels > 1 && node.clientWidth > 700 ? 2 : 1;
  const width = Math.max(200, Math.floor((node.clientWidth - 30) / columns) - 75);
  return draw("sweep", node, sweepSpec(result.rows, xTitle, log, width, columns, result.reference), "sweep");
}

export function sweepTitle(spec) {
  return withUnit(humanise(spec.doc), spec.unit);
}

function significant(value) {
  return String(Number(value.toPrecision(3)));
}

/** The load law the values follow, with this compound's parameters as the answer gives them
 * (load_dependence: docs/science.md, "The load dependence"). */
export function loadLaw(law) {
  if (law.load_independent_gpa === undefined) {
    return `The model states no load law; a power law through these points: H = ${fmt(law.coefficient_gpa, 2)} GPa · (load / N)^${fmt(law.exponent, 3)}.`;
  }
  return (
    "Load law served: Li & Bradt's proportional specimen resistance (J. Mater. Sci. 28 (1993) 917), " +
    `H = H0 · (1 + √(1 + 4u))² / (4u), u = load / P*, with H0 = ${fmt(law.load_independent_gpa, 1)} GPa ` +
    `and P* = ${significant(law.characteristic_load_n)} N; below ${significant(law.plateau_load_n)} N, the lowest ` +
    `load it was fitted at, it is not extrapolated: H is held at ${fmt(law.plateau_gpa, 1)} GPa.`
  );
}

export function describe(result, spec) {
  const parts = [];
  if (result.reference) parts.push(`Dashed line: the reference velocity of ${result.threat.replace(/_/g, " ")}, ${fmt(result.reference, 0)} m/s.`);
  if (result.loadDependence) parts.push(loadLaw(result.loadDependence));
  parts.push("Orange point: the current material; amber points carry warnings (hover to read). Shaded: 95 % interval.");
  if (spec && spec.log_scaled) parts.push("Log axis (the range spans decades).");
  return parts.join(" ");
}
