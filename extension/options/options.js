// The options page: edits the settings in chrome.storage.local and checks the connection.

import "../shared/settings.js";
import { getModelInfo } from "../background/backend_client.js";

const { loadSettings, saveSettings, normalizeBackendUrl, parseSiteList } = globalThis.genspot.settings;
const form = document.getElementById("options");
const fields = form.elements;
const status = document.getElementById("status");

function showStatus(text, isError = false) {
  status.textContent = text;
  status.className = isError ? "error" : "muted";
}

const percent = (value) => `${Math.round(Number(value) * 100)}%`;
const FALLBACK_AI_LIMIT = 0.65; // the backend's default threshold + uncertain band

/** The slider's left end is the backend's AI limit (threshold + uncertain band): below it a slider would change nothing. */
function setLimits(thresholds) {
  const aiLimit = thresholds ? thresholds.threshold + thresholds.uncertain_band : FALLBACK_AI_LIMIT;
  fields.threshold.min = String(Math.min(0.99, Math.round(aiLimit * 100) / 100));
  document.getElementById("threshold-limits").textContent = thresholds
    ? `This backend: "AI" from ${percent(aiLimit)}, "real" below ${percent(thresholds.threshold - thresholds.uncertain_band)}.`
    : `The backend's limits could not be read; assuming its defaults ("AI" from ${percent(FALLBACK_AI_LIMIT)}).`;
}

function showThreshold() {
  const atBackend = Number(fields.threshold.value) <= Number(fields.threshold.min);
  document.getElementById("threshold-value").textContent = atBackend
    ? `${percent(fields.threshold.min)} (the backend's own AI limit)`
    : percent(fields.threshold.value);
}

/** Reads the saved backend's limits; the slider keeps the saved minimum unless the user moved it meanwhile. */
async function readBackendLimits(settings) {
  let thresholds = null;
  try {
    thresholds = (await getModelInfo(settings)).thresholds;
  } catch {
    // unreachable or refused: the defaults stand, and "Check connection" says why
  }
  if (!thresholds) return;
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
    fillForm(await saveSettings(readForm()));
    showStatus("Saved.");
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
const stored = await loadSettings();
setLimits(null);
fillForm(stored);
readBackendLimits(stored);
