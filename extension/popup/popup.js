// The toolbar popup: this page's counts, the on/off switch for its site, and "Rescan".
// It talks to the page's content script; `popup.html?tab=ID` shows a given tab (used by tests).

import "../shared/messages.js";
import "../shared/settings.js";

const { MSG, settings: userSettings } = globalThis.genspot;
const REFRESH_MS = 500; // counts change while answers arrive
const $ = (id) => document.getElementById(id);

async function targetTabId() {
  const requested = new URLSearchParams(location.search).get("tab");
  if (requested) return Number(requested);
  const [tab] = await chrome.tabs.query({ active: true, currentWindow: true });
  return tab?.id;
}

const tabId = await targetTabId();

async function send(type) {
  try {
    return await chrome.tabs.sendMessage(tabId, { type });
  } catch {
    return null; // no content script here (browser pages, the web store, a page still loading)
  }
}

function render(state) {
  $("unavailable").hidden = state !== null;
  $("page").hidden = state === null;
  if (state === null) return;
  $("host").textContent = state.host;
  for (const kind of ["ai", "real", "uncertain", "error"]) $(`count-${kind}`).textContent = String(state.stats[kind]);
  $("pending").textContent = state.stats.pending > 0 ? `Checking ${state.stats.pending} image(s)…` : "";
  $("last-error").hidden = !state.lastError;
  $("last-error").textContent = state.lastError;
  $("site-enabled").checked = state.enabled;
  $("rescan").disabled = !state.enabled;
}

async function refresh() {
  render(await send(MSG.GET_PAGE_STATE));
}

$("site-enabled").addEventListener("change", async (event) => {
  const host = $("host").textContent;
  const settings = await userSettings.loadSettings();
  await userSettings.saveSettings(userSettings.withSiteEnabled(settings, host, event.target.checked));
});
$("rescan").addEventListener("click", async () => render(await send(MSG.RESCAN)));
$("open-options").addEventListener("click", () => chrome.runtime.openOptionsPage());

await refresh();
setInterval(refresh, REFRESH_MS);
