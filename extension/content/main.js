// The content script's entry point: watches this page's images, asks the service worker
// about each one, draws the badges (from "Checking…" to the verdict, or "Not checked" and why),
// asks again by itself while the service is down or starting, sends reports from the badges'
// panels, and keeps the list and counts the popup shows. In
// iframes it only answers the context menu ("Check this image with genspot"): the popup and
// the toolbar count describe the top page.
(() => {
  const { MSG, PRIORITY, REPORTS_KEY, SERVICE_ERROR_CODES, settings: userSettings, images, verdicts, badges } = globalThis.genspot;
  const host = location.hostname;
  const TOP = window === window.top;
  const KINDS = ["ai", "real", "uncertain", "error"];
  const MAX_LISTED = 200; // images the popup lists
  const UNSENDABLE = { status: "error", error: { code: "unsupported_image", message: "genspot does not check this kind of image (drawings in SVG, or embedded images other than PNG, JPEG, WebP and GIF)" } };
  const RETRY_FIRST_MS = 2000; // then twice as long each time the service still does not answer
  const RETRY_MAX_MS = 15_000;

  let settings = userSettings.DEFAULT_SETTINGS;
  let running = false;
  let rescanning = false; // true while a rescan hands out images: they skip the session cache
  let answers = new Map(); // url + caption -> promise of the result (one request per image on the page)
  let lastContextElement = null; // what the user right-clicked last, for the context menu
  let nextId = 0;
  const results = new Map(); // element -> its result
  const tracked = new Map(); // element -> {id, url, caption}
  const byId = new Map(); // id -> element
  const pending = new Set(); // elements waiting for an answer
  let reported = new Map(); // sha256 -> the user's report of that image (chrome.storage.local, written by the service worker)
  let retryDelay = RETRY_FIRST_MS;
  let retryTimer = 0;
  const layer = new badges.BadgeLayer({ onReport: report });
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
      const entry = tracked.get(element);
      const { id, url } = entry;
      const kind = verdicts.kindOf(result, settings);
      if (entry.thumbnail === undefined) entry.thumbnail = images.thumbnailOf(element, url);
      entries.push({
        id, kind, text: verdicts.badgeText(kind, result), thumbnail: entry.thumbnail,
        url: url.startsWith("data:") ? "data: image" : url.slice(0, 500),
        image_url: /^https?:/i.test(url) ? url.slice(0, 2048) : null,
        sha256: result.sha256 ?? null, verdict: result.verdict ?? null, decided_by: result.decided_by ?? null,
        model_version: result.model_version ?? null, error: result.error?.message ?? null,
      });
    }
    return entries;
  }

  /** What is wrong with the service (not with one image), for the popup; "" when nothing is. */
  function serviceError() {
    for (const result of results.values()) if (SERVICE_ERROR_CODES.includes(result.error?.code)) return result.error.message;
    return "";
  }

  function pageState() {
    return { host, enabled: running, stats: stats(), lastError: serviceError(), images: listed() };
  }

  function reportStats() {
    if (TOP) chrome.runtime.sendMessage({ type: MSG.PAGE_STATS, stats: stats() }).catch(() => {});
  }

  /** Draws an element's badge: its verdict, "Not checked", or "Checking…" while the first answer is on its way. */
  function render(element) {
    const result = results.get(element);
    const view = result ? verdicts.describe(result, settings) : pending.has(element) ? verdicts.CHECKING : null;
    if (!view) return layer.remove(element);
    layer.show(element, { ...view, reported: (result?.sha256 && reported.get(result.sha256)) || null });
  }

  /** Sends the user's report of a wrong verdict from an image's panel; answers {status} or {error}. */
  async function report(element, correctLabel, note) {
    const result = results.get(element);
    const { url } = tracked.get(element) ?? {};
    if (!result?.sha256) return { error: { message: "this image has no verdict to report" } };
    const fields = {
      sha256: result.sha256, correct_label: correctLabel, reported_verdict: result.verdict, decided_by: result.decided_by ?? null,
      model_version: result.model_version ?? null, image_url: /^https?:/i.test(url ?? "") ? url.slice(0, 2048) : null, comment: note || null,
    };
    try {
      return await chrome.runtime.sendMessage({ type: MSG.REPORT, report: fields, thumbnail: images.thumbnailOf(element, url) });
    } catch (error) {
      return { error: { message: String(error?.message ?? error) } };
    }
  }

  function showReports(stored) {
    reported = new Map((stored ?? []).map((entry) => [entry.sha256, entry]));
    results.forEach((_, element) => render(element));
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
    const entry = tracked.get(element);
    if (entry.url !== url) entry.thumbnail = undefined; // made again, from the new picture, when listed
    Object.assign(entry, { url, caption });
  }

  /** Asks again, after a pause that doubles up to RETRY_MAX_MS, about the images the service could not answer for. */
  function scheduleRetry() {
    if (retryTimer || !running) return;
    retryTimer = setTimeout(retryFailed, retryDelay);
    retryDelay = Math.min(2 * retryDelay, RETRY_MAX_MS);
  }

  function retryFailed() {
    retryTimer = 0;
    const failed = [...results].filter(([element, result]) => element.isConnected && verdicts.isRetried(result));
    for (const [element] of failed) answers.delete(`${tracked.get(element).url}\n${tracked.get(element).caption}`);
    for (const [element] of failed) {
      const { url, caption } = tracked.get(element);
      check(element, url, caption, { again: true });
    }
  }

  function stopRetrying() {
    clearTimeout(retryTimer);
    retryTimer = 0;
    retryDelay = RETRY_FIRST_MS;
  }

  /**
   * Asks about one element's image and draws its badge. `manual` checks (context menu, the
   * popup's recheck) skip the session cache, are as urgent as the viewport's images and are
   * kept even when the watcher did not offer them; `again` marks a retry after the service
   * failed to answer.
   */
  function check(element, url, caption, { manual = false, again = false, priority = PRIORITY.VISIBLE } = {}) {
    const key = `${url}\n${caption}`;
    const fresh = manual || rescanning;
    if (manual || !answers.has(key)) answers.set(key, ask(url, caption, fresh, priority));
    const generation = answers;
    track(element, url, caption);
    pending.add(element);
    if (!results.has(element)) render(element); // "Checking…"
    return answers.get(key).then((answer) => {
      pending.delete(element);
      const offered = watcher.currentUrl(element);
      const moved = again ? offered !== undefined && offered !== url : offered !== url;
      const stale = generation !== answers || (!manual && (!running || moved));
      if (stale) return answer;
      const result = answer ?? UNSENDABLE; // nothing that can be sent: skipped, and the badge says why
      results.set(element, result);
      if (verdicts.isRetried(result)) scheduleRetry();
      else if (result.status === "ok") retryDelay = RETRY_FIRST_MS;
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
    stopRetrying();
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
  chrome.storage.onChanged.addListener((changes, area) => {
    if (area === "local" && changes[REPORTS_KEY]) showReports(changes[REPORTS_KEY].newValue);
  });
  chrome.storage.local.get(REPORTS_KEY).then((stored) => showReports(stored[REPORTS_KEY]));
})();
