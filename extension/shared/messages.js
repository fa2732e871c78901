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
  // popup -> service worker
  REPORT: "genspot/report", // {report: {sha256, correct_label, ...}} -> POST /v1/feedback -> {status, id} | {error}
});

// How urgent an image's answer is (the backend's `priority`, RFC 9218 urgency: lower first): what
// the user sees now comes before what is only near the viewport.
globalThis.genspot.PRIORITY = Object.freeze({ VISIBLE: 1, NEARBY: 4 });
