// Message names shared by the service worker, content scripts, popup and options page.
//
// Content scripts cannot `import`, so this file is written to run both as a classic script
// (listed before the content scripts in manifest.json) and as a side-effect ES module import
// (`import "../shared/messages.js"`); either way it fills the `genspot` namespace.
globalThis.genspot = globalThis.genspot || {};

globalThis.genspot.MSG = Object.freeze({
  // content script -> service worker
  DETECT: "genspot/detect", // {item: {url | image_b64, alt_text}, fresh, priority} -> result
  PAGE_STATS: "genspot/page-stats", // {stats} -> sets the toolbar badge for the sender's tab
  // service worker -> content script (the frame the context menu was opened in)
  CHECK_CONTEXT_TARGET: "genspot/check-context-target", // {srcUrl | null} -> {checked, url?, reason?}
  // popup -> content script (top frame)
  GET_PAGE_STATE: "genspot/get-page-state", // -> {host, enabled, stats, lastError, images: [...]}
  RESCAN: "genspot/rescan", // forget this page's results and check every image again
  SHOW_IMAGE: "genspot/show-image", // {id} scroll to an image and open its badge's details
  RECHECK_IMAGE: "genspot/recheck-image", // {id} ask the backend again about one image, skipping the session cache
  // content script (a badge's panel) -> service worker
  REPORT: "genspot/report", // {report: {sha256, correct_label, comment?, ...}, thumbnail} -> POST /v1/feedback, kept in REPORTS_KEY -> {status, id} | {error}
});

// chrome.storage.local key of the reports the user sent (newest first, at most MAX_REPORTS): the
// service worker writes it, badges and the popup read it.
globalThis.genspot.REPORTS_KEY = "reports";
globalThis.genspot.MAX_REPORTS = 100;

// Error codes about the service rather than the image (backend_client.js): the popup shows them, and
// those in RETRY_CODES heal by themselves, so the page asks again with a growing pause.
globalThis.genspot.SERVICE_ERROR_CODES = Object.freeze(["backend_unreachable", "backend_timeout", "backend_unavailable", "rate_limited", "unauthorized", "backend_error", "extension_error"]);
globalThis.genspot.RETRY_CODES = Object.freeze(["backend_unreachable", "backend_timeout", "backend_unavailable", "rate_limited"]);

// How urgent an image's answer is (the backend's `priority`, RFC 9218 urgency: lower first): what
// the user sees now comes before what is only near the viewport.
globalThis.genspot.PRIORITY = Object.freeze({ VISIBLE: 1, NEARBY: 4 });
