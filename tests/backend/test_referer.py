"""The Referer sent with image downloads: the rule on its own, then what the image server receives."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar.testing import TestClient

from genspot.backend.api.app import create_app
from genspot.backend.fetch import referer_for

IMAGE = "https://images.example/cat.jpg"


@pytest.mark.parametrize(
    ("page_url", "image_url", "referer"),
    [
        ("https://news.example/", IMAGE, "https://news.example/"),
        ("https://news.example/story/7?session=abc#comments", IMAGE, "https://news.example/"),
        ("https://reader:secret@news.example:8443/p", IMAGE, "https://news.example:8443/"),
        ("HTTPS://News.Example:443/x", IMAGE, "https://news.example/"),
        ("http://news.example:80/x", "http://images.example/cat.jpg", "http://news.example/"),
        ("http://news.example/x", IMAGE, "http://news.example/"),  # http page, https image: sent
        ("https://bücher.example/x", IMAGE, "https://xn--bcher-kva.example/"),
        ("http://[2001:db8::1]:8080/p", IMAGE, "http://[2001:db8::1]:8080/"),
        ("https://news.example/x", "http://images.example/cat.jpg", None),  # https -> http: never
    ],
)
def test_the_page_origin_is_sent_unless_it_would_be_downgraded(page_url, image_url, referer):
    assert referer_for(page_url, image_url) == referer


@pytest.mark.parametrize(
    "page_url",
    [
        None,
        "",
        "javascript:alert(document.cookie)",
        "data:text/html,<h1>hi</h1>",
        "about:blank",
        "ftp://news.example/",
        "garbage ::: not a url",
        "//news.example/protocol-relative",
        "/relative/path",
        "http://",
        "http://news example/",
        "http://news.example:99999/",
        "http://[fe80::1%25eth0]/",
        "http://[::1/",
        "http://news.example\r\nX-Injected: 1/",
    ],
)
def test_unusable_pages_send_nothing(page_url):
    assert referer_for(page_url, IMAGE) is None


@given(st.sampled_from(["http://", "https://", "HTTP://", ""]), st.text(max_size=60))
def test_a_referer_is_always_a_bare_origin(scheme, rest):
    """Whatever a client sends as page_url, the header is an origin or nothing: never a path,
    credentials or a character that could end or bend the header."""
    referer = referer_for(scheme + rest, IMAGE)
    assert referer is None or re.fullmatch(r"https?://[a-z0-9_.\-\[\]:]+/", referer), referer


def test_the_image_server_receives_the_page_origin_only(service_settings, image_server):
    """The image server is http, so the pages that should lead to a Referer are http too."""
    cases = {
        "other-origin": ("http://news.example:8080/", "http://news.example:8080/"),
        "path-and-query": ("http://reader:pw@news.example/story/7?session=abc#comments", "http://news.example/"),
        "https-page": ("https://news.example/story/7", None),
        "absent": (None, None),
        "javascript": ("javascript:alert(1)", None),
        "garbage": ("not a url \u2603 ::", None),
    }
    items = [
        {"id": case, "url": image_server.url("photo.jpg", f"referer={case}")} | ({"page_url": page} if page else {})
        for case, (page, _) in cases.items()
    ]
    with TestClient(create_app(service_settings)) as client:
        response = client.post("/v1/detect", json={"items": items})
    assert response.status_code == 200, response.text
    assert {result["id"]: result["status"] for result in response.json()["results"]} == dict.fromkeys(cases, "ok")
    received = {case: [h.get("referer") for h in image_server.headers(f"photo.jpg?referer={case}")] for case in cases}
    assert received == {case: [referer] for case, (_, referer) in cases.items()}
