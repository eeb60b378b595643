// The material form, built from the service's catalogue (GET /api/v1/catalogue): phases as
// fractions with a running total and a one-click normalise, then processing, microstructure and
// (ballistic) armor, every field with its unit, accepted range and default. For the hardness
// family a formula and a load. The browser's own range checks are off (novalidate): the API's
// validation errors are shown next to their fields instead, so there is one set of rules.

import { fmt, humanise, rangeText, unitText } from "./format.js";

const BLOCK_TITLES = { processing: "Processing", microstructure: "Microstructure", armor: "Armor (ballistic)" };

function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of [].concat(children)) if (child) node.append(child);
  return node;
}
export { el };

export class MaterialForm {
  constructor(root, catalogue) {
    this.root = root;
    this.catalogue = catalogue;
    this.phaseInputs = new Map();
    this.fieldInputs = new Map(); // "block.name" -> {spec, input}
    this.onChange = () => {};
    this.build();
  }

  build() {
    const c = this.catalogue;
    this.materialPart = el("div", { class: "material-part" });
    this.materialPart.append(this.buildComposition());
    for (const block of ["processing", "microstructure", "armor"]) {
      const specs = c.inputs.filter((s) => s.block === block);
      const set = el("fieldset", { class: `block block-${block}`, "data-block": block }, [
        el("legend", { text: BLOCK_TITLES[block] }),
      ]);
      const grid = el("div", { class: "fields" });
      for (const spec of specs) grid.append(this.buildField(spec));
      set.append(grid);
      this.materialPart.append(set);
    }
    this.formulaPart = this.buildFormula();
    this.root.append(this.materialPart, this.formulaPart);
    this.root.addEventListener("input", () => this.onChange());
    this.root.addEventListener("change", () => this.onChange());
  }

  buildComposition() {
    const c = this.catalogue;
    const set = el("fieldset", { class: "block block-composition", "data-field": "composition" }, [
      el("legend", { text: "Composition (phase fractions)" }),
    ]);
    const grid = el("div", { class: "phases" });
    for (const phase of c.phases) {
      const id = `in-composition-${phase}`;
      const input = el("input", {
        id,
        type: "number",
        inputmode: "decimal",
        min: 0,
        max: 1,
        step: "any",
        placeholder: "0",
        "data-field": `composition.${phase}`,
        "aria-describedby": "composition-total",
      });
      input.addEventListener("input", () => this.updateTotal());
      this.phaseInputs.set(phase, input);
      grid.append(el("div", { class: "phase", "data-field-box": `composition.${phase}` }, [el("label", { for: id, text: phase }), input]));
    }
    set.append(grid);
    const basis = el("select", { id: "in-composition-basis", "data-field": "composition.basis" });
    for (const b of c.composition.bases) basis.append(el("option", { value: b, text: `${b} fractions` }));
    this.basisInput = basis;
    this.totalText = el("output", { id: "composition-total", class: "total", "aria-live": "polite" });
    const normalise = el("button", { type: "button", class: "secondary", "data-testid": "normalise", text: "Normalise to 1" });
    normalise.addEventListener("click", () => this.normalise());
    set.append(
      el("div", { class: "composition-foot" }, [
        this.totalText,
        normalise,
        el("label", { class: "visually-hidden", for: "in-composition-basis", text: "basis" }),
        basis,
      ]),
    );
    set.append(el("p", { class: "field-error", "data-error-for": "composition", role: "alert" }));
    return set;
  }

  buildField(spec) {
    const key = `${spec.block}.${spec.name}`;
    const id = `in-${spec.block}-${spec.name}`;
    let input;
    let hint;
    if (spec.kind === "number") {
      input = el("input", {
        id,
        type: "number",
        inputmode: "decimal",
        step: "any",
        min: spec.low,
        max: spec.high,
        placeholder: spec.default === null ? "required" : String(spec.default),
        required: spec.required,
        "data-field": key,
        "aria-describedby": `${id}-hint`,
      });
      const unit = unitText(spec.unit);
      hint = spec.required
        ? `${rangeText(spec)}, required`
        : `${rangeText(spec)}, default ${spec.default}${unit && !unit.startsWith("(") ? " " + unit : ""}`;
    } else {
      input = el("select", { id, "data-field": key, "aria-describedby": `${id}-hint` });
      let levels = spec.levels;
      if (spec.name === "backing") {
        const valid = this.catalogue.armor.backings;
        levels = levels.filter((level) => !valid[level] || valid[level].v50_relation_valid);
      }
      for (const level of levels) input.append(el("option", { value: level, text: level.replace(/_/g, " ") }));
      hint = `default ${spec.default.replace(/_/g, " ")}`;
      if (spec.name === "threat") hint += "; reference velocities in the sweep";
    }
    this.fieldInputs.set(key, { spec, input });
    const unit = spec.kind === "number" ? unitText(spec.unit) : "";
    return el("div", { class: "field", "data-field-box": key }, [
      el("label", { for: id }, [humanise(spec.doc), unit ? el("span", { class: "unit", text: ` ${unit}` }) : null]),
      input,
      el("small", { id: `${id}-hint`, class: "hint", text: hint }),
      el("p", { class: "field-error", "data-error-for": key, role: "alert" }),
    ]);
  }

  buildFormula() {
    const f = this.catalogue.formula;
    const part = el("fieldset", { class: "block formula-part" }, [el("legend", { text: "Compound" })]);
    this.formulaInput = el("input", {
      id: "in-formula",
      type: "text",
      maxlength: f.max_length,
      autocomplete: "off",
      spellcheck: "false",
      placeholder: "e.g. B4C, TiB2, Ti(C0.5N0.5)",
      "data-field": "formula",
    });
    const load = f.load;
    this.loadInput = el("input", {
      id: "in-load_n",
      type: "number",
      step: "any",
      min: load.low,
      max: load.high,
      placeholder: String(load.default),
      "data-field": "load_n",
    });
    part.append(
      el("div", { class: "fields" }, [
        el("div", { class: "field", "data-field-box": "formula" }, [
          el("label", { for: "in-formula", text: "Chemical formula" }),
          this.formulaInput,
          el("small", { class: "hint", text: `element symbols with amounts, up to ${f.max_length} characters` }),
          el("p", { class: "field-error", "data-error-for": "formula", role: "alert" }),
        ]),
        el("div", { class: "field", "data-field-box": "load_n" }, [
          el("label", { for: "in-load_n" }, ["Indentation load", el("span", { class: "unit", text: " N" })]),
          this.loadInput,
          el("small", { class: "hint", text: `${rangeText(load)}, default ${load.default} N (HV1)` }),
          el("p", { class: "field-error", "data-error-for": "load_n", role: "alert" }),
        ]),
      ]),
    );
    return part;
  }

  setFamily(family) {
    this.family = family;
    const formula = this.catalogue.families[family].input === "formula";
    this.materialPart.hidden = formula;
    this.formulaPart.hidden = !formula;
    const armor = this.root.querySelector(".block-armor");
    if (armor) armor.hidden = family !== "ballistic";
  }

  total() {
    let sum = 0;
    for (const input of this.phaseInputs.values()) {
      const v = parseFloat(input.value);
      if (Number.isFinite(v)) sum += v;
    }
    return sum;
  }

  updateTotal() {
    const sum = this.total();
    const tol = this.catalogue.composition.tolerance;
    const ok = Math.abs(sum - 1) <= tol;
    this.totalText.textContent = `Sum ${fmt(sum, 3)} ${ok ? "✓" : `— must be 1 ± ${tol}`}`;
    this.totalText.classList.toggle("bad", !ok);
    this.totalText.dataset.sum = String(sum);
  }

  normalise() {
    const sum = this.total();
    if (!(sum > 0)) return;
    for (const input of this.phaseInputs.values()) {
      const v = parseFloat(input.value);
      if (Number.isFinite(v) && v > 0) input.value = String(+(v / sum).toPrecision(6));
    }
    this.updateTotal();
    this.onChange();
  }

  /** Fill the form from a request-shaped material (missing fields: the catalogue defaults). */
  setMaterial(material) {
    const composition = material.composition || {};
    for (const [phase, input] of this.phaseInputs) input.value = composition[phase] ? String(composition[phase]) : "";
    this.basisInput.value = composition.basis || "volume";
    for (const [key, { spec, input }] of this.fieldInputs) {
      const given = (material[spec.block] || {})[spec.name];
      const value = given !== undefined ? given : spec.default;
      input.value = value === null || value === undefined ? "" : String(value);
    }
    this.updateTotal();
  }

  setFormula(formula, load) {
    this.formulaInput.value = formula || "";
    this.loadInput.value = load === undefined || load === null ? "" : String(load);
  }

  /** The material as a request body (blocks the family does not use left out). */
  material(family = this.family) {
    const composition = {};
    for (const [phase, input] of this.phaseInputs) {
      const v = numberOf(input);
      if (v !== undefined && v !== 0) composition[phase] = v;
    }
    if (this.basisInput.value !== "volume") composition.basis = this.basisInput.value;
    const body = { composition };
    for (const [, { spec, input }] of this.fieldInputs) {
      if (spec.block === "armor" && family !== "ballistic") continue;
      const value = spec.kind === "number" ? numberOf(input) : input.value;
      if (value === undefined) continue; // empty: the API's default (or its "required" error)
      (body[spec.block] = body[spec.block] || {})[spec.name] = value;
    }
    return body;
  }

  formula() {
    const body = { formula: this.formulaInput.value.trim() };
    const load = numberOf(this.loadInput);
    if (load !== undefined) body.load_n = load;
    return body;
  }

  numericSpecs(family) {
    return this.catalogue.inputs.filter((s) => s.kind === "number" && (family === "ballistic" || s.block !== "armor"));
  }

  /** A phase's fraction as a sweepable input: 0 to 1, the other phases scaled to fill the rest. */
  phaseSpecs() {
    return this.catalogue.phases.map((phase) => ({
      name: phase,
      block: "composition",
      kind: "number",
      unit: "(fraction)",
      low: 0,
      high: 1,
      default: 0,
      log_scaled: false,
      doc: `${phase} fraction`,
    }));
  }

  clearErrors() {
    for (const node of this.root.querySelectorAll("[data-error-for]")) node.textContent = "";
    for (const node of this.root.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  }

  /** Put each {field, message} of an API error next to its field; return the ones with no field here. */
  showErrors(details) {
    this.clearErrors();
    const unplaced = [];
    let first = null;
    for (const detail of details) {
      const field = detail.field.replace(/^body\./, "");
      const slot = this.root.querySelector(`[data-error-for="${CSS.escape(field)}"]`) || this.compositionSlot(field);
      if (!slot) {
        unplaced.push(detail);
        continue;
      }
      slot.textContent = slot.textContent ? `${slot.textContent}; ${detail.message}` : detail.message;
      const input = this.root.querySelector(`[data-field="${CSS.escape(field)}"]`);
      if (input && input.tagName !== "FIELDSET") input.setAttribute("aria-invalid", "true");
      first = first || input || slot;
    }
    if (first && first.focus) first.focus();
    return unplaced;
  }

  compositionSlot(field) {
    return field.startsWith("composition") ? this.root.querySelector('[data-error-for="composition"]') : null;
  }
}

function numberOf(input) {
  if (input.value.trim() === "") return undefined;
  const v = Number(input.value);
  return Number.isFinite(v) ? v : undefined;
}
