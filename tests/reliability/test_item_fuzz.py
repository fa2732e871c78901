"""Fuzz what the schema cannot describe: well-formed requests whose items carry hostile contents.

Hypothesis mutates real image files of every supported format (truncation, flipped bytes,
spliced junk) and writes URLs of every shape, and sends them through ``POST /v1/detect`` and
the upload route. Every request must be answered 200 with one result per item, in order,
each ``ok`` or an error with a documented code: no 500, no exception, no lost item.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import io

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from genspot.backend.api.app import create_app
from genspot.backend.errors import ITEM_ERROR_CODES
from tests.fixtures.service_app import asgi_client, service_settings


@functools.cache
def seeds() -> list[bytes]:
    """One small real file per format the decoder accepts (and one it should refuse)."""
    picture = Image.radial_gradient("L").convert("RGB").resize((48, 40))
    files = []
    for fmt, options in [("JPEG", {"quality": 80}), ("PNG", {}), ("GIF", {}), ("WEBP", {}), ("BMP", {}), ("TIFF", {})]:
        buffer = io.BytesIO()
        picture.save(buffer, fmt, **options)
        files.append(buffer.getvalue())
    return files


@st.composite
def mutated_image(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds())))
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["flip", "truncate", "splice"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "truncate":
            del data[at:]
        else:
            data[at:at] = draw(st.binary(max_size=64))
    return bytes(data)


hostile_urls = st.one_of(
    st.text(max_size=80),
    st.builds(lambda scheme, rest: f"{scheme}:{rest}", st.sampled_from(["http", "https", "ftp", "file", "javascript", "data", "gopher", "ws"]), st.text(max_size=60)),
    st.builds(lambda host, port: f"http://{host}:{port}/x.png", st.text(min_size=1, max_size=40), st.integers(-5, 70000)),
    st.builds(lambda payload: "data:image/png;base64," + base64.b64encode(payload).decode(), mutated_image()),
    st.builds(lambda junk: "data:image/png;base64," + junk, st.text(max_size=60)),
)

item = st.one_of(
    st.fixed_dictionaries({"image_b64": mutated_image().map(lambda b: base64.b64encode(b).decode())}, optional={"alt_text": st.text(max_size=200), "id": st.text(max_size=20)}),
    st.fixed_dictionaries({"url": hostile_urls.filter(bool)}, optional={"alt_text": st.text(max_size=200), "page_url": st.text(max_size=100)}),
)


@pytest.fixture(scope="module")
def service(tiny_bundle):
    return service_settings(tiny_bundle, rate_limited=False, fetch_connect_timeout_s=0.5, fetch_total_timeout_s=1.0)


def _check(response, sent: int) -> None:
    assert response.status_code == 200, response.text[:500]
    results = response.json()["results"]
    assert len(results) == sent
    for result in results:
        assert result["status"] in ("ok", "error"), result
        if result["status"] == "error":
            assert result["error"]["code"] in ITEM_ERROR_CODES, result


def test_hostile_item_contents_never_fail_a_request(service):
    async def fuzz():
        async with asgi_client(create_app(service)) as client:

            @given(items=st.lists(item, min_size=1, max_size=8))
            @example(items=[{"url": "http://a\x00b/x.png"}, {"url": "http://127.0.0.1\x00.example/"}])  # found by this test
            @example(items=[{"url": "http://[::1"}, {"url": "http://:80/"}, {"url": "http://a:b:c/"}, {"url": "data:,"}])
            @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            def detect(items):
                _check(asyncio.run_coroutine_threadsafe(client.post("/v1/detect", json={"items": items}), loop).result(), len(items))

            @given(files=st.lists(mutated_image(), min_size=1, max_size=6))
            @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            def upload(files):
                parts = [("files", (f"f{n}.bin", data, "application/octet-stream")) for n, data in enumerate(files)]
                _check(asyncio.run_coroutine_threadsafe(client.post("/v1/detect/upload", files=parts), loop).result(), len(files))

            loop = asyncio.get_running_loop()
            await asyncio.to_thread(detect)
            await asyncio.to_thread(upload)

    asyncio.run(fuzz())
