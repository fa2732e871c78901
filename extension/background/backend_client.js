// The genspot backend's HTTP API, as the extension uses it: POST /v1/detect, POST /v1/feedback
// and GET /v1/model.
// Network and HTTP failures are re-raised as BackendError with a stable code (RETRY_CODES in
// shared/messages.js says which heal by themselves) and a message the popup can show as is.

const DETECT_TIMEOUT_MS = 30_000;
const INFO_TIMEOUT_MS = 5_000;

export class BackendError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "BackendError";
    this.code = code;
  }
}

function headersFor(settings) {
  const headers = { Accept: "application/json" };
  if (settings.apiKey) headers["X-API-Key"] = settings.apiKey;
  return headers;
}

async function problemDetail(response) {
  try {
    const body = await response.json();
    return body.detail || body.title || JSON.stringify(body);
  } catch {
    return response.statusText;
  }
}

async function request(settings, path, init, timeoutMs) {
  const url = `${settings.backendUrl}${path}`;
  let response;
  try {
    response = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    if (error.name === "TimeoutError") {
      throw new BackendError("backend_timeout", `genspot's service at ${settings.backendUrl} did not answer within ${timeoutMs / 1000} s; genspot will try again`);
    }
    throw new BackendError("backend_unreachable", `genspot's service is not running at ${settings.backendUrl}. Start it with "make serve" in the genspot folder; images are checked as soon as it answers.`);
  }
  if (response.status === 401 || response.status === 403) {
    throw new BackendError("unauthorized", `the backend refused the API key (HTTP ${response.status}); check it in the options`);
  }
  if (response.status === 429) {
    throw new BackendError("rate_limited", "genspot's service asked for a pause (rate limit); genspot will try again");
  }
  if (response.status === 503) {
    throw new BackendError("backend_unavailable", "genspot's service is starting or busy; genspot will try again");
  }
  if (!response.ok) {
    throw new BackendError("backend_error", `the backend answered HTTP ${response.status}: ${await problemDetail(response)}`);
  }
  return response.json();
}

/** Detect a batch: `items` are {id, url | image_b64, alt_text, page_url?}; results come back in order. */
export async function postDetect(settings, items) {
  const body = await request(
    settings,
    "/v1/detect",
    { method: "POST", headers: { ...headersFor(settings), "Content-Type": "application/json" }, body: JSON.stringify({ items }) },
    DETECT_TIMEOUT_MS,
  );
  if (!Array.isArray(body.results) || body.results.length !== items.length) {
    throw new BackendError("backend_error", "the backend's answer does not have one result per image");
  }
  return body.results;
}

/** The served model's labels, version and thresholds (used by the options page's connection check). */
export async function getModelInfo(settings) {
  return request(settings, "/v1/model", { headers: headersFor(settings) }, INFO_TIMEOUT_MS);
}

const REPORT_FIELDS = ["sha256", "correct_label", "reported_verdict", "decided_by", "model_version", "generator", "image_url", "comment"];

/** Report a wrong verdict; only the known fields are sent. Answers {id, status, verification}. */
export async function postFeedback(settings, report) {
  const body = Object.fromEntries(REPORT_FIELDS.filter((name) => report[name] != null).map((name) => [name, report[name]]));
  return request(
    settings,
    "/v1/feedback",
    { method: "POST", headers: { ...headersFor(settings), "Content-Type": "application/json" }, body: JSON.stringify(body) },
    INFO_TIMEOUT_MS,
  );
}
