// The toolbar popup: this page's counts and images (verdict, show, recheck, report a wrong
// verdict), the on/off switch for its site, and "Rescan". It talks to the page's content
// script (top frame) and, for reports, to the service worker. `popup.html?tab=ID` shows a
// given tab (used by tests).

import "../shared/messages.js";
import "../shared/settings.js";

const { MSG, settings: userSettings } = globalThis.genspot;
const REFRESH_MS = 500; // counts change while answers arrive
const $ = (id) => document.getElementById(id);
const LABELS = { ai: "It is AI-generated", real: "It is real" };

async function targetTabId() {
  const requested = new URLSearchParams(location.search).get("tab");
  if (requested) return Number(requested);
  const [tab] = await chrome.tabs.query({ active: true, currentWindow: true });
  return tab?.id;
}

const tabId = await targetTabId();
let shownList = ""; // the list is redrawn only when it changes, so an open report form stays open
let entries = new Map(); // id -> entry
let reporting = null; // id of the entry whose report form is open

async function send(type, fields = {}) {
  try {
    return await chrome.tabs.sendMessage(tabId, { type, ...fields }, { frameId: 0 });
  } catch {
    return null; // no content script here (browser pages, the web store, a page still loading)
  }
}

function element(tag, attributes = {}, children = []) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

function button(action, text, extra = {}) {
  return element("button", { type: "button", "data-action": action, ...extra }, [text]);
}

function imageRow(entry) {
  const actions = [button("show", "Show"), button("recheck", "Recheck")];
  if (entry.sha256) actions.push(button("report", "Wrong verdict?", { "aria-expanded": String(reporting === entry.id) }));
  const row = [element("span", { class: "chip" }, [entry.text]), element("span", { class: "where", title: entry.url }, [entry.error ?? entry.url]), element("div", { class: "row" }, actions)];
  if (entry.sha256 && reporting === entry.id) {
    const choices = Object.entries(LABELS).map(([label, text]) => button("send-report", text, { "data-label": label }));
    row.push(element("div", { class: "row report" }, choices));
  }
  return element("li", { class: entry.kind, "data-id": entry.id }, row);
}

function renderList(images) {
  const signature = JSON.stringify([images, reporting]);
  if (signature === shownList) return;
  shownList = signature;
  entries = new Map(images.map((entry) => [entry.id, entry]));
  $("images").replaceChildren(...images.map(imageRow));
  $("no-images").hidden = images.length > 0;
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
  renderList(state.images ?? []);
}

async function refresh() {
  render(await send(MSG.GET_PAGE_STATE));
}

async function report(entry, label) {
  $("report-status").textContent = "Sending the report…";
  const answer = await chrome.runtime.sendMessage({
    type: MSG.REPORT,
    report: {
      sha256: entry.sha256, correct_label: label, reported_verdict: entry.verdict, decided_by: entry.decided_by,
      model_version: entry.model_version, image_url: entry.image_url,
    },
  });
  reporting = null;
  $("report-status").className = answer?.error ? "error" : "muted";
  $("report-status").textContent = answer?.error
    ? `Report not sent: ${answer.error.message}`
    : answer.status === "duplicate" ? "You already reported this image." : "Thanks: reported to your backend (kept as an unverified claim).";
  await refresh();
}

$("images").addEventListener("click", async (event) => {
  const target = event.target.closest("button[data-action]");
  const entry = entries.get(target?.closest("li")?.dataset.id);
  if (!entry) return;
  const action = target.dataset.action;
  if (action === "show") await send(MSG.SHOW_IMAGE, { id: entry.id });
  if (action === "recheck") render((await send(MSG.RECHECK_IMAGE, { id: entry.id }))?.state ?? null);
  if (action === "report") {
    reporting = reporting === entry.id ? null : entry.id;
    await refresh();
  }
  if (action === "send-report") await report(entry, target.dataset.label);
});
$("site-enabled").addEventListener("change", async (event) => {
  const host = $("host").textContent;
  const settings = await userSettings.loadSettings();
  await userSettings.saveSettings(userSettings.withSiteEnabled(settings, host, event.target.checked));
});
$("rescan").addEventListener("click", async () => render(await send(MSG.RESCAN)));
$("open-options").addEventListener("click", () => chrome.runtime.openOptionsPage());

await refresh();
setInterval(refresh, REFRESH_MS);
