// The content script's entry point: watches this page's images, asks the service worker
// about each one, draws the badges and keeps the counts the popup shows.
(() => {
  const { MSG, settings: userSettings, images, verdicts, badges } = globalThis.genspot;
  const host = location.hostname;
  const KINDS = ["ai", "real", "uncertain", "error"];

  let settings = userSettings.DEFAULT_SETTINGS;
  let running = false;
  let rescanning = false; // true while a rescan hands out images: they skip the session cache
  let lastError = "";
  let answers = new Map(); // url + caption -> promise of the result (one request per image on the page)
  const results = new Map(); // img -> its result
  const pending = new Set(); // imgs waiting for an answer
  const layer = new badges.BadgeLayer();
  const watcher = new images.ImageWatcher({ onImage: check, onChange: pageChanged });

  function stats() {
    const counts = Object.fromEntries(KINDS.map((kind) => [kind, 0]));
    for (const [img, result] of results) if (img.isConnected) counts[verdicts.kindOf(result, settings)] += 1;
    return { ...counts, pending: pending.size };
  }

  function reportStats() {
    chrome.runtime.sendMessage({ type: MSG.PAGE_STATS, stats: stats() }).catch(() => {});
  }

  function render(img) {
    const view = verdicts.describe(results.get(img), settings);
    if (view) layer.show(img, view);
    else layer.remove(img);
  }

  async function ask(url, caption, fresh) {
    try {
      const item = await images.itemFor(url, caption);
      return item ? await chrome.runtime.sendMessage({ type: MSG.DETECT, item, fresh }) : null;
    } catch (error) {
      // e.g. the extension was reloaded and this orphaned script can no longer reach it
      return { status: "error", error: { code: "extension_error", message: String(error?.message ?? error) } };
    }
  }

  function check(img, url) {
    const caption = images.captionOf(img);
    const key = `${url}\n${caption}`;
    if (!answers.has(key)) answers.set(key, ask(url, caption, rescanning));
    const generation = answers;
    pending.add(img);
    answers.get(key).then((result) => {
      pending.delete(img);
      if (!running || generation !== answers || watcher.currentUrl(img) !== url) return; // stale answer
      if (result === null) results.delete(img); // nothing that can be sent
      else results.set(img, result);
      if (result?.status === "error") lastError = result.error.message;
      render(img);
      reportStats();
    });
  }

  /** Forgets images that left the page (infinite scroll, carousels); re-added ones are checked again. */
  function pageChanged() {
    let removed = false;
    for (const img of results.keys()) {
      if (!img.isConnected) {
        results.delete(img);
        watcher.forget(img);
        removed = true;
      }
    }
    layer.schedule();
    if (removed) reportStats();
  }

  function forgetAll() {
    answers = new Map();
    results.clear();
    pending.clear();
    layer.clear();
    lastError = "";
  }

  function start() {
    if (running) return;
    running = true;
    watcher.start();
  }

  function stop() {
    if (!running) return;
    running = false;
    watcher.stop();
    forgetAll();
    reportStats();
  }

  function rescan() {
    forgetAll();
    rescanning = true;
    watcher.rescan();
    rescanning = false;
    reportStats();
  }

  function applySettings(next) {
    const otherBackend = next.backendUrl !== settings.backendUrl || next.apiKey !== settings.apiKey;
    settings = next;
    if (!userSettings.isSiteEnabled(settings, host)) return stop();
    if (!running) return start();
    if (otherBackend) return rescan(); // its verdicts may differ
    results.forEach((_, img) => render(img)); // threshold or "likely real" may have changed
    reportStats();
  }

  const HANDLERS = {
    [MSG.GET_PAGE_STATE]: () => ({ host, enabled: running, stats: stats(), lastError }),
    [MSG.RESCAN]: () => {
      if (running) rescan();
      return { host, enabled: running, stats: stats(), lastError };
    },
  };

  chrome.runtime.onMessage.addListener((message, sender, sendResponse) => {
    const handler = HANDLERS[message?.type];
    if (!handler || sender.id !== chrome.runtime.id) return false;
    sendResponse(handler());
    return false;
  });
  userSettings.onSettingsChanged(applySettings);
  userSettings.loadSettings().then(applySettings);
})();
