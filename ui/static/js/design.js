// The design view: a design request (JSON, prefilled with docs/design.md's example) sent to
// POST /api/v1/design answered as NDJSON, so the progress moves a generation at a time. The front
// is drawn Ashby-style (any two targets of the answer, each point's bars its 95 % intervals; the
// explore strategy's suggestions in another colour) and listed in a table, best first by the first
// objective, each row's inputs as the request body that gave it.

import { postJSONStream } from "./api.js";
import { draw } from "./charts.js";
import { el } from "./form.js";
import { targetLabel, withUnit } from "./format.js";

export const EXAMPLE = {
  fixed: { armor: { tile_thickness: 10, backing: "aluminum_6061_t6", backing_thickness: 6, threat: "7.62x51_m80" } },
  free: {
    composition: ["SiC", "B4C", "Al2O3"],
    "processing.sintering_temperature": [1800, 2100],
    "microstructure.porosity": [0.0, 0.05],
  },
  constraints: ["density_high <= 3.3"],
  objectives: [
    { target: "v50_velocity_low", goal: "maximize" },
    { target: "density", goal: "minimize" },
  ],
  max_evaluations: 1000,
  seed: 1,
};

/** The target an objective reads (v50_velocity_low -> v50_velocity). */
export function baseTarget(quantity, targets) {
  if (targets.includes(quantity)) return quantity;
  return quantity.replace(/_(low|high)$/, "");
}

function point(entry, kind, index, x, y) {
  const px = entry.predictions[x];
  const py = entry.predictions[y];
  return {
    kind,
    label: `${kind === "front" ? "#" : "s"}${index + 1}`,
    x: px.value,
    xlo: px.confidence_interval[0],
    xhi: px.confidence_interval[1],
    y: py.value,
    ylo: py.confidence_interval[0],
    yhi: py.confidence_interval[1],
  };
}

export class Design {
  constructor(catalogue) {
    this.catalogue = catalogue;
    this.answer = null;
  }

  /** Run ``spec``; ``onProgress(progress)`` per generation; the answer is kept and returned. */
  async run(spec, onProgress) {
    this.spec = spec;
    this.answer = null;
    await postJSONStream("/api/v1/design", spec, (line) => {
      if (line.progress) onProgress(line.progress);
      else this.answer = line;
    });
    if (!this.answer) throw new Error("the search ended without an answer");
    return this.answer;
  }

  entries() {
    return this.answer ? this.answer.front.concat(this.answer.suggestions || []) : [];
  }

  targets() {
    const first = this.entries()[0];
    return first ? Object.keys(first.predictions) : [];
  }

  /** The two targets to draw first: the objectives' (or the first objective and density). */
  defaultAxes() {
    const targets = this.targets();
    const picked = (this.spec.objectives || []).map((o) => baseTarget(o.target, targets)).filter((t) => targets.includes(t));
    const axes = [...new Set(picked.concat(["density", ...targets]))];
    return [axes[0], axes[1]];
  }

  chartSpec(x, y, width) {
    const front = this.answer.front.map((e, i) => point(e, "front", i, x, y));
    const suggested = (this.answer.suggestions || []).map((e, i) => point(e, "suggestion", i, x, y));
    const title = (t) => withUnit(targetLabel(t), this.catalogue.units[t]);
    const ex = { field: "x", type: "quantitative", title: title(x), scale: { zero: false } };
    const ey = { field: "y", type: "quantitative", title: title(y), scale: { zero: false } };
    const colour = { field: "kind", type: "nominal", title: null, scale: { domain: ["front", "suggestion"], range: ["#1d4ed8", "#d97706"] } };
    return {
      width,
      height: 360,
      data: { name: "points", values: front.concat(suggested) },
      layer: [
        { mark: { type: "rule", opacity: 0.5 }, encoding: { x: { ...ex, field: "xlo" }, x2: { field: "xhi" }, y: ey, color: colour } },
        { mark: { type: "rule", opacity: 0.5 }, encoding: { x: ex, y: { ...ey, field: "ylo" }, y2: { field: "yhi" }, color: colour } },
        {
          mark: { type: "point", filled: true, size: 60 },
          encoding: {
            x: ex,
            y: ey,
            color: colour,
            tooltip: [
              { field: "label", title: "candidate" },
              { field: "x", title: targetLabel(x), format: ".4~g" },
              { field: "y", title: targetLabel(y), format: ".4~g" },
            ],
          },
        },
      ],
    };
  }

  drawFront(node, x, y) {
    const width = Math.max(260, node.clientWidth - 120);
    return draw("design", node, this.chartSpec(x, y, width), `design-${x}-${y}`);
  }

  renderTable(node) {
    node.textContent = "";
    const objectives = (this.spec.objectives || []).map((o) => o.target);
    const head = el("tr", {}, [el("th", { text: "#" }), el("th", { text: "composition" }), el("th", { text: "inputs" })]);
    for (const o of objectives) head.append(el("th", { class: "num", text: o }));
    head.append(el("th", { text: "warnings" }));
    const body = el("tbody");
    const rows = this.answer.front.map((e, i) => [`#${i + 1}`, e]).concat((this.answer.suggestions || []).map((e, i) => [`s${i + 1}`, e]));
    for (const [label, entry] of rows) body.append(this.row(label, entry, objectives));
    node.append(el("div", { class: "table-scroll" }, [el("table", { class: "results", "data-testid": "design-table" }, [el("thead", {}, [head]), body])]));
  }

  row(label, entry, objectives) {
    const composition = Object.entries(entry.request.composition).map(([p, f]) => `${p} ${f}`).join(", ");
    const free = Object.keys(this.spec.free || {}).filter((k) => k !== "composition");
    const inputs = free.map((path) => {
      const [block, name] = path.split(".");
      return `${name} ${entry.request[block][name]}`;
    });
    const tr = el("tr", { "data-kind": label.startsWith("#") ? "front" : "suggestion" }, [
      el("td", { text: label }),
      el("td", { text: composition }),
      el("td", { text: inputs.join(", ") }),
    ]);
    for (const o of objectives) {
      const value = entry.objectives ? entry.objectives[o] : null;
      tr.append(el("td", { class: "num", "data-value": value, text: value === null || value === undefined ? "" : Number(value).toPrecision(4) }));
    }
    tr.append(el("td", { class: "warn", text: entry.warnings.length ? `${entry.warnings.length} ⚠` : "" }));
    return tr;
  }
}
