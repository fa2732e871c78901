"""The URL cache entry: keyed by everything that changes what a host answers, and revalidated.

Real local image hosts that answer the way some hosts do (a hot-link placeholder for a foreign
Referer, another image for some User-Agents, ETag / Last-Modified with 304s), the real app, and
a real Redis shared by the apps of one test.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler

import pytest
from litestar.testing import TestClient

from genspot.backend.api.app import create_app
from tests.fixtures.services import BackloggedHTTPServer

from backend_helpers import b64

Answer = tuple[int, bytes, dict[str, str]]
NEWS = "http://news.example/"


class Host:
    """An image host on 127.0.0.1 whose answer to ``GET /img`` is ``answer(request headers)``;
    it records every request's headers (lower-case names) and the status it answered."""

    def __init__(self, answer: Callable[[dict[str, str]], Answer]):
        self.answer = answer
        self.seen: list[tuple[dict[str, str], int]] = []
        self._lock = threading.Lock()
        host = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                headers = {name.lower(): value for name, value in self.headers.items()}
                status, body, extra = host.answer(headers)
                with host._lock:
                    host.seen.append((headers, status))
                self.send_response(status)
                for name, value in {"Content-Type": "image/jpeg", "Content-Length": str(len(body)), **extra}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

        self._server = BackloggedHTTPServer(("127.0.0.1", 0), Handler).start("cache-key-host")
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/img"

    def statuses(self) -> list[int]:
        with self._lock:
            return [status for _, status in self.seen]

    def stop(self) -> None:
        self._server.stop()


@pytest.fixture
def hosts() -> Iterator[Callable[[Callable[[dict[str, str]], Answer]], Host]]:
    started: list[Host] = []

    def start(answer):
        started.append(Host(answer))
        return started[-1]

    yield start
    for host in started:
        host.stop()


@pytest.fixture
def images(image_server) -> tuple[bytes, bytes]:
    """(the real image, a placeholder a host serves instead)."""
    return image_server.files["photo.jpg"][0], image_server.files["bright.jpg"][0]


def _settings(service_settings, host: Host, cache: str, redis_server, **overrides):
    redis_url = redis_server.url if cache == "redis" else None
    return service_settings.replace(allowed_ports=(host.port,), redis_url=redis_url, **overrides)


def _detect(client, **item) -> dict:
    response = client.post("/v1/detect", json={"items": [item]})
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    assert result["status"] == "ok", result
    return result


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("cache", ["redis", "memory"])
def test_a_hotlink_placeholder_for_one_page_does_not_decide_another_pages_verdict(
    service_settings, redis_server, hosts, images, cache
):
    real, placeholder = images
    host = hosts(lambda headers: (200, real if headers.get("referer", NEWS) == NEWS else placeholder, {}))
    with TestClient(create_app(_settings(service_settings, host, cache, redis_server))) as client:
        evil = _detect(client, url=host.url, page_url="http://evil.example/gallery")
        news = _detect(client, url=host.url, page_url=NEWS + "story?id=7")
        bare = _detect(client, url=host.url)
        by_bytes = _detect(client, image_b64=b64(real))
        same_origin = _detect(client, url=host.url, page_url=NEWS + "another-story")
    assert evil["sha256"] == _sha(placeholder)
    assert news["sha256"] == _sha(real) and news["cached"] is False
    assert (news["ai_probability"], news["verdict"]) == (by_bytes["ai_probability"], by_bytes["verdict"])
    assert bare["sha256"] == _sha(real)  # no page, no Referer: the host's real answer
    assert same_origin["sha256"] == _sha(real) and same_origin["cached"] is True
    assert len(host.seen) == 3  # the same origin's pages share the entry: no download for the last one


def test_apps_with_different_user_agents_do_not_share_url_entries(service_settings, redis_server, hosts, images):
    """Two deployments on one Redis: the host cloaks by User-Agent, so each gets its own answer."""
    real, placeholder = images
    host = hosts(lambda headers: (200, real if headers.get("user-agent") == "browser-like" else placeholder, {}))
    settings = _settings(service_settings, host, "redis", redis_server)
    with TestClient(create_app(settings.replace(user_agent="announced-bot"))) as bot:
        cloaked = _detect(bot, url=host.url)
    with TestClient(create_app(settings.replace(user_agent="browser-like"))) as browser_like:
        served = _detect(browser_like, url=host.url)
    assert cloaked["sha256"] == _sha(placeholder)
    assert served["sha256"] == _sha(real) and served["cached"] is False


class ChangingImage:
    """A host whose image can change, answering conditional requests the way web servers do."""

    def __init__(self, data: bytes, validators: str):
        self.data = data
        self.version = 1
        self.validators = validators

    def change(self, data: bytes) -> None:
        self.data = data
        self.version += 1

    def _headers(self) -> dict[str, str]:
        etag = f'"v{self.version}"'
        last_modified = formatdate(1_700_000_000 + 3600 * self.version, usegmt=True)
        return {"etag": {"ETag": etag}, "last-modified": {"Last-Modified": last_modified}, "none": {}}[self.validators]

    def __call__(self, headers: dict[str, str]) -> Answer:
        mine = self._headers()
        if "ETag" in mine and headers.get("if-none-match") == mine["ETag"]:
            return 304, b"", mine
        if "Last-Modified" in mine and headers.get("if-modified-since") == mine["Last-Modified"]:
            return 304, b"", mine
        return 200, self.data, mine


@pytest.mark.parametrize("validators", ["etag", "last-modified"])
def test_a_stale_url_entry_is_revalidated_and_a_changed_image_judged_again(
    service_settings, redis_server, hosts, images, validators
):
    first, second = images
    image = ChangingImage(first, validators)
    host = hosts(image)
    settings = _settings(service_settings, host, "redis", redis_server, url_fresh_s=0.0)  # every use revalidates
    with TestClient(create_app(settings)) as client:
        fetched = _detect(client, url=host.url)
        unchanged = _detect(client, url=host.url)
        image.change(second)
        changed = _detect(client, url=host.url)
        again = _detect(client, url=host.url)
    assert (fetched["sha256"], fetched["cached"]) == (_sha(first), False)
    assert (unchanged["sha256"], unchanged["cached"]) == (_sha(first), True)
    assert (changed["sha256"], changed["cached"]) == (_sha(second), False)
    assert (again["sha256"], again["cached"]) == (_sha(second), True)
    assert host.statuses() == [200, 304, 200, 304]  # conditional requests: the unchanged image is not downloaded
    asked_with = {"etag": "if-none-match", "last-modified": "if-modified-since"}[validators]
    assert [asked_with in headers for headers, _ in host.seen] == [False, True, True, True]


def test_a_stale_entry_without_validators_is_downloaded_again(service_settings, redis_server, hosts, images):
    first, second = images
    image = ChangingImage(first, "none")
    host = hosts(image)
    settings = _settings(service_settings, host, "redis", redis_server, url_fresh_s=0.0)
    with TestClient(create_app(settings)) as client:
        fetched = _detect(client, url=host.url)
        image.change(second)
        changed = _detect(client, url=host.url)
    assert (fetched["sha256"], changed["sha256"]) == (_sha(first), _sha(second))
    assert host.statuses() == [200, 200]


def test_a_fresh_entry_is_used_without_asking_the_host_then_revalidated(service_settings, redis_server, hosts, images):
    first, second = images
    image = ChangingImage(first, "etag")
    host = hosts(image)
    fresh_s = 1.0
    with TestClient(create_app(_settings(service_settings, host, "redis", redis_server, url_fresh_s=fresh_s))) as client:
        fetched = _detect(client, url=host.url)
        image.change(second)
        within_the_window = _detect(client, url=host.url)
        time.sleep(fresh_s + 0.1)
        after_the_window = _detect(client, url=host.url)
    assert within_the_window["sha256"] == fetched["sha256"] == _sha(first) and within_the_window["cached"] is True
    assert (after_the_window["sha256"], after_the_window["cached"]) == (_sha(second), False)
    assert host.statuses() == [200, 200]  # nothing asked within the window; the revalidation found a new image
