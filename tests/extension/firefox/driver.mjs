// Drives Debian's firefox-esr with the extension installed as a temporary add-on, for
// tests/extension/firefox_browser.py. puppeteer-core speaks WebDriver BiDi to the installed
// binary (webExtension.install); no browser is ever downloaded.
//
// Usage: node driver.mjs CONFIG_JSON   ({executable, extension, uuid, profile, width, height}:
// extension is the unpacked folder; uuid becomes its moz-extension:// host)
// Then one JSON command per line on stdin, one JSON answer per line on stdout:
//   {"op": "open", "url"}                          -> {"page": n}
//   {"op": "evaluate", "page", "fn", "arg"}        -> {"value"}  (fn: a function's source)
//   {"op": "wait_for", "page", "fn", "arg", "timeout_ms"} -> {"value"}: fn(arg) once truthy
//   {"op": "screenshot", "page", "path"}           -> {}
//   {"op": "close", "page"}                        -> {}
// Every answer is {"ok": true, ...} or {"ok": false, "error"}; stdin closing quits Firefox.

import { readFileSync } from "node:fs";
import path from "node:path";
import readline from "node:readline";
import puppeteer from "puppeteer-core";

const POLL_MS = 100;
const EXTENSION_PAGE_TIMEOUT_MS = 30_000;
const LAUNCH_TIMEOUT_MS = 90_000; // a first start in a new profile, on a busy machine

const config = JSON.parse(process.argv[2]);
const manifest = JSON.parse(readFileSync(path.join(config.extension, "manifest.json"), "utf8"));
const geckoId = manifest.browser_specific_settings.gecko.id;
const browser = await puppeteer.launch({
  browser: "firefox",
  executablePath: config.executable,
  headless: true,
  timeout: LAUNCH_TIMEOUT_MS,
  userDataDir: config.profile,
  defaultViewport: { width: config.width, height: config.height },
  // Lets BiDi open moz-extension:// pages (the options page and the popup) in a tab.
  args: ["--remote-allow-system-access"],
  extraPrefsFirefox: {
    // The extension's moz-extension:// host, fixed so the tests know its pages' URLs.
    "extensions.webextensions.uuids": JSON.stringify({ [geckoId]: config.uuid }),
  },
});
const installedId = await browser.installExtension(config.extension);
const pages = [];

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function pollUntil(page, fn, arg, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let lastError = null;
  for (;;) {
    try {
      const value = await page.evaluate(fn, arg);
      if (value) return value;
    } catch (error) {
      lastError = error; // the page is between documents
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms${lastError ? ` (${lastError.message})` : ""}`);
    await sleep(POLL_MS);
  }
}

/** Opens a tab on `url`. BiDi reports no load events for a moz-extension:// document (it lives in
 * the extension's process), so for those the driver waits until the document itself says it has loaded. */
async function open(url) {
  const page = await browser.newPage();
  try {
    if (url.startsWith("moz-extension:")) {
      page.goto(url, { timeout: EXTENSION_PAGE_TIMEOUT_MS }).catch(() => {});
      const loaded = (expected) => location.href === expected && document.readyState === "complete";
      await pollUntil(page, loaded, url, EXTENSION_PAGE_TIMEOUT_MS);
    } else {
      await page.goto(url);
    }
  } catch (error) {
    await page.close();
    throw error;
  }
  pages.push(page);
  return { page: pages.length - 1 };
}

const asFunction = (source) => new Function(`return (${source});`)();

const OPS = {
  open: ({ url }) => open(url),
  evaluate: async ({ page, fn, arg }) => ({ value: (await pages[page].evaluate(asFunction(fn), arg)) ?? null }),
  wait_for: async ({ page, fn, arg, timeout_ms }) => ({ value: await pollUntil(pages[page], asFunction(fn), arg, timeout_ms) }),
  screenshot: async ({ page, path }) => (await pages[page].screenshot({ path }), {}),
  close: async ({ page }) => (await pages[page].close(), {}),
};

function answer(reply) {
  process.stdout.write(`${JSON.stringify(reply)}\n`);
}

answer({ ok: true, extension_id: installedId, version: await browser.version() });
for await (const line of readline.createInterface({ input: process.stdin })) {
  const command = JSON.parse(line);
  try {
    answer({ ok: true, ...(await OPS[command.op](command)) });
  } catch (error) {
    answer({ ok: false, error: String(error?.message ?? error) });
  }
}
await browser.close();
