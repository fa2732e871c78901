// The options page: edits the settings in chrome.storage.local and checks the connection.

import "../shared/settings.js";
import { getModelInfo } from "../background/backend_client.js";

const { loadSettings, hasSavedSettings, saveSettings, normalizeBackendUrl, parseSiteList } = globalThis.genspot.settings;
const form = document.getElementById("options");
const fields = form.elements;
const status = document.getElementById("status");

function showStatus(text, isError = false) {
  status.textContent = text;
  status.className = isError ? "error" : "muted";
}

const percent = (value) => `${Math.round(Number(value) * 100)}%`;
const FALLBACK_AI_LIMIT = 0.65; // the backend's default threshold + uncertain band

const UNREAD = {
  unsaved: "Save your backend (or use \"Check connection\") to read its limits",
  reading: "Reading the backend's limits",
  unreachable: "The backend's limits could not be read",
};

/**
 * The slider's left end is the backend's AI limit (threshold + uncertain band): below it a
 * slider would change nothing. Without `thresholds`, `why` (a key of UNREAD) says
 * why the backend's defaults are assumed.
 */
function setLimits(thresholds, why = "unreachable") {
  const aiLimit = thresholds ? thresholds.threshold + thresholds.uncertain_band : FALLBACK_AI_LIMIT;
  fields.threshold.min = String(Math.min(0.99, Math.round(aiLimit * 100) / 100));
  document.getElementById("threshold-limits").textContent = thresholds
    ? `This backend: "AI" from ${percent(aiLimit)}, "real" below ${percent(thresholds.threshold - thresholds.uncertain_band)}.`
    : `${UNREAD[why]}; assuming its defaults ("AI" from ${percent(FALLBACK_AI_LIMIT)}).`;
}

function showThreshold() {
  const atBackend = Number(fields.threshold.value) <= Number(fields.threshold.min);
  document.getElementById("threshold-value").textContent = atBackend
    ? `${percent(fields.threshold.min)} (the backend's own AI limit)`
    : percent(fields.threshold.value);
}

/**
 * Reads the limits of the backend the user saved (never of one only typed into the form:
 * the options page contacts no address the user has not chosen). The slider keeps the saved
 * minimum unless the user moved it meanwhile.
 */
async function readBackendLimits(settings) {
  let thresholds = null;
  try {
    thresholds = (await getModelInfo(settings)).thresholds ?? null;
  } catch {
    // unreachable or refused: the defaults stand, and "Check connection" says why
  }
  const untouched = fields.threshold.dataset.touched !== "true";
  setLimits(thresholds);
  if (untouched) fields.threshold.value = String(Math.max(settings.threshold, Number(fields.threshold.min)));
  showThreshold();
}

function fillForm(settings) {
  fields.backendUrl.value = settings.backendUrl;
  fields.apiKey.value = settings.apiKey;
  fields.threshold.value = String(Math.max(settings.threshold, Number(fields.threshold.min)));
  fields.showReal.checked = settings.showReal;
  fields.sendPageUrl.checked = settings.sendPageUrl;
  fields.disabledSites.value = settings.disabledSites.join("\n");
  showThreshold();
}

/** The form's settings, or throws an Error with a one-line message. */
function readForm() {
  return {
    backendUrl: normalizeBackendUrl(fields.backendUrl.value),
    apiKey: fields.apiKey.value.trim(),
    // at the slider's left end: follow the backend's own limit (0), whatever it is later
    threshold: Number(fields.threshold.value) <= Number(fields.threshold.min) ? 0 : Number(fields.threshold.value),
    showReal: fields.showReal.checked,
    sendPageUrl: fields.sendPageUrl.checked,
    disabledSites: parseSiteList(fields.disabledSites.value),
  };
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const saved = await saveSettings(readForm());
    fillForm(saved);
    showStatus("Saved.");
    fields.threshold.dataset.touched = "false"; // the form now shows what was saved
    readBackendLimits(saved); // the saved backend's limits (it may be a new one)
  } catch (error) {
    showStatus(error.message, true);
  }
});

document.getElementById("check-connection").addEventListener("click", async () => {
  showStatus("Checking…");
  try {
    const settings = readForm();
    const info = await getModelInfo(settings);
    setLimits(info.thresholds);
    showThreshold();
    const labels = info.labels?.length ? `, ${info.labels.length} labels` : "";
    showStatus(`Connected to ${settings.backendUrl}: model ${info.version}${labels}.`);
  } catch (error) {
    showStatus(error.message, true);
  }
});

fields.threshold.addEventListener("input", () => {
  fields.threshold.dataset.touched = "true";
  showThreshold();
});
// Only a backend the user saved is asked for its limits on load: a fresh install contacts
// nothing until the user saves one (or checks the connection).
const stored = await loadSettings();
const everSaved = await hasSavedSettings();
setLimits(null, everSaved ? "reading" : "unsaved");
fillForm(stored);
document.getElementById("fields").disabled = false;
if (everSaved) readBackendLimits(stored);
