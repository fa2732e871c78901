// User settings: defaults, loading and saving in chrome.storage.local, and site matching.
//
// chrome.storage.local (not .sync) on purpose: the API key and backend address stay on this
// machine. Like messages.js this runs as a classic content script and as a module import.
globalThis.genspot = globalThis.genspot || {};

(() => {
  const SETTINGS_KEY = "settings";

  const DEFAULT_SETTINGS = Object.freeze({
    backendUrl: "http://127.0.0.1:8000",
    apiKey: "",
    // An "ai" verdict below this AI probability is shown as "Uncertain" instead. 0 means
    // "the backend's own AI limit" (threshold + uncertain_band, read from each result): the
    // backend decides first, so this can only make badges stricter, never looser.
    threshold: 0,
    showReal: true, // every checked image says what it is: without a badge, "real" looks like "not checked"
    disabledSites: [], // host names; "example.com" also covers "www.example.com"
    sendPageUrl: false,
  });

  /** The stored settings merged over the defaults. */
  async function loadSettings() {
    const stored = (await chrome.storage.local.get(SETTINGS_KEY))[SETTINGS_KEY] || {};
    return { ...DEFAULT_SETTINGS, ...stored };
  }

  /** Whether the settings were ever saved (by the options page or the popup's site switch). */
  async function hasSavedSettings() {
    return SETTINGS_KEY in (await chrome.storage.local.get(SETTINGS_KEY));
  }

  /** Merge `changes` into the stored settings and return the result. */
  async function saveSettings(changes) {
    const settings = { ...(await loadSettings()), ...changes };
    await chrome.storage.local.set({ [SETTINGS_KEY]: settings });
    return settings;
  }

  /** Calls `listener(newSettings)` whenever any context saves settings. */
  function onSettingsChanged(listener) {
    chrome.storage.onChanged.addListener((changes, area) => {
      if (area === "local" && changes[SETTINGS_KEY]) {
        listener({ ...DEFAULT_SETTINGS, ...changes[SETTINGS_KEY].newValue });
      }
    });
  }

  /** " https://Example.com:8443/api/ " -> "https://example.com:8443/api", or throws a one-line error. */
  function normalizeBackendUrl(text) {
    let url;
    try {
      url = new URL(String(text).trim());
    } catch {
      throw new Error(`"${text}" is not a URL (expected e.g. ${DEFAULT_SETTINGS.backendUrl})`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new Error(`the backend URL must start with http:// or https://, got ${url.protocol}`);
    }
    return url.origin + url.pathname.replace(/\/+$/, "");
  }

  /** Turns one host name per line (URLs accepted) into a clean, de-duplicated list. */
  function parseSiteList(text) {
    const hosts = String(text)
      .split(/[\s,]+/)
      .map((entry) => entry.trim().toLowerCase())
      .filter(Boolean)
      .map((entry) => {
        try {
          return new URL(entry.includes("://") ? entry : `http://${entry}`).hostname;
        } catch {
          return entry;
        }
      });
    return [...new Set(hosts)];
  }

  function siteMatches(host, site) {
    return host === site || host.endsWith(`.${site}`);
  }

  function isSiteEnabled(settings, host) {
    return !settings.disabledSites.some((site) => siteMatches(host.toLowerCase(), site));
  }

  /** The settings with `host` switched on or off (removing every entry that covers it). */
  function withSiteEnabled(settings, host, enabled) {
    const others = settings.disabledSites.filter((site) => !siteMatches(host, site));
    return { ...settings, disabledSites: enabled ? others : [...others, host] };
  }

  globalThis.genspot.settings = Object.freeze({
    DEFAULT_SETTINGS,
    loadSettings,
    hasSavedSettings,
    saveSettings,
    onSettingsChanged,
    normalizeBackendUrl,
    parseSiteList,
    isSiteEnabled,
    withSiteEnabled,
  });
})();
