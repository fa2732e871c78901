// The extension's service worker: the only part that talks to the backend. Listeners are
// registered synchronously at the top level so Chrome can wake the worker for any event.

import "../shared/messages.js";
import "../shared/settings.js";
import { detect } from "./detector.js";

const { MSG, settings: userSettings } = globalThis.genspot;
const BADGE_COLOUR = "#b3261e";

async function handleDetect(message, sender) {
  const settings = await userSettings.loadSettings();
  const { url, image_b64, alt_text } = message.item;
  const item = url ? { url, alt_text } : { image_b64, alt_text };
  if (settings.sendPageUrl && sender.url) item.page_url = sender.url;
  return detect(settings, item, { fresh: Boolean(message.fresh) });
}

async function handlePageStats(message, sender) {
  const tabId = sender.tab?.id;
  if (tabId === undefined) return {};
  const ai = message.stats.ai;
  await chrome.action.setBadgeText({ tabId, text: ai > 0 ? String(ai) : "" });
  await chrome.action.setBadgeBackgroundColor({ tabId, color: BADGE_COLOUR });
  return {};
}

const HANDLERS = {
  [MSG.DETECT]: handleDetect,
  [MSG.PAGE_STATS]: handlePageStats,
};

chrome.runtime.onMessage.addListener((message, sender, sendResponse) => {
  const handler = HANDLERS[message?.type];
  if (!handler || sender.id !== chrome.runtime.id) return false;
  handler(message, sender).then(sendResponse, (error) =>
    sendResponse({ status: "error", error: { code: "extension_error", message: String(error?.message ?? error) } }),
  );
  return true; // the answer is sent asynchronously
});
