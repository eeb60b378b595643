// Numbers for people: as many digits as the 95 % interval supports (its half-width to two
// significant figures), four significant figures without an interval. The API keeps full
// precision; the page keeps it in data-value attributes and in the downloads.

const MAX_DECIMALS = 8;

export function decimalsFor(value, interval) {
  if (interval && Number.isFinite(interval[0]) && Number.isFinite(interval[1])) {
    const half = Math.abs(interval[1] - interval[0]) / 2;
    if (half > 0) return clamp(1 - Math.floor(Math.log10(half)), 0, MAX_DECIMALS);
  }
  if (!Number.isFinite(value) || value === 0) return 2;
  return clamp(3 - Math.floor(Math.log10(Math.abs(value))), 0, MAX_DECIMALS);
}

function clamp(x, low, high) {
  return Math.min(high, Math.max(low, x));
}

export function fmt(value, decimals) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  const places = decimals === undefined ? decimalsFor(value) : decimals;
  return value.toLocaleString("en-US", {
    minimumFractionDigits: places,
    maximumFractionDigits: places,
    useGrouping: Math.abs(value) >= 10000,
  });
}

/** "low – high" with the value's number of decimals. */
export function fmtInterval(interval, decimals) {
  if (!interval) return "–";
  return `${fmt(interval[0], decimals)} – ${fmt(interval[1], decimals)}`;
}

const UNIT_TEXT = {
  "g/cm3": "g/cm³",
  "MPa*m^0.5": "MPa·m½",
  degC: "°C",
  "degC/min": "°C/min",
  um: "µm",
  dimensionless: "",
  "probability (0-1)": "(probability)",
  "(volume fraction)": "(fraction)",
  "(0-1)": "(0–1)",
  "(fraction)": "(fraction)",
};

export function unitText(unit) {
  return unit in UNIT_TEXT ? UNIT_TEXT[unit] : unit;
}

const LABELS = {
  density: "Density",
  vickers_hardness: "Vickers hardness",
  fracture_toughness: "Fracture toughness",
  elastic_modulus: "Elastic modulus",
  flexural_strength: "Flexural strength",
  compressive_strength: "Compressive strength",
  poisson_ratio: "Poisson ratio",
  v50_velocity: "V50",
  penetration_resistance: "Penetration resistance",
  back_face_deformation: "Back-face deformation",
  multi_hit_capability: "Multi-hit capability",
};

export function targetLabel(target) {
  return LABELS[target] || humanise(target);
}

export function humanise(name) {
  const text = name.replace(/_/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** A short range text, e.g. "1200–2500 °C". */
export function rangeText(spec) {
  const unit = unitText(spec.unit);
  return unit && !unit.startsWith("(") ? `${spec.low}–${spec.high} ${unit}` : `${spec.low}–${spec.high}`;
}

/** "Name (unit)" for a chart title or a table header; a unit that is already a remark stays bare. */
export function withUnit(label, unit) {
  const text = unitText(unit);
  if (!text) return label;
  return text.startsWith("(") ? `${label} ${text}` : `${label} (${text})`;
}

const DESCRIPTIONS = {
  penetration_resistance: "depth-of-penetration mass efficiency (Rosenberg & Yeshurun 1988)",
  v50_velocity: "ballistic limit velocity: half of the rounds at it perforate",
  back_face_deformation: "depth of the backing's bulge behind a stopped round",
  multi_hit_capability: "probability that the tile stops a second hit",
};

export function targetDescription(target) {
  return DESCRIPTIONS[target] || "";
}
