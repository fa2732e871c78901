"""Driving the unpacked extension in Debian's Chromium with Playwright (never a downloaded browser).

`launch_extension(user_data_dir)` is a context manager giving an `ExtensionBrowser`: the
persistent context with extension/ loaded, its service worker and id, plus the few UI
actions the tests need (options form, popup counts, badges on a page).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect, sync_playwright

REPO_ROOT = Path(__file__).resolve().parents[2]
EXTENSION_DIR = REPO_ROOT / "extension"
CHROMIUM = Path("/usr/bin/chromium")
expect.set_options(timeout=15_000)  # the machine running the tests may be busy

SW_EVENTS = "PW_EXPERIMENTAL_SERVICE_WORKER_NETWORK_EVENTS"
POPUP_COUNTS = ("ai", "real", "uncertain", "error")  # the popup's #count-KIND cells
BADGE_INSET = 4  # px: badges sit this far inside their image's top-left corner (content/badges.js)

# Every badge with its verdict, text, aria-label, page position and the data-test name of the
# image whose corner it sits on (found by position, which also checks the placement).
BADGES_JS = """() => {
  const images = [...document.querySelectorAll("img[data-test]")];
  return [...document.querySelectorAll("genspot-badge")].map((host) => {
    const button = host.shadowRoot.querySelector("button");
    const left = parseFloat(host.style.left), top = parseFloat(host.style.top);
    const on = images.find((img) => {
      const box = img.getBoundingClientRect();
      return Math.abs(box.left + scrollX + %(inset)d - left) <= 1 && Math.abs(box.top + scrollY + %(inset)d - top) <= 1;
    });
    return {
      image: on ? on.dataset.test : null, verdict: host.dataset.verdict, text: button.textContent,
      aria_label: button.getAttribute("aria-label"), details: host.shadowRoot.querySelector(".panel").textContent,
      visible: getComputedStyle(host).display !== "none" && getComputedStyle(host).opacity === "1",
    };
  });
}""" % {"inset": BADGE_INSET}
# True once at least `count` badges sit on their images (repositioning follows layout a frame later).
ENOUGH_BADGES_JS = f"(count) => ({BADGES_JS})().filter((badge) => badge.image).length >= count"
# True once every badge has its answer (a badge says "Checking…" from the moment its image is seen).
NO_BADGE_CHECKING_JS = """() => ![...document.querySelectorAll("genspot-badge")].some((badge) => badge.dataset.verdict === "checking")"""


def fail_missing_badges(badges: list[dict], count: int, timeout_ms: float, browser: str) -> None:
    shown = sorted(str(badge["image"]) for badge in badges)
    pytest.fail(f"expected {count} badges on images within {timeout_ms / 1000:g} s in {browser}; badged: {', '.join(shown) or 'none'}")


@dataclass(frozen=True)
class SeenRequest:
    by_worker: bool  # made by the extension's service worker (else by a page)
    url: str
    headers: dict[str, str]
    post_data: str | None

    @classmethod
    def of(cls, request) -> "SeenRequest":
        return cls(request.service_worker is not None, request.url, request.headers, request.post_data)


@dataclass
class ExtensionBrowser:
    context: object  # playwright BrowserContext
    service_worker: object  # playwright Worker
    extension_id: str
    requests: list[SeenRequest]  # every request the browser made, pages' and the service worker's

    def extension_url(self, path: str) -> str:
        return f"chrome-extension://{self.extension_id}/{path}"

    def configure(self, backend_url: str, api_key: str = "", show_real: bool = False, send_page_url: bool = False) -> None:
        """Fill in and save the options page, as a user would."""
        page = self.context.new_page()
        page.goto(self.extension_url("options/options.html"))
        expect(page.locator("#fields")).to_be_enabled()  # the saved settings are in the form: typing now is kept
        page.fill("#backend-url", backend_url)
        page.fill("#api-key", api_key)
        page.set_checked("#show-real", show_real)
        page.set_checked("#send-page-url", send_page_url)
        page.click("button[type=submit]")
        expect(page.locator("#status")).to_have_text("Saved.")
        page.close()

    def worker_requests(self) -> list[SeenRequest]:
        """What the extension itself sent over the network (its own files excluded)."""
        return [r for r in self.requests if r.by_worker and not r.url.startswith("chrome-extension://")]

    def sent_items(self) -> list[dict]:
        """Every item the extension posted to a backend's /v1/detect."""
        return [item for r in self.worker_requests() if r.url.endswith("/v1/detect") for item in json.loads(r.post_data)["items"]]

    def settings(self) -> dict:
        return self.service_worker.evaluate("chrome.storage.local.get('settings').then((stored) => stored.settings)")

    def tab_id(self, url: str) -> int:
        return self.service_worker.evaluate("(url) => chrome.tabs.query({ url }).then((tabs) => tabs[0].id)", url)

    def open_popup(self, tab_url: str):
        """popup.html for the tab showing `tab_url`, opened as a page (a toolbar click cannot be scripted)."""
        popup = self.context.new_page()
        popup.goto(self.extension_url(f"popup/popup.html?tab={self.tab_id(tab_url)}"))
        popup.wait_for_selector("#page:not([hidden])")
        return popup

    @staticmethod
    def popup_counts(popup) -> dict[str, int]:
        return {kind: int(popup.text_content(f"#count-{kind}")) for kind in POPUP_COUNTS}

    @staticmethod
    def badges(page) -> list[dict]:
        return page.evaluate(BADGES_JS)

    @staticmethod
    def wait_for_answers(page, count: int) -> list[dict]:
        """The badges, once at least `count` sit on their images and none still says "Checking…"."""
        ExtensionBrowser.wait_for_badges(page, count)
        page.wait_for_function(NO_BADGE_CHECKING_JS)
        return ExtensionBrowser.badges(page)

    @staticmethod
    def wait_for_badges(page, count: int, timeout_ms: float = 30_000) -> list[dict]:
        """The badges, once at least `count` of them sit on their images."""
        try:
            page.wait_for_function(ENOUGH_BADGES_JS, arg=count, timeout=timeout_ms)
        except PlaywrightTimeout:
            fail_missing_badges(ExtensionBrowser.badges(page), count, timeout_ms, "Chromium")
        return ExtensionBrowser.badges(page)


@contextlib.contextmanager
def launch_extension(user_data_dir: Path, viewport: dict | None = None) -> Iterator[ExtensionBrowser]:
    """Chromium with extension/ loaded, headless; skips the test where Chromium is not installed."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")

    args = [
        f"--disable-extensions-except={EXTENSION_DIR}",
        f"--load-extension={EXTENSION_DIR}",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ]
    # Playwright reports a service worker's own requests only with this switch (read by its driver process).
    with mock.patch.dict(os.environ, {SW_EVENTS: "1"}), sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(user_data_dir), executable_path=str(CHROMIUM), headless=True, args=args, viewport=viewport or {"width": 1000, "height": 700}
        )
        try:
            workers = context.service_workers
            worker = workers[0] if workers else context.wait_for_event("serviceworker", timeout=15_000)
            requests: list[SeenRequest] = []
            context.on("request", lambda request: requests.append(SeenRequest.of(request)))
            yield ExtensionBrowser(context, worker, worker.url.split("/")[2], requests)
        finally:
            context.close()
