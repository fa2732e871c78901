"""Driving the unpacked extension in Debian's firefox-esr (never a downloaded browser).

Firefox is driven over WebDriver BiDi by puppeteer-core (tests/extension/firefox/driver.mjs,
a Node process speaking JSON lines): the extension is installed as a temporary add-on with
BiDi's webExtension.install, as a developer would load it from about:debugging.
`launch_firefox(profile_dir)` is a context manager giving a `FirefoxExtension` with the few UI
actions the tests need: the options form, the popup's counts, the badges on a page.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from extension_browser import BADGES_JS, ENOUGH_BADGES_JS, EXTENSION_DIR, POPUP_COUNTS, fail_missing_badges

FIREFOX = Path("/usr/bin/firefox-esr")
DRIVER_DIR = Path(__file__).resolve().parent / "firefox"
DRIVER = DRIVER_DIR / "driver.mjs"
# The extension's moz-extension:// host in the test profile (Firefox picks a random one per profile).
EXTENSION_UUID = "5a1d3c70-9f2e-4b8a-8c3d-6e0f1a2b3c4d"
START_TIMEOUT_S = 120.0  # Firefox's first start in a new profile on a busy machine (driver.mjs waits 90 s for it)
COMMAND_MARGIN_S = 30.0  # beyond a command's own timeout, before the driver is declared stuck
DEFAULT_WAIT_MS = 15_000


class DriverError(AssertionError):
    """The driver answered with an error, died, or stopped answering."""


class Driver:
    """The Node driver process: one JSON command per line in, one JSON answer per line out."""

    def __init__(self, config: dict, log_path: Path):
        self._log = log_path.open("wb")
        self.log_path = log_path
        self.process = subprocess.Popen(
            ["node", str(DRIVER), json.dumps(config)],
            cwd=DRIVER_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            start_new_session=True,  # Firefox and its content processes go with the driver's group
        )
        self._answers: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True, name="firefox-driver").start()
        try:
            self.hello = self._answer(START_TIMEOUT_S)
        except DriverError:
            self.stop()
            raise

    def _read(self) -> None:
        for line in self.process.stdout:
            self._answers.put(line)
        self._answers.put(None)

    def _answer(self, timeout_s: float) -> dict:
        try:
            line = self._answers.get(timeout=timeout_s)
        except queue.Empty:
            raise DriverError(f"the Firefox driver did not answer within {timeout_s:g} s; its log:\n{self.log_tail()}") from None
        if line is None:
            raise self._exited()
        answer = json.loads(line)
        if not answer.pop("ok"):
            raise DriverError(answer["error"])
        return answer

    def _exited(self) -> DriverError:
        return DriverError(f"the Firefox driver exited ({self.process.wait()}); its log:\n{self.log_tail()}")

    def log_tail(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-3000:]

    def send(self, op: str, timeout_s: float = DEFAULT_WAIT_MS / 1000, **args) -> dict:
        try:
            self.process.stdin.write(json.dumps({"op": op, **args}) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            raise self._exited() from None
        return self._answer(timeout_s + COMMAND_MARGIN_S)

    def stop(self) -> None:
        """Closing stdin quits Firefox; then whatever is left of the driver's process group
        (all of it, if quitting took too long) is killed."""
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self._log.close()


@dataclass
class FirefoxPage:
    driver: Driver
    index: int

    def evaluate(self, fn: str, arg=None):
        """`fn` is a JavaScript function's source, called with `arg` in the page."""
        return self.driver.send("evaluate", page=self.index, fn=fn, arg=arg)["value"]

    def wait_for(self, fn: str, arg=None, timeout_ms: float = DEFAULT_WAIT_MS):
        """fn(arg)'s first truthy value, polled in the page."""
        return self.driver.send("wait_for", timeout_ms / 1000, page=self.index, fn=fn, arg=arg, timeout_ms=timeout_ms)["value"]

    def screenshot(self, path: Path) -> None:
        self.driver.send("screenshot", page=self.index, path=str(path))

    def close(self) -> None:
        self.driver.send("close", page=self.index)


# Fills in and saves the options form as a user would (typing fires "input", ticking "change").
CONFIGURE_JS = """async ({ backendUrl, apiKey, showReal, sendPageUrl }) => {
  const type = (id, value) => { const field = document.getElementById(id); field.value = value; field.dispatchEvent(new Event("input", { bubbles: true })); };
  const tick = (id, on) => { const box = document.getElementById(id); if (box.checked !== on) box.click(); };
  type("backend-url", backendUrl);
  type("api-key", apiKey);
  tick("show-real", showReal);
  tick("send-page-url", sendPageUrl);
  document.querySelector("button[type=submit]").click();
}"""


@dataclass
class FirefoxExtension:
    driver: Driver
    extension_id: str  # the add-on id Firefox installed (the manifest's gecko id)
    version: str  # "firefox/153.8.0"

    @staticmethod
    def extension_url(path: str) -> str:
        return f"moz-extension://{EXTENSION_UUID}/{path}"

    def open(self, url: str) -> FirefoxPage:
        return FirefoxPage(self.driver, self.driver.send("open", url=url)["page"])

    def configure(self, backend_url: str, api_key: str = "", show_real: bool = False, send_page_url: bool = False) -> None:
        page = self.open(self.extension_url("options/options.html"))
        page.wait_for("""() => !document.getElementById("fields").disabled""")
        page.evaluate(CONFIGURE_JS, {"backendUrl": backend_url, "apiKey": api_key, "showReal": show_real, "sendPageUrl": send_page_url})
        page.wait_for("() => document.getElementById('status').textContent === 'Saved.'")
        page.close()

    def settings(self) -> dict:
        page = self.open(self.extension_url("options/options.html"))
        stored = page.evaluate("() => chrome.storage.local.get('settings').then((stored) => stored.settings)")
        page.close()
        return stored

    def open_popup(self, tab_url: str) -> FirefoxPage:
        """popup.html for the tab showing `tab_url`, opened in a tab of its own."""
        popup = self.open(self.extension_url("options/options.html"))
        # (Firefox's URL match patterns take no port: the tab is found by its exact URL.)
        tab_id = popup.evaluate("(url) => chrome.tabs.query({}).then((tabs) => tabs.find((tab) => tab.url === url).id)", tab_url)
        popup.close()
        popup = self.open(self.extension_url(f"popup/popup.html?tab={tab_id}"))
        popup.wait_for("""() => !document.getElementById("page").hidden""")
        return popup

    @staticmethod
    def popup_counts(popup: FirefoxPage) -> dict[str, int]:
        return popup.evaluate("(kinds) => Object.fromEntries(kinds.map((kind) => [kind, Number(document.getElementById(`count-${kind}`).textContent)]))", list(POPUP_COUNTS))

    @staticmethod
    def badges(page: FirefoxPage) -> list[dict]:
        return page.evaluate(BADGES_JS)

    @staticmethod
    def wait_for_badges(page: FirefoxPage, count: int, timeout_ms: float = 30_000) -> list[dict]:
        """The badges, once at least `count` of them sit on their images."""
        try:
            page.wait_for(ENOUGH_BADGES_JS, count, timeout_ms)
        except DriverError:
            fail_missing_badges(FirefoxExtension.badges(page), count, timeout_ms, "Firefox")
        return FirefoxExtension.badges(page)


def firefox_missing_reason() -> str | None:
    if not FIREFOX.exists():
        return "Debian's firefox-esr is not installed (apt-get install firefox-esr)"
    if shutil.which("node") is None:
        return "node is not installed (apt-get install nodejs npm)"
    return None


@contextlib.contextmanager
def launch_firefox(profile_dir: Path, viewport: dict | None = None) -> Iterator[FirefoxExtension]:
    """Headless firefox-esr with extension/ installed; skips the test where Firefox or node is missing."""
    if reason := firefox_missing_reason():
        pytest.skip(reason)
    if not (DRIVER_DIR / "node_modules" / "puppeteer-core").is_dir():
        pytest.fail(f"the Firefox driver's npm packages are missing: run `make install` (npm ci in {DRIVER_DIR})")
    profile_dir.mkdir(parents=True, exist_ok=True)
    size = viewport or {"width": 1000, "height": 700}
    config = {"executable": str(FIREFOX), "extension": str(EXTENSION_DIR), "uuid": EXTENSION_UUID, "profile": str(profile_dir), **size}
    driver = Driver(config, profile_dir.parent / "firefox-driver.log")
    try:
        yield FirefoxExtension(driver, driver.hello["extension_id"], driver.hello["version"])
    finally:
        driver.stop()
