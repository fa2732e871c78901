// The extension's service worker: the only part that talks to the backend. Listeners are
// registered synchronously at the top level so Chrome can wake the worker for any event.

import "../shared/messages.js";
import "../shared/settings.js";
import { BackendError, postFeedback } from "./backend_client.js";
import { detect } from "./detector.js";

const { MSG, REPORTS_KEY, MAX_REPORTS, settings: userSettings } = globalThis.genspot;
const BADGE_COLOUR = "#b3261e";
const MENU_ID = "genspot-check";
// "page" and "frame" too: a CSS background is not an "image" to the context menu.
const MENU_CONTEXTS = ["image", "page", "frame", "link"];

async function handleDetect(message, sender) {
  const settings = await userSettings.loadSettings();
  const { url, image_b64, alt_text } = message.item;
  const item = url ? { url, alt_text } : { image_b64, alt_text };
  item.priority = message.priority; // the backend's queue order: the viewport's images first
  if (settings.sendPageUrl && sender.url) item.page_url = sender.url;
  return detect(settings, item, { fresh: Boolean(message.fresh) });
}

async function handlePageStats(message, sender) {
  const tabId = sender.tab?.id;
  if (tabId === undefined || sender.frameId !== 0) return {};
  const ai = message.stats.ai;
  await chrome.action.setBadgeText({ tabId, text: ai > 0 ? String(ai) : "" });
  await chrome.action.setBadgeBackgroundColor({ tabId, color: BADGE_COLOUR });
  return {};
}

/**
 * Sends a wrong-verdict report from a badge's panel to the backend and keeps it (with a small
 * thumbnail, the page's host and the time) in chrome.storage.local for the popup and the badges.
 * The page cannot send it: only the extension's content script can message the extension, and it
 * reports only on a click the user made.
 */
async function handleReport(message, sender) {
  const settings = await userSettings.loadSettings();
  const report = message.report ?? {};
  let answer;
  try {
    answer = await postFeedback(settings, report);
  } catch (error) {
    if (error instanceof BackendError) return { error: { code: error.code, message: error.message } };
    throw error;
  }
  const page = sender.url ?? sender.tab?.url;
  const host = page ? new URL(page).hostname : "";
  await keepReport({ ...report, thumbnail: message.thumbnail ?? null, host, at: Date.now() });
  return answer;
}

let keeping = Promise.resolve(); // one read-modify-write of the stored reports at a time

/** Stores `entry` first in the reports list (replacing an earlier report of the same image). */
function keepReport(entry) {
  keeping = keeping.catch(() => {}).then(async () => {
    const stored = (await chrome.storage.local.get(REPORTS_KEY))[REPORTS_KEY] ?? [];
    const others = stored.filter((kept) => kept.sha256 !== entry.sha256);
    await chrome.storage.local.set({ [REPORTS_KEY]: [entry, ...others].slice(0, MAX_REPORTS) });
  });
  return keeping;
}

/** The context menu: the content script of the clicked frame finds the image or CSS background and checks it. */
async function handleContextMenu(info, tab) {
  if (info.menuItemId !== MENU_ID || tab?.id === undefined) return null;
  const message = { type: MSG.CHECK_CONTEXT_TARGET, srcUrl: info.srcUrl ?? null };
  try {
    return await chrome.tabs.sendMessage(tab.id, message, { frameId: info.frameId ?? 0 });
  } catch {
    return null; // no content script in that frame (a browser page, a file: URL)
  }
}
// The tests run this path directly: a native context menu cannot be clicked by automation.
globalThis.genspot.handleContextMenu = handleContextMenu;

const HANDLERS = {
  [MSG.DETECT]: handleDetect,
  [MSG.PAGE_STATS]: handlePageStats,
  [MSG.REPORT]: handleReport,
};

chrome.runtime.onMessage.addListener((message, sender, sendResponse) => {
  const handler = HANDLERS[message?.type];
  if (!handler || sender.id !== chrome.runtime.id) return false;
  handler(message, sender).then(sendResponse, (error) =>
    sendResponse({ status: "error", error: { code: "extension_error", message: String(error?.message ?? error) } }),
  );
  return true; // the answer is sent asynchronously
});

chrome.runtime.onInstalled.addListener(() => {
  chrome.contextMenus.removeAll(() => {
    chrome.contextMenus.create({ id: MENU_ID, title: "Check this image with genspot", contexts: MENU_CONTEXTS });
  });
});

chrome.contextMenus.onClicked.addListener((info, tab) => {
  handleContextMenu(info, tab);
});
