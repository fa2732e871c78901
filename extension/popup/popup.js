// The toolbar popup: this page's counts and images (thumbnail, verdict, show, recheck; reported
// ones marked), the on/off switch for its site, "Rescan", and the wrong-verdict reports the user
// sent from badges' panels (kept in chrome.storage.local by the service worker). It talks to the
// page's content script (top frame). `popup.html?tab=ID` shows a given tab (used by tests).

import "../shared/messages.js";
import "../shared/settings.js";

const { MSG, REPORTS_KEY, settings: userSettings } = globalThis.genspot;
const REFRESH_MS = 500; // counts change while answers arrive
const $ = (id) => document.getElementById(id);
const SAID = { ai: "it is AI-made", real: "it is real" };

async function targetTabId() {
  const requested = new URLSearchParams(location.search).get("tab");
  if (requested) return Number(requested);
  const [tab] = await chrome.tabs.query({ active: true, currentWindow: true });
  return tab?.id;
}

const tabId = await targetTabId();
let shownList = ""; // the list is redrawn only when it changes
let entries = new Map(); // id -> entry
let reports = []; // the stored reports, newest first
let lastState = null;

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

function button(action, text) {
  return element("button", { type: "button", "data-action": action }, [text]);
}

function thumbnail(src) {
  return src ? element("img", { class: "thumb", src, alt: "", loading: "lazy" }) : element("span", { class: "thumb" });
}

function imageRow(entry, report) {
  const info = [element("span", { class: "chip" }, [entry.text]), element("span", { class: "where", title: entry.url }, [entry.error ?? entry.url])];
  if (report) info.push(element("span", { class: "reported-mark" }, [`Reported: ${SAID[report.correct_label] ?? report.correct_label}`]));
  info.push(element("div", { class: "row" }, [button("show", "Show"), button("recheck", "Recheck")]));
  const kinds = report ? `${entry.kind} reported` : entry.kind;
  return element("li", { class: kinds, "data-id": entry.id }, [thumbnail(entry.thumbnail), element("div", { class: "info" }, info)]);
}

function reportRow(report) {
  const when = new Date(report.at).toLocaleString();
  const info = [
    element("span", { class: "said" }, [`You said: ${SAID[report.correct_label] ?? report.correct_label}`]),
    element("span", { class: "where", title: report.image_url ?? "" }, [`${report.host || "a page"} · ${when}`]),
  ];
  if (report.comment) info.push(element("span", { class: "note", title: report.comment }, [`“${report.comment}”`]));
  return element("li", { "data-sha256": report.sha256 }, [thumbnail(report.thumbnail), element("div", { class: "info" }, info)]);
}

function renderImages(images) {
  const signature = JSON.stringify([images, reports.map((report) => report.sha256)]);
  if (signature === shownList) return;
  shownList = signature;
  entries = new Map(images.map((entry) => [entry.id, entry]));
  const bySha = new Map(reports.map((report) => [report.sha256, report]));
  $("images").replaceChildren(...images.map((entry) => imageRow(entry, entry.sha256 ? bySha.get(entry.sha256) : null)));
  $("no-images").hidden = images.length > 0;
}

function render(state) {
  lastState = state;
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
  renderImages(state.images ?? []);
}

function showReports(stored) {
  reports = stored ?? [];
  $("reports").replaceChildren(...reports.map(reportRow));
  $("reports").hidden = reports.length === 0;
  $("no-reports").hidden = reports.length > 0;
  if (lastState) renderImages(lastState.images ?? []);
}

async function refresh() {
  render(await send(MSG.GET_PAGE_STATE));
}

$("images").addEventListener("click", async (event) => {
  const target = event.target.closest("button[data-action]");
  const entry = entries.get(target?.closest("li")?.dataset.id);
  if (!entry) return;
  const action = target.dataset.action;
  if (action === "show") await send(MSG.SHOW_IMAGE, { id: entry.id });
  if (action === "recheck") render((await send(MSG.RECHECK_IMAGE, { id: entry.id }))?.state ?? null);
});
$("site-enabled").addEventListener("change", async (event) => {
  const host = $("host").textContent;
  const settings = await userSettings.loadSettings();
  await userSettings.saveSettings(userSettings.withSiteEnabled(settings, host, event.target.checked));
});
$("rescan").addEventListener("click", async () => render(await send(MSG.RESCAN)));
$("open-options").addEventListener("click", () => chrome.runtime.openOptionsPage());

chrome.storage.onChanged.addListener((changes, area) => {
  if (area === "local" && changes[REPORTS_KEY]) showReports(changes[REPORTS_KEY].newValue);
});
showReports((await chrome.storage.local.get(REPORTS_KEY))[REPORTS_KEY]);
await refresh();
setInterval(refresh, REFRESH_MS);
