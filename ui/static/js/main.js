// The page: wires the form, the four views, the URL (which encodes the material, so a link
// reproduces a result) and the API key field. Everything it asks for comes from this service.

import { ApiError, apiKey, getJSON, postJSON, setApiKey } from "./api.js";
import { view } from "./charts.js";
import { MaterialForm, el } from "./form.js";
import { humanise, rangeText, targetLabel } from "./format.js";
import * as history from "./history.js";
import { predictionsOf, renderResult } from "./predict.js";
import { Design, EXAMPLE as DESIGN_EXAMPLE } from "./design.js";
import { Screening } from "./screen.js";
import { showDrift } from "./drift.js";
import { describe, drawSweep, hardnessSweep, materialSweep, sweepTitle } from "./sweep.js";

const $ = (id) => document.getElementById(id);
const VIEWS = ["predict", "sweep", "screen", "design", "compare", "drift"];

const state = { family: "mechanical", view: "predict", label: "" };
let catalogue;
let presets;
let form;
let screening;
let design;

function showError(box, error) {
  box.hidden = !error;
  box.textContent = "";
  if (!error) return;
  box.append(el("strong", { text: error instanceof ApiError ? `${error.status} ${error.type.replace(/_/g, " ")}: ` : "Error: " }), error.message);
  if (error.details && error.details.length) box.append(el("ul", {}, error.details.map((d) => el("li", { text: `${d.field}: ${d.message}` }))));
}

async function busy(button, work) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

// ---- views and URL -------------------------------------------------------------------------

function selectView(name, focus = false) {
  state.view = name;
  for (const v of VIEWS) {
    const tab = $(`tab-${v}`);
    tab.setAttribute("aria-selected", String(v === name));
    tab.tabIndex = v === name ? 0 : -1;
    $(`panel-${v}`).hidden = v !== name;
  }
  $("workbench").hidden = ["screen", "design", "compare", "drift"].includes(name);
  if (name === "compare") history.render($("compare"), openKept);
  if (name === "drift") showDrift($("drift-chart"), $("drift-note"));
  if (focus) $(`tab-${name}`).focus();
  writeUrl();
}

function requestOf() {
  const material = state.family === "hardness" ? form.formula() : form.material();
  return { family: state.family, material };
}

function writeUrl() {
  const params = new URLSearchParams({ view: state.view, family: state.family });
  params.set("m", JSON.stringify(requestOf().material));
  replaceHash(`#${params}`);
}

function replaceHash(hash) {
  if (location.hash !== hash) window.history.replaceState(null, "", hash);
}

function readUrl() {
  const params = new URLSearchParams(location.hash.slice(1));
  let material = null;
  try {
    material = params.has("m") ? JSON.parse(params.get("m")) : null;
  } catch (_) {
    material = null;
  }
  return { view: params.get("view"), family: params.get("family"), material };
}

// ---- form ------------------------------------------------------------------------------------

function setFamily(family) {
  state.family = family;
  for (const radio of document.querySelectorAll('input[name="family"]')) radio.checked = radio.value === family;
  form.setFamily(family);
  renderPresets();
  renderSweepChoices();
  form.clearErrors();
}

function renderPresets() {
  const box = $("presets");
  box.textContent = "";
  box.append(el("span", { class: "presets-label", text: "Presets" }));
  const list = state.family === "hardness" ? presets.formulas : presets.presets;
  for (const preset of list) {
    const button = el("button", { type: "button", class: "preset", "data-testid": `preset-${preset.id}`, text: preset.label });
    button.addEventListener("click", () => {
      state.label = preset.label;
      if (state.family === "hardness") form.setFormula(preset.formula, undefined);
      else form.setMaterial(preset.material);
      form.clearErrors();
      writeUrl();
    });
    box.append(button);
  }
}

function fill(family, material) {
  setFamily(family);
  if (family === "hardness") form.setFormula(material.formula, material.load_n);
  else form.setMaterial(material);
}

// ---- predict ---------------------------------------------------------------------------------

function labelOf(request) {
  if (request.family === "hardness") return request.material.formula;
  const phases = Object.entries(request.material.composition || {}).filter(([k]) => k !== "basis");
  return phases.map(([k, v]) => (phases.length > 1 ? `${k} ${+(v * 100).toFixed(1)}%` : k)).join(" + ") || "material";
}

async function predict() {
  const request = requestOf();
  const body = { ...request.material, include_uncertainty: true, include_feature_importance: $("explain").checked };
  form.clearErrors();
  showError($("predict-error"), null);
  writeUrl();
  try {
    const response = await busy($("predict"), () => postJSON(`/api/v1/predict/${request.family}`, body));
    renderResult($("result"), response, request.family);
    if (window.matchMedia("(max-width: 900px)").matches) $("panel-predict").scrollIntoView({ block: "start" });
    history.remember(state.label || labelOf(request), request, predictionsOf(response));
    state.label = "";
  } catch (error) {
    $("result").textContent = "";
    const unplaced = error instanceof ApiError ? form.showErrors(error.details) : [];
    if (!(error instanceof ApiError) || unplaced.length || !error.details.length) {
      showError($("predict-error"), error instanceof ApiError ? Object.assign(error, { details: unplaced }) : error);
    } else {
      showError($("predict-error"), new ApiError(error.status, { type: error.type, message: "see the fields marked in the form" }));
    }
  }
}

function openKept(item) {
  fill(item.request.family, item.request.material);
  state.label = item.label;
  selectView("predict");
  predict();
}

// ---- sweep -----------------------------------------------------------------------------------

function renderSweepChoices() {
  const select = $("sweep-input");
  select.textContent = "";
  if (state.family === "hardness") {
    const load = catalogue.formula.load;
    select.append(el("option", { value: "load_n", text: "Indentation load (N)" }));
    $("sweep-range").textContent = `${rangeText(load)}, log axis`;
    return;
  }
  const groups = new Map();
  for (const spec of form.numericSpecs(state.family).concat(form.phaseSpecs())) {
    if (!groups.has(spec.block)) {
      const label = spec.block === "composition" ? "Composition (the other phases scaled to fill)" : humanise(spec.block);
      groups.set(spec.block, el("optgroup", { label }));
      select.append(groups.get(spec.block));
    }
    groups.get(spec.block).append(el("option", { value: `${spec.block}.${spec.name}`, text: sweepTitle(spec) }));
  }
  select.value = state.family === "ballistic" ? "armor.tile_thickness" : "processing.sintering_temperature";
  updateSweepRange();
}

function sweepSpec() {
  const [block, name] = $("sweep-input").value.split(".");
  return form.numericSpecs(state.family).concat(form.phaseSpecs()).find((s) => s.block === block && s.name === name);
}

function updateSweepRange() {
  if (state.family === "hardness") return;
  const spec = sweepSpec();
  $("sweep-range").textContent = spec ? `over ${rangeText(spec)}${spec.log_scaled ? ", log axis" : ""}` : "";
}

async function sweep() {
  showError($("sweep-error"), null);
  form.clearErrors();
  writeUrl();
  const chart = $("sweep-chart");
  const warnings = $("sweep-warnings");
  warnings.hidden = true;
  const showWarnings = (result) => {
    const { current, warned, points } = result.warnings;
    warnings.hidden = !current.length && !warned;
    warnings.textContent = "";
    const heading = warned === null ? "Warnings" : "Warnings at the current material";
    if (current.length) warnings.append(el("h3", { text: heading }), el("ul", {}, current.map((w) => el("li", { text: w }))));
    if (warned) warnings.append(el("p", { text: `${warned} of the ${points} swept points carry warnings (amber; hover to read them).` }));
  };
  try {
    await busy($("draw-sweep"), async () => {
      if (state.family === "hardness") {
        const result = await hardnessSweep(form.formula(), catalogue);
        $("sweep-note").textContent = describe(result, { log_scaled: true });
        await drawSweep(chart, result, "indentation load (N)", true);
        showWarnings(result);
        return;
      }
      const spec = sweepSpec();
      const material = form.material();
      if (spec.block !== "composition" && (material[spec.block] || {})[spec.name] === undefined && spec.default !== null) {
        (material[spec.block] = material[spec.block] || {})[spec.name] = spec.default;
      }
      const result = await materialSweep(state.family, material, spec, catalogue);
      if (result.error) throw new ApiError(result.error.status, result.error);
      $("sweep-note").textContent = describe(result, spec);
      await drawSweep(chart, result, sweepTitle(spec), spec.log_scaled);
      showWarnings(result);
    });
  } catch (error) {
    chart.textContent = "";
    $("sweep-note").textContent = "";
    const unplaced = error instanceof ApiError ? form.showErrors(error.details.map((d) => ({ ...d, field: d.field.replace(/^materials\.\d+\./, "") }))) : [];
    showError($("sweep-error"), error instanceof ApiError && !unplaced.length && error.details.length ? new ApiError(error.status, { type: error.type, message: "see the fields marked in the form" }) : error);
  }
}

// ---- screen ----------------------------------------------------------------------------------

function renderScreenChoices() {
  const family = $("screen-family").value;
  const targets = catalogue.families[family].targets;
  const rank = $("screen-rank");
  rank.textContent = "";
  rank.append(el("option", { value: "", text: "(input order)" }));
  for (const t of targets) {
    rank.append(el("option", { value: t, text: targetLabel(t) }));
    rank.append(el("option", { value: `${t}_low`, text: `${targetLabel(t)}, 95 % low` }));
    rank.append(el("option", { value: `${t}_high`, text: `${targetLabel(t)}, 95 % high` }));
  }
  for (const [id, pick] of [["ashby-x", 0], ["ashby-y", 1]]) {
    const select = $(id);
    select.textContent = "";
    for (const t of targets) select.append(el("option", { value: t, text: targetLabel(t) }));
    select.value = targets[pick];
  }
}

async function screen() {
  const file = $("screen-file").files[0];
  showError($("screen-error"), null);
  document.querySelector('[data-error-for="where"]').textContent = "";
  if (!file) {
    showError($("screen-error"), new Error("choose a CSV file first"));
    return;
  }
  const family = $("screen-family").value;
  const options = {
    rankBy: $("screen-rank").value,
    order: $("screen-order").value,
    top: $("screen-top").value.trim(),
    where: $("screen-where").value.split("\n").map((w) => w.trim()).filter(Boolean),
  };
  const progress = $("screen-progress");
  const status = $("screen-status");
  progress.hidden = false;
  progress.value = 0;
  status.textContent = "sending…";
  $("screen-download").disabled = true;
  try {
    await busy($("screen"), async () => {
      screening = new Screening($("screen-results"), catalogue);
      await screening.run(family, await file.text(), options, (done, total) => {
        progress.max = total;
        progress.value = done;
        status.textContent = `${done} of ${total} rows`;
      });
    });
    const s = screening.summary || {};
    progress.value = progress.max;
    status.textContent = `${s.rows} rows: ${s.predicted} predicted, ${s.errors} with errors${s.matched !== undefined ? `, ${s.matched} met the constraints` : ""}`;
    screening.renderTable($("screen-results"));
    $("screen-download").disabled = false;
    $("ashby").hidden = screening.results.every((r) => r.error);
    if (!$("ashby").hidden) await screening.drawAshby($("ashby-chart"), $("ashby-x").value, $("ashby-y").value);
  } catch (error) {
    progress.hidden = true;
    status.textContent = "";
    const where = error instanceof ApiError ? error.details.filter((d) => ["where", "rank_by", "top"].includes(d.field)) : [];
    if (where.length) document.querySelector('[data-error-for="where"]').textContent = where.map((d) => `${d.field}: ${d.message}`).join("; ");
    showError($("screen-error"), error);
  }
}

function download() {
  const blob = new Blob([screening.csv()], { type: "text/csv" });
  const link = el("a", { href: URL.createObjectURL(blob), download: `screen-${$("screen-family").value}.csv` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

// ---- design ----------------------------------------------------------------------------------

function designAxes() {
  const [x, y] = design.defaultAxes();
  for (const [id, pick] of [["design-x", x], ["design-y", y]]) {
    const select = $(id);
    select.textContent = "";
    for (const t of design.targets()) select.append(el("option", { value: t, text: targetLabel(t) }));
    select.value = pick;
  }
}

async function runDesign() {
  showError($("design-error"), null);
  let spec;
  try {
    spec = JSON.parse($("design-spec").value);
  } catch (error) {
    showError($("design-error"), new Error(`the design request is not valid JSON: ${error.message}`));
    return;
  }
  const progress = $("design-progress");
  const status = $("design-status");
  progress.hidden = false;
  progress.value = 0;
  status.textContent = "searching…";
  try {
    const answer = await busy($("design"), async () => {
      design = new Design(catalogue);
      return design.run(spec, (p) => {
        progress.max = p.max_evaluations;
        progress.value = p.evaluations;
        status.textContent = `${p.evaluations} of ${p.max_evaluations} evaluations, ${p.feasible} feasible, front of ${p.front}`;
      });
    });
    const s = answer.summary;
    progress.value = progress.max;
    status.textContent = `${s.evaluations} evaluations in ${s.elapsed_s.toPrecision(2)} s: ${s.feasible} feasible, front of ${s.front}, hypervolume ${s.hypervolume.toPrecision(4)}`;
    $("design-front").hidden = design.entries().length === 0;
    if (!answer.front.length) showError($("design-error"), new Error(`no feasible candidate within the budget; the closest missed by: ${answer.closest.map((c) => c.violations.map((v) => v.constraint).join(", ")).join("; ")}`));
    if ($("design-front").hidden) return;
    designAxes();
    design.renderTable($("design-table"));
    await design.drawFront($("design-chart"), $("design-x").value, $("design-y").value);
  } catch (error) {
    progress.hidden = true;
    status.textContent = "";
    showError($("design-error"), error);
  }
}

// ---- start -----------------------------------------------------------------------------------

function wire() {
  for (const v of VIEWS) $(`tab-${v}`).addEventListener("click", () => selectView(v));
  document.querySelector(".tabs").addEventListener("keydown", (event) => {
    const i = VIEWS.indexOf(state.view);
    const step = { ArrowRight: 1, ArrowLeft: -1, Home: -i, End: VIEWS.length - 1 - i }[event.key];
    if (step === undefined) return;
    event.preventDefault();
    selectView(VIEWS[(i + step + VIEWS.length) % VIEWS.length], true);
  });
  for (const radio of document.querySelectorAll('input[name="family"]')) {
    radio.addEventListener("change", () => {
      setFamily(radio.value);
      writeUrl();
    });
  }
  $("material-form").addEventListener("submit", (event) => {
    event.preventDefault();
    if (state.view === "sweep") sweep();
    else predict();
  });
  form.onChange = () => {
    state.label = ""; // an edited preset is no longer the preset
    writeUrl();
  };
  $("sweep-input").addEventListener("change", updateSweepRange);
  $("draw-sweep").addEventListener("click", sweep);
  $("share").addEventListener("click", async () => {
    writeUrl();
    try {
      await navigator.clipboard.writeText(location.href);
      $("share-status").textContent = "link copied";
    } catch (_) {
      $("share-status").textContent = "copy the address bar: it holds this material";
    }
  });
  $("screen-family").addEventListener("change", renderScreenChoices);
  $("screen-form").addEventListener("submit", (event) => {
    event.preventDefault();
    screen();
  });
  $("screen-download").addEventListener("click", download);
  const redrawAshby = () => screening && screening.drawAshby($("ashby-chart"), $("ashby-x").value, $("ashby-y").value);
  $("ashby-x").addEventListener("change", redrawAshby);
  $("ashby-y").addEventListener("change", redrawAshby);
  $("design-spec").value = JSON.stringify(DESIGN_EXAMPLE, null, 2);
  $("design-form").addEventListener("submit", (event) => {
    event.preventDefault();
    runDesign();
  });
  const redrawDesign = () => design && design.answer && design.drawFront($("design-chart"), $("design-x").value, $("design-y").value);
  $("design-x").addEventListener("change", redrawDesign);
  $("design-y").addEventListener("change", redrawDesign);
  const key = $("api-key");
  key.value = apiKey();
  key.addEventListener("input", () => setApiKey(key.value.trim()));
  $("api-key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    key.closest("details").open = false;
  });
}

async function start() {
  try {
    [catalogue, presets] = await Promise.all([getJSON("/api/v1/catalogue"), getJSON("presets.json")]);
  } catch (error) {
    const box = $("load-error");
    box.hidden = false;
    box.textContent = `The service's catalogue could not be read (${error.message}); is the service running?`;
    return;
  }
  form = new MaterialForm($("form-fields"), catalogue);
  wire();
  renderScreenChoices();
  const url = readUrl();
  const family = catalogue.families[url.family] ? url.family : "mechanical";
  if (url.material) fill(family, url.material);
  else {
    setFamily(family);
    form.setMaterial(presets.presets[0].material);
    state.label = presets.presets[0].label;
  }
  selectView(VIEWS.includes(url.view) ? url.view : "predict");
  window.armorUI = {
    chartData: (name, dataset) => (view(name) ? view(name).data(dataset) : null),
    humanise,
  };
  document.body.dataset.ready = "true";
  if (url.material && state.view === "predict") predict();
  if (url.material && state.view === "sweep") sweep();
}

start();
