// The last predictions, kept in this browser (localStorage), for comparison side by side.

import { el } from "./form.js";
import { decimalsFor, fmt, fmtInterval, targetLabel, unitText } from "./format.js";

const STORAGE = "armor.history";
export const KEEP = 20;

export function load() {
  try {
    const items = JSON.parse(localStorage.getItem(STORAGE) || "[]");
    return Array.isArray(items) ? items : [];
  } catch (_) {
    return [];
  }
}

function save(items) {
  localStorage.setItem(STORAGE, JSON.stringify(items.slice(0, KEEP)));
}

/** Keep a prediction (newest first, at most KEEP; the same request again moves to the top);
 * ``request`` is what reproduces it. */
export function remember(label, request, predictions) {
  const compact = {};
  for (const [t, p] of Object.entries(predictions)) compact[t] = { value: p.value, unit: p.unit, interval: p.confidence_interval };
  const item = { id: `${Date.now()}-${Math.random().toString(36).slice(2, 7)}`, at: new Date().toISOString(), label, request, predictions: compact };
  const same = JSON.stringify(request);
  save([item, ...load().filter((kept) => JSON.stringify(kept.request) !== same)]);
  return item;
}

export function forget(id) {
  save(load().filter((item) => item.id !== id));
}

export function clear() {
  localStorage.removeItem(STORAGE);
}

/** A table: one column per kept prediction, one row per target (of any family among them). */
export function render(node, onOpen) {
  node.textContent = "";
  const items = load();
  if (!items.length) {
    node.append(el("p", { class: "empty", text: "No predictions yet: each prediction you make is kept here (in this browser only) for comparison." }));
    return;
  }
  const targets = [];
  for (const item of items) for (const t of Object.keys(item.predictions)) if (!targets.includes(t)) targets.push(t);
  const head = el("tr", {}, [el("th", { scope: "col", text: "" })]);
  for (const item of items) {
    const open = el("button", { type: "button", class: "link", text: "open" });
    open.addEventListener("click", () => onOpen(item));
    const remove = el("button", { type: "button", class: "link", "aria-label": `remove ${item.label}`, text: "remove" });
    remove.addEventListener("click", () => {
      forget(item.id);
      render(node, onOpen);
    });
    head.append(
      el("th", { scope: "col" }, [
        el("span", { class: "label", text: item.label }),
        el("small", { text: `${item.request.family} · ${new Date(item.at).toLocaleString()}` }),
        el("span", { class: "actions" }, [open, " · ", remove]),
      ]),
    );
  }
  const body = el("tbody");
  for (const t of targets) {
    const unit = items.map((i) => i.predictions[t]).find(Boolean).unit;
    const row = el("tr", {}, [el("th", { scope: "row" }, [targetLabel(t), el("small", { text: ` ${unitText(unit)}` })])]);
    for (const item of items) {
      const p = item.predictions[t];
      if (!p) {
        row.append(el("td", { class: "num", text: "–" }));
        continue;
      }
      const d = decimalsFor(p.value, p.interval);
      row.append(el("td", { class: "num" }, [fmt(p.value, d), p.interval ? el("small", { class: "ci", text: fmtInterval(p.interval, d) }) : null]));
    }
    body.append(row);
  }
  const clearButton = el("button", { type: "button", class: "secondary", text: "Forget all" });
  clearButton.addEventListener("click", () => {
    clear();
    render(node, onOpen);
  });
  node.append(
    el("div", { class: "table-scroll", tabindex: "0", role: "region", "aria-label": "kept predictions" }, [
      el("table", { class: "results compare", "data-testid": "compare-table" }, [el("thead", {}, [head]), body]),
    ]),
    el("p", {}, [clearButton]),
  );
}
