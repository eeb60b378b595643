// Screen a CSV of candidates (the client's format: the columns of data/reference_materials.csv, a
// material a row). Columns the route does not know (a sample name, say) are kept aside as the row's
// label, as the command-line client's --id-column does, and the rest is sent as it is, in one
// /batch call answered as NDJSON: the progress moves as the rows come back. Screening (where,
// rank_by, order, top) is the route's own. A sortable table with the row errors beside their
// rows, an Ashby-style chart of any two targets with their 95 % intervals, and the results as CSV.

import { postCsvStream } from "./api.js";
import { draw } from "./charts.js";
import { el } from "./form.js";
import { decimalsFor, fmt, targetDescription, targetLabel, unitText, withUnit } from "./format.js";

/** RFC 4180 fields: quoted cells may hold commas, quotes ("") and line breaks. */
export function parseCsv(text) {
  const rows = [];
  let row = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i += 1;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") {
      row.push(cell);
      cell = "";
    } else if (ch === "\n" || ch === "\r") {
      if (ch === "\r" && text[i + 1] === "\n") i += 1;
      row.push(cell);
      rows.push(row);
      row = [];
      cell = "";
    } else cell += ch;
  }
  if (cell !== "" || row.length) {
    row.push(cell);
    rows.push(row);
  }
  return rows.filter((r) => r.some((c) => c.trim() !== ""));
}

function csvCell(value) {
  const text = value === null || value === undefined ? "" : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function toCsv(rows) {
  return rows.map((r) => r.map(csvCell).join(",")).join("\n") + "\n";
}

/** Split the header into the columns the route knows and the ones kept aside as labels. */
export function splitColumns(header, catalogue) {
  const known = new Set([...catalogue.phases, "basis", ...catalogue.inputs.map((s) => s.name), ...Object.keys(catalogue.units)]);
  const send = [];
  const aside = [];
  header.forEach((name, i) => (known.has(name.trim()) ? send : aside).push(i));
  return { send, aside };
}

export class Screening {
  constructor(root, catalogue) {
    this.root = root;
    this.catalogue = catalogue;
    this.results = [];
    this.sortKey = "order";
    this.sortDescending = false;
  }

  targets() {
    return this.catalogue.families[this.family].targets;
  }

  async run(family, text, options, onProgress) {
    this.family = family;
    const table = parseCsv(text);
    if (table.length < 2) throw new Error("the file has no rows below its header");
    const [header, ...body] = table;
    const { send, aside } = splitColumns(header, this.catalogue);
    this.labels = body.map((r) => aside.map((i) => r[i] || "").join(" "));
    this.asideNames = aside.map((i) => header[i]);
    const csv = toCsv([send.map((i) => header[i]), ...body.map((r) => send.map((i) => r[i] ?? ""))]);
    const query = new URLSearchParams({ include_uncertainty: "true" });
    if (options.rankBy) {
      query.set("rank_by", options.rankBy);
      query.set("order", options.order);
    }
    if (options.top) query.set("top", options.top);
    for (const w of options.where) query.append("where", w);
    this.results = [];
    this.summary = null;
    this.total = body.length;
    let arrived = 0;
    await postCsvStream(`/api/v1/predict/${family}/batch?${query}`, csv, (line) => {
      if (line.summary) this.summary = line.summary;
      else {
        line.order = arrived;
        this.results.push(line);
        arrived += 1;
        onProgress(arrived, this.total);
      }
    });
    this.sortKey = "order";
    this.sortDescending = false;
    return this.results;
  }

  columns() {
    const cols = [
      { key: "order", label: "#" },
      { key: "row", label: "row" },
      { key: "label", label: this.asideNames.length ? this.asideNames.join(" ") : "label" },
    ];
    for (const t of this.targets()) {
      cols.push({ key: t, label: targetLabel(t), unit: unitText(this.catalogue.units[t]), numeric: true, title: targetDescription(t) });
    }
    cols.push({ key: "warnings", label: "warnings" });
    return cols;
  }

  valueOf(result, key) {
    if (key === "order" || key === "row") return result[key];
    if (key === "label") return this.labels[result.row] || "";
    if (key === "warnings") return result.error ? -1 : result.warnings.length;
    return result.error ? null : result.predictions[key].value;
  }

  sorted() {
    const key = this.sortKey;
    const sign = this.sortDescending ? -1 : 1;
    return [...this.results].sort((a, b) => {
      const x = this.valueOf(a, key);
      const y = this.valueOf(b, key);
      if (x === null && y === null) return a.order - b.order;
      if (x === null) return 1; // errors last, whichever the direction
      if (y === null) return -1;
      return (x < y ? -1 : x > y ? 1 : 0) * sign || a.order - b.order;
    });
  }

  renderTable(node) {
    node.textContent = "";
    const cols = this.columns();
    const head = el("tr");
    for (const col of cols) {
      const active = this.sortKey === col.key;
      const button = el("button", { type: "button", class: "sort", text: col.label });
      if (col.unit) button.append(el("span", { class: "unit", text: ` ${col.unit}` }));
      if (active) button.append(el("span", { "aria-hidden": "true", text: this.sortDescending ? " ▼" : " ▲" }));
      button.addEventListener("click", () => {
        this.sortDescending = active ? !this.sortDescending : col.key !== "order" && col.key !== "row" && col.key !== "label";
        this.sortKey = col.key;
        this.renderTable(node);
        node.querySelector(`th[data-key="${col.key}"] button`).focus();
      });
      head.append(el("th", { scope: "col", class: col.numeric ? "num" : null, title: col.title || null, "data-key": col.key, "aria-sort": active ? (this.sortDescending ? "descending" : "ascending") : "none" }, [button]));
    }
    const tbody = el("tbody");
    for (const result of this.sorted()) tbody.append(this.renderRow(result, cols));
    const table = el("table", { class: "results", "data-testid": "screen-table" }, [el("thead", {}, [head]), tbody]);
    node.append(el("div", { class: "table-scroll", tabindex: "0", role: "region", "aria-label": "screening results" }, [table]));
  }

  renderRow(result, cols) {
    const tr = el("tr", { "data-row": String(result.row), class: result.error ? "row-error" : "" });
    tr.append(el("td", { text: String(result.order + 1) }), el("td", { text: String(result.row) }), el("td", { text: this.labels[result.row] || "" }));
    if (result.error) {
      const details = (result.error.details || []).map((d) => `${d.field}: ${d.message}`).join("; ");
      tr.append(el("td", { colspan: String(cols.length - 3), class: "error", "data-testid": "row-error", text: details || result.error.message }));
      return tr;
    }
    for (const t of this.targets()) {
      const p = result.predictions[t];
      const d = decimalsFor(p.value, p.confidence_interval);
      tr.append(
        el("td", {
          class: "num",
          "data-value": String(p.value),
          "data-low": p.confidence_interval ? String(p.confidence_interval[0]) : null,
          "data-high": p.confidence_interval ? String(p.confidence_interval[1]) : null,
          title: p.confidence_interval ? `95 %: ${fmt(p.confidence_interval[0], d)} – ${fmt(p.confidence_interval[1], d)}` : "" }, [
          fmt(p.value, d),
          p.confidence_interval ? el("small", { class: "ci", text: `${fmt(p.confidence_interval[0], d)}–${fmt(p.confidence_interval[1], d)}` }) : null,
        ]),
      );
    }
    const warnings = result.warnings.length
      ? el("details", {}, [el("summary", { text: `${result.warnings.length} ⚠` }), el("ul", {}, result.warnings.map((w) => el("li", { text: w })))])
      : null;
    tr.append(el("td", { class: "warn" }, [warnings]));
    return tr;
  }

  ashbySpec(xTarget, yTarget, width) {
    const rows = this.results
      .filter((r) => !r.error)
      .map((r) => {
        const x = r.predictions[xTarget];
        const y = r.predictions[yTarget];
        return { label: this.labels[r.row] || `row ${r.row}`, x: x.value, xlo: x.confidence_interval[0], xhi: x.confidence_interval[1], y: y.value, ylo: y.confidence_interval[0], yhi: y.confidence_interval[1] };
      });
    const title = (t) => withUnit(targetLabel(t), this.catalogue.units[t]);
    const x = { field: "x", type: "quantitative", title: title(xTarget), scale: { zero: false } };
    const y = { field: "y", type: "quantitative", title: title(yTarget), scale: { zero: false } };
    return {
      width,
      height: 340,
      data: { name: "points", values: rows },
      layer: [
        { mark: { type: "rule", color: "#94a3b8" }, encoding: { x: { ...x, field: "xlo" }, x2: { field: "xhi" }, y } },
        { mark: { type: "rule", color: "#94a3b8" }, encoding: { x, y: { ...y, field: "ylo" }, y2: { field: "yhi" } } },
        {
          mark: { type: "point", filled: true, size: 60, color: "#1d4ed8" },
          encoding: {
            x,
            y,
            tooltip: [
              { field: "label", title: "material" },
              { field: "x", title: targetLabel(xTarget), format: ".4~g" },
              { field: "y", title: targetLabel(yTarget), format: ".4~g" },
            ],
          },
        },
        { mark: { type: "text", align: "left", dx: 6, dy: -6, fontSize: 10, color: "#334155" }, encoding: { x, y, text: { field: "label" } } },
      ],
    };
  }

  drawAshby(node, xTarget, yTarget) {
    const width = Math.max(260, node.clientWidth - 90);
    return draw("ashby", node, this.ashbySpec(xTarget, yTarget, width), `ashby-${xTarget}-${yTarget}`);
  }

  csv() {
    const targets = this.targets();
    const labelled = this.asideNames.length > 0;
    const header = ["row", ...(labelled ? [this.asideNames.join(" ")] : []), "status"];
    for (const t of targets) header.push(t, `${t}_low`, `${t}_high`);
    header.push("warnings", "model_version", "error");
    const lines = [header];
    for (const r of this.sorted()) {
      const line = [r.row, ...(labelled ? [this.labels[r.row]] : []), r.error ? r.error.status : 200];
      for (const t of targets) {
        const p = r.error ? null : r.predictions[t];
        line.push(p ? p.value : "", p ? p.confidence_interval[0] : "", p ? p.confidence_interval[1] : "");
      }
      line.push(r.error ? "" : r.warnings.join("; "), r.error ? "" : r.model_version, r.error ? r.error.message : "");
      lines.push(line);
    }
    return toCsv(lines);
  }
}
