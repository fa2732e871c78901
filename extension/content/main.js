// The content script's entry point: watches this page's images, asks the service worker
// about each one, draws the badges and keeps the list and counts the popup shows. In
// iframes it only answers the context menu ("Check this image with genspot"): the popup and
// the toolbar count describe the top page.
(() => {
  const { MSG, PRIORITY, settings: userSettings, images, verdicts, badges } = globalThis.genspot;
  const host = location.hostname;
  const TOP = window === window.top;
  const KINDS = ["ai", "real", "uncertain", "error"];
  const MAX_LISTED = 200; // images the popup lists
  const UNSENDABLE = { status: "error", error: { code: "unsupported_image", message: "this kind of image cannot be checked (SVG, or a data: URL that is not PNG, JPEG, WebP or GIF)" } };

  let settings = userSettings.DEFAULT_SETTINGS;
  let running = false;
  let rescanning = false; // true while a rescan hands out images: they skip the session cache
  let lastError = "";
  let answers = new Map(); // url + caption -> promise of the result (one request per image on the page)
  let lastContextElement = null; // what the user right-clicked last, for the context menu
  let nextId = 0;
  const results = new Map(); // element -> its result
  const tracked = new Map(); // element -> {id, url, caption}
  const byId = new Map(); // id -> element
  const pending = new Set(); // elements waiting for an answer
  const layer = new badges.BadgeLayer();
  const watcher = new images.ImageWatcher({
    onImage: (img, url, priority) => check(img, url, images.captionOf(img), { priority }),
    onChange: pageChanged,
  });

  function stats() {
    const counts = Object.fromEntries(KINDS.map((kind) => [kind, 0]));
    for (const [element, result] of results) if (element.isConnected) counts[verdicts.kindOf(result, settings)] += 1;
    return { ...counts, pending: pending.size };
  }

  /** The popup's per-image list: what each badge says and what a report needs. */
  function listed() {
    const entries = [];
    for (const [element, result] of results) {
      if (!element.isConnected || entries.length >= MAX_LISTED) continue;
      const { id, url } = tracked.get(element);
      const kind = verdicts.kindOf(result, settings);
      entries.push({
        id, kind, text: verdicts.badgeText(kind, result),
        url: url.startsWith("data:") ? "data: image" : url.slice(0, 500),
        image_url: /^https?:/i.test(url) ? url.slice(0, 2048) : null,
        sha256: result.sha256 ?? null, verdict: result.verdict ?? null, decided_by: result.decided_by ?? null,
        model_version: result.model_version ?? null, error: result.error?.message ?? null,
      });
    }
    return entries;
  }

  function pageState() {
    return { host, enabled: running, stats: stats(), lastError, images: listed() };
  }

  function reportStats() {
    if (TOP) chrome.runtime.sendMessage({ type: MSG.PAGE_STATS, stats: stats() }).catch(() => {});
  }

  function render(element) {
    const view = verdicts.describe(results.get(element), settings);
    if (view) layer.show(element, view);
    else layer.remove(element);
  }

  async function ask(url, caption, fresh, priority) {
    try {
      const item = await images.itemFor(url, caption);
      return item ? await chrome.runtime.sendMessage({ type: MSG.DETECT, item, fresh, priority }) : null;
    } catch (error) {
      // e.g. the extension was reloaded and this orphaned script can no longer reach it
      return { status: "error", error: { code: "extension_error", message: String(error?.message ?? error) } };
    }
  }

  function track(element, url, caption) {
    if (!tracked.has(element)) {
      const id = String(++nextId);
      byId.set(id, element);
      tracked.set(element, { id, url, caption });
    }
    Object.assign(tracked.get(element), { url, caption });
  }

  /**
   * Asks about one element's image and draws its badge. `manual` checks (context menu, the
   * popup's recheck) skip the session cache, are as urgent as the viewport's images and are
   * kept even when the watcher did not offer them.
   */
  function check(element, url, caption, { manual = false, priority = PRIORITY.VISIBLE } = {}) {
    const key = `${url}\n${caption}`;
    const fresh = manual || rescanning;
    if (manual || !answers.has(key)) answers.set(key, ask(url, caption, fresh, priority));
    const generation = answers;
    track(element, url, caption);
    pending.add(element);
    return answers.get(key).then((answer) => {
      pending.delete(element);
      const stale = generation !== answers || (!manual && (!running || watcher.currentUrl(element) !== url));
      if (stale) return answer;
      const result = answer ?? (manual ? UNSENDABLE : null);
      if (result === null) results.delete(element); // nothing that can be sent
      else results.set(element, result);
      if (result?.status === "error") lastError = result.error.message;
      render(element);
      reportStats();
      return result;
    });
  }

  /** Forgets images that left the page (infinite scroll, carousels); re-added ones are checked again. */
  function pageChanged() {
    let removed = false;
    for (const element of results.keys()) {
      if (!element.isConnected) {
        results.delete(element);
        byId.delete(tracked.get(element)?.id);
        tracked.delete(element);
        watcher.forget(element);
        removed = true;
      }
    }
    layer.schedule();
    if (removed) reportStats();
  }

  function forgetAll() {
    answers = new Map();
    results.clear();
    tracked.clear();
    byId.clear();
    pending.clear();
    layer.clear();
    lastError = "";
  }

  function start() {
    if (running || !TOP) return;
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
    results.forEach((_, element) => render(element)); // threshold or "likely real" may have changed
    reportStats();
  }

  async function checkContextTarget(message) {
    const target = images.contextTarget(lastContextElement, message.srcUrl);
    if (!target) return { checked: false, reason: "no image or CSS background image where you right-clicked" };
    const result = await check(target.element, target.url, target.caption, { manual: true });
    return { checked: true, url: target.url, status: result?.status ?? null };
  }

  async function recheck(message) {
    const element = byId.get(message.id);
    if (!element) return { rechecked: false };
    const { url, caption } = tracked.get(element);
    const result = await check(element, url, caption, { manual: true });
    return { rechecked: true, status: result?.status ?? null, state: pageState() };
  }

  const HANDLERS = {
    [MSG.CHECK_CONTEXT_TARGET]: checkContextTarget,
    ...(TOP && {
      [MSG.GET_PAGE_STATE]: pageState,
      [MSG.RESCAN]: () => {
        if (running) rescan();
        return pageState();
      },
      [MSG.SHOW_IMAGE]: (message) => ({ shown: byId.has(message.id) && layer.reveal(byId.get(message.id)) }),
      [MSG.RECHECK_IMAGE]: recheck,
    }),
  };

  chrome.runtime.onMessage.addListener((message, sender, sendResponse) => {
    const handler = HANDLERS[message?.type];
    if (!handler || sender.id !== chrome.runtime.id) return false;
    Promise.resolve(handler(message)).then(sendResponse, (error) => sendResponse({ error: String(error?.message ?? error) }));
    return true; // some answers come asynchronously
  });
  // Capture phase on window: the page's own handlers cannot hide the right-clicked element from us.
  window.addEventListener("contextmenu", (event) => {
    lastContextElement = event.composedPath()[0] instanceof Element ? event.composedPath()[0] : event.target;
  }, true);
  userSettings.onSettingsChanged(applySettings);
  userSettings.loadSettings().then(applySettings);
})();
