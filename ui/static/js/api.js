// Calls to the service's own routes. The API key (only when the service sets API_KEYS) lives in
// sessionStorage: it is sent as X-API-Key and forgotten when the tab closes.

const KEY_STORAGE = "armor.apiKey";

export function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE) || "";
}

export function setApiKey(value) {
  if (value) sessionStorage.setItem(KEY_STORAGE, value);
  else sessionStorage.removeItem(KEY_STORAGE);
}

function headers(extra) {
  const out = { ...extra };
  const key = apiKey();
  if (key) out["X-API-Key"] = key;
  return out;
}

/** An HTTP failure with the service's error body ({status, type, message, details}). */
export class ApiError extends Error {
  constructor(status, error) {
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.type = error.type || "http_error";
    this.details = error.details || [];
  }
}

async function failure(response) {
  let error = { message: `HTTP ${response.status} ${response.statusText}` };
  try {
    const body = await response.json();
    if (body && body.error) error = body.error;
  } catch (_) {
    /* not the service's JSON error body */
  }
  if (response.status === 401) {
    error = { ...error, message: `${error.message} — enter the service's API key at the top of the page.` };
  }
  return new ApiError(response.status, error);
}

export async function getJSON(path) {
  const response = await fetch(path, { headers: headers({ Accept: "application/json" }) });
  if (!response.ok) throw await failure(response);
  return response.json();
}

export async function postJSON(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: headers({ "Content-Type": "application/json", Accept: "application/json" }),
    body: JSON.stringify(body),
  });
  if (!response.ok) throw await failure(response);
  return response.json();
}

/** POST a CSV body to a /batch route and call onLine(object) for each NDJSON line as it arrives. */
export async function postCsvStream(path, csvText, onLine) {
  const response = await fetch(path, {
    method: "POST",
    headers: headers({ "Content-Type": "text/csv", Accept: "application/x-ndjson" }),
    body: csvText,
  });
  await readLines(response, onLine);
}

/** POST a JSON body answered as NDJSON (the design route); a last line {"error": ...} is thrown. */
export async function postJSONStream(path, body, onLine) {
  const response = await fetch(path, {
    method: "POST",
    headers: headers({ "Content-Type": "application/json", Accept: "application/x-ndjson" }),
    body: JSON.stringify(body),
  });
  await readLines(response, (line) => {
    if (line.error) throw new ApiError(line.error.status, line.error);
    onLine(line);
  });
}

async function readLines(response, onLine) {
  if (!response.ok) throw await failure(response);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let pending = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    pending += decoder.decode(value, { stream: true });
    const lines = pending.split("\n");
    pending = lines.pop();
    for (const line of lines) if (line.trim()) onLine(JSON.parse(line));
  }
  pending += decoder.decode();
  if (pending.trim()) onLine(JSON.parse(pending));
}
