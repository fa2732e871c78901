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

function showThreshold() {
  document.getElementById("threshold-value").textContent = `${Math.round(Number(fields.threshold.value) * 100)}%`;
}

function fillForm(settings) {
  fields.backendUrl.value = settings.backendUrl;
  fields.apiKey.value = settings.apiKey;
  fields.threshold.value = String(settings.threshold);
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
    threshold: Number(fields.threshold.value),
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
    const labels = info.labels?.length ? `, ${info.labels.length} labels` : "";
    showStatus(`Connected to ${settings.backendUrl}: model ${info.version}${labels}.`);
  } catch (error) {
    showStatus(error.message, true);
  }
});

fields.threshold.addEventListener("input", showThreshold);
fillForm(await loadSettings());
