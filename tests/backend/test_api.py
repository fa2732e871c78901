"""The HTTP API in-process (Litestar test client) with the tiny bundle and the local image server."""

from __future__ import annotations

import asyncio
import io
import logging

import jsonschema_rs
import msgspec
import pytest
from litestar.testing import TestClient
from PIL import Image

from genspot.backend.api.app import create_app
from genspot.backend.cache import store as cache_keys
from genspot.backend.schemas import MAX_ITEMS
from genspot.bundle import Bundle
from tests.fixtures.service_app import asgi_client

from backend_helpers import b64, metric_value

OK_FILES = ["photo.jpg", "plain.png", "photo.webp", "animated.gif", "sd.png"]


@pytest.fixture
def client(service_settings):
    with TestClient(create_app(service_settings)) as test_client:
        yield test_client


def _detect(client, *items, **headers):
    response = client.post("/v1/detect", json={"items": list(items)}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["results"]


def _assert_ok(result, model_version):
    assert result["status"] == "ok", result
    assert result["verdict"] in {"ai", "real", "uncertain"}
    assert 0.0 <= result["ai_probability"] <= 1.0
    assert result["model_version"] == model_version
    assert 1 <= len(result["sources"]) <= 3
    assert result["source"]["label"]
    assert result["error"] is None


def test_url_items_get_verdicts_in_order(client, image_server):
    version = client.get("/v1/model").json()["version"]
    items = [{"id": name, "url": image_server.url(name, "t=order"), "alt_text": "a picture"} for name in OK_FILES]
    results = _detect(client, *items)
    assert [result["id"] for result in results] == OK_FILES
    for result in results:
        _assert_ok(result, version)
        assert result["cached"] is False


def test_an_onnx_bundle_answers_as_the_torchscript_bundle_of_its_checkpoint(service_settings, tiny_onnx_bundle, image_server):
    items = [{"id": name, "url": image_server.url(name, "t=onnx"), "alt_text": "a picture"} for name in OK_FILES]
    answers = []
    for bundle in (service_settings.bundle, tiny_onnx_bundle):
        with TestClient(create_app(msgspec.structs.replace(service_settings, bundle=str(bundle)))) as client:
            assert client.get("/v1/model").json()["version"].endswith("-float32")
            answers.append(_detect(client, *items))
    for torchscript, onnx in zip(*answers):  # the same fp32 graphs in two runtimes
        _assert_ok(onnx, torchscript["model_version"])
        assert onnx["verdict"] == torchscript["verdict"] and abs(onnx["ai_probability"] - torchscript["ai_probability"]) <= 1e-5
        assert [s["label"] for s in onnx["sources"]] == [s["label"] for s in torchscript["sources"]]
        assert max(abs(a["probability"] - b["probability"]) for a, b in zip(onnx["sources"], torchscript["sources"])) <= 1e-5


def test_base64_and_data_url_items_match_the_url_answer(client, image_server):
    data, _ = image_server.files["photo.jpg"]
    by_url, by_b64, by_data_url = _detect(
        client,
        {"url": image_server.url("photo.jpg", "t=b64")},
        {"image_b64": b64(data)},
        {"url": "data:image/jpeg;base64," + b64(data)},
    )
    assert by_url["ai_probability"] == by_b64["ai_probability"] == by_data_url["ai_probability"]
    # same bytes and (empty) caption arriving together: the model ran once for all three
    assert metric_value(client.get("/metrics").text, "genspot_batch_size_sum") == 1


def test_upload_with_alt_texts(client, image_server):
    files = [("files", (name, image_server.files[name][0], image_server.files[name][1])) for name in ("photo.jpg", "plain.png")]
    response = client.post("/v1/detect/upload", files=files, data={"alt_text": ["a cat", "a dog"]})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [result["id"] for result in results] == ["photo.jpg", "plain.png"]
    assert all(result["status"] == "ok" for result in results)
    single = client.post("/v1/detect/upload", files=[files[0]])
    assert single.status_code == 200 and len(single.json()["results"]) == 1


@pytest.mark.parametrize("use_alt_text", [False, None], ids=["off", "auto-with-a-bundle-whose-p_ai-reads-it"])
def test_ignored_alt_text_never_reaches_the_model_or_the_cache_key(service_settings, image_server, use_alt_text):
    """With use_alt_text off, or left to the bundle (the test bundle's manifest says ``alt_text``
    "full": its p_ai reads captions), one image under any alt-text is one result."""
    url = image_server.url("photo.jpg", f"t=alt-{use_alt_text}")
    settings = msgspec.structs.replace(service_settings, use_alt_text=use_alt_text)  # None: the default, auto
    with TestClient(create_app(settings)) as client:
        results = [_detect(client, {"url": url, **caption})[0] for caption in (
            {"alt_text": "a photo of a dog"}, {"alt_text": "a Midjourney render"}, {},
        )]
    assert [r["cached"] for r in results] == [False, True, True]  # with alt-text used, each caption is its own entry
    assert len({r["ai_probability"] for r in results}) == 1


def test_second_request_is_cached_and_not_refetched(client, image_server):
    item = {"url": image_server.url("photo.jpg", "t=cache"), "alt_text": "  a   lighthouse "}
    first = _detect(client, item)[0]
    assert first["cached"] is False and image_server.hits("photo.jpg?t=cache") == 1
    second = _detect(client, {**item, "alt_text": "a lighthouse"})[0]  # same caption once normalised
    assert second["cached"] is True
    assert second["ai_probability"] == first["ai_probability"]
    assert image_server.hits("photo.jpg?t=cache") == 1
    metrics = client.get("/metrics").text
    assert metric_value(metrics, "genspot_cache_total", entry="result", outcome="hit") >= 1
    assert metric_value(metrics, "genspot_cache_total", entry="url", outcome="hit") >= 1


def test_bad_items_fail_alone_with_their_codes(service_settings, image_server):
    items = [
        {"id": "good", "url": image_server.url("photo.jpg", "t=bad")},
        {"id": "truncated", "url": image_server.url("truncated.jpg")},
        {"id": "bomb", "url": image_server.url("bomb.png")},
        {"id": "html", "url": image_server.url("page.png")},
        {"id": "missing", "url": image_server.url("nothing-here.jpg")},
        {"id": "ftp", "url": "ftp://example.com/a.jpg"},
        {"id": "metadata", "url": "http://169.254.169.254/latest/meta-data/"},
        {"id": "private", "url": "http://10.0.0.1/a.jpg"},
        {"id": "redirected", "url": image_server.url("redirect", "to=http://192.168.1.1/a.jpg")},
        {"id": "junk", "image_b64": b64(b"\x00" * 100)},
        {"id": "trickle", "url": image_server.url("slow/photo.jpg", "delay=0.2")},
        {"id": "endless", "url": image_server.url("endless")},
    ]
    settings = service_settings.replace(allowed_ports=(80, 443, image_server.port), fetch_total_timeout_s=1.5)
    with TestClient(create_app(settings)) as client:
        results = {result["id"]: result for result in _detect(client, *items)}
        metrics = client.get("/metrics").text
    assert results["good"]["status"] == "ok"
    codes = {key: result["error"]["code"] for key, result in results.items() if key != "good"}
    assert codes == {
        "truncated": "decode_failed",
        "bomb": "too_large",
        "html": "not_an_image",
        "missing": "fetch_failed",
        "ftp": "unsupported_url",
        "metadata": "blocked_address",
        "private": "blocked_address",
        "redirected": "blocked_address",
        "junk": "not_an_image",
        "trickle": "timeout",
        "endless": "too_large",
    }
    for key in codes:
        assert results[key]["status"] == "error" and results[key]["error"]["message"]
    assert metric_value(metrics, "genspot_fetch_errors_total", code="blocked_address") == 3
    assert metric_value(metrics, "genspot_item_errors_total", code="too_large") == 2  # bomb and endless


def test_provenance_overrides_the_model_for_stable_diffusion_png(tiny_bundle, service_settings, image_server):
    # A threshold no tiny-model output reaches: the model alone says "real" for everything.
    settings = service_settings.replace(threshold=0.999, uncertain_band=0.0)
    with TestClient(create_app(settings)) as client:
        plain, sd = _detect(client, {"url": image_server.url("plain.png")}, {"url": image_server.url("sd.png")})
    assert plain["verdict"] == "real" and plain["ai_probability"] < 0.999
    assert sd["ai_probability"] < 0.999
    assert sd["verdict"] == "ai"
    assert sd["provenance"]["verdict"] == "ai"
    assert sd["source"]["probability"] == 1.0


def _png(width: int, height: int) -> bytes:
    encoded = io.BytesIO()
    Image.new("RGB", (width, height), (120, 30, 200)).save(encoded, "PNG")
    return encoded.getvalue()


def test_a_long_strip_gets_a_verdict(client):
    """A 65,535 x 1 PNG (the longest side decoded) is a few KB: preprocessing must not scale all of it (gigabytes)."""
    (strip,) = _detect(client, {"id": "strip", "image_b64": b64(_png(65_535, 1))})
    _assert_ok(strip, client.get("/v1/model").json()["version"])


def test_an_unexpected_error_fails_only_its_item(client, image_server, caplog, monkeypatch):
    """A bug in preprocessing one picture (a RuntimeError nobody planned for, injected for 31 x 17
    pictures only) becomes that item's internal_error; the traceback goes to the log, not the client."""
    preprocess = Bundle.preprocess

    def failing_for_the_odd_size(bundle, picture):
        if picture.size == (31, 17):
            raise RuntimeError("injected preprocessing bug")
        return preprocess(bundle, picture)

    monkeypatch.setattr(Bundle, "preprocess", failing_for_the_odd_size)
    with caplog.at_level(logging.ERROR, logger="genspot.backend.pipeline.service"):
        odd, good = _detect(
            client, {"id": "odd", "image_b64": b64(_png(31, 17))}, {"id": "good", "url": image_server.url("photo.jpg", "t=internal")}
        )
    _assert_ok(good, client.get("/v1/model").json()["version"])
    assert odd["status"] == "error"
    assert odd["error"]["code"] == "internal_error"
    assert "injected" not in odd["error"]["message"] and "RuntimeError" not in odd["error"]["message"]
    logged = [record for record in caplog.records if record.exc_info and "'odd'" in record.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info[0] is RuntimeError
    assert metric_value(client.get("/metrics").text, "genspot_item_errors_total", code="internal_error") == 1


@pytest.fixture
def redis_client(service_settings, redis_server):
    """Built in the fixture: the app's logging setup detaches caplog's handler from the phase it runs in."""
    with TestClient(create_app(service_settings.replace(redis_url=redis_server.url))) as test_client:
        yield test_client


@pytest.mark.parametrize(
    "planted",
    [
        b"\xff\xfe\x00 not utf-8",
        b"{not-a-digest}",
        b"ab" * 40,
        b'{"sha256": "' + b"ab" * 40 + b'", "checked_at": 0}',
        b'{"sha256": "' + b"ab" * 32 + b'", "checked_at": 0, "validators": {"url": "http://x/", "etag": "v\\r\\nX-Injected: 1"}}',
    ],
)
def test_a_corrupt_url_cache_entry_is_a_miss(redis_client, redis_server, image_server, caplog, planted):
    """Whatever sits in Redis under a URL's key (another writer, a bug, an attacker with access),
    the item is judged as if nothing were cached, and the entry is replaced by the real digest."""
    url = image_server.url("photo.jpg", "t=corrupt")
    key = cache_keys.url_key(url, redis_client.app.state.resources.service.fetcher.request_variant(None))
    redis_server.client().set(key, planted)
    with caplog.at_level(logging.WARNING, logger="genspot.backend.pipeline.service"):
        (result,) = _detect(redis_client, {"url": url})
    _assert_ok(result, redis_client.get("/v1/model").json()["version"])
    metrics = redis_client.get("/metrics").text
    assert result["cached"] is False and image_server.hits("photo.jpg?t=corrupt") >= 1
    assert metric_value(metrics, "genspot_cache_total", entry="url", outcome="miss") == 1
    assert metric_value(metrics, "genspot_item_errors_total", code="internal_error") == 0
    assert any("corrupt URL cache entry" in record.getMessage() for record in caplog.records)
    assert cache_keys.decode_url_entry(redis_server.client().get(key)).sha256 == result["sha256"]  # overwritten


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "items"),
        ({"items": []}, "items"),
        ({"items": [{"url": 3}]}, "items[0].url"),
        ({"items": [{"id": "x", "alt_text": "no image"}]}, "items[0]"),
        ({"items": [{"url": "http://a.example/x.jpg"}, {"url": "http://a.example/y.jpg", "image_b64": "AAAA"}]}, "items[1]"),
        ({"items": [{"image_b64": "not base64!"}]}, "items[0].image_b64"),
        ({"items": [{"url": "http://a.example/x.jpg"}] * (MAX_ITEMS + 1)}, "items"),
    ],
)
def test_malformed_requests_get_problem_details_naming_the_field(client, body, field):
    response = client.post("/v1/detect", json=body)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 400 and problem["title"] == "Bad Request"
    assert field in [param["name"] for param in problem["invalid_params"]], problem
    assert field in problem["detail"]


def test_invalid_json_and_wrong_method_are_problems(client):
    response = client.post("/v1/detect", content=b'{"items": [', headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["invalid_params"][0]["name"] == "body" and "JSON" in response.json()["detail"]
    assert client.get("/v1/detect").status_code == 405


def test_refusals_match_the_documented_problem_schema(service_settings):
    """Each refusal /v1/detect can answer with is documented as the problem+json body it really is."""
    settings = service_settings.replace(api_keys=("k1",), rate_limit_per_client=3, max_request_bytes=2000)
    key = {"X-API-Key": "k1"}
    with TestClient(create_app(settings)) as client:
        openapi = client.get("/schema/openapi.json", headers=key).json()
        refusals = [  # the first three count against the client's limit of 3, the unkeyed one does not
            client.post("/v1/detect", json={"items": [{"id": "neither url nor image"}]}, headers=key),
            client.post("/v1/detect", content=b'{"items": [', headers={**key, "content-type": "application/json"}),
            client.post("/v1/detect", json={"items": [{"image_b64": b64(b"x" * 3000)}]}, headers=key),
            client.post("/v1/detect", json={"items": [{"url": "http://a.example/x.jpg"}]}),
            client.post("/v1/detect", json={"items": [{"url": "http://a.example/x.jpg"}]}, headers=key),
        ]
    assert [response.status_code for response in refusals] == [400, 400, 413, 401, 429]
    documented = openapi["paths"]["/v1/detect"]["post"]["responses"]
    for response in refusals:
        content = documented[str(response.status_code)]["content"]
        assert list(content) == ["application/problem+json"]
        assert response.headers["content-type"].startswith("application/problem+json")
        schema = content["application/problem+json"]["schema"]
        body = response.json()
        errors = [error.message for error in jsonschema_rs.validator_for({**schema, "components": openapi["components"]}).iter_errors(body)]
        assert errors == [], (response.status_code, body)
        component = openapi["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        assert set(body) <= set(component["properties"]), body  # nothing sent that is not documented
    assert "invalid_params" in refusals[0].json()
    item_schema = openapi["components"]["schemas"]["DetectItem"]
    assert "exactly one of `url`" in item_schema["description"]


def test_model_health_ready_and_schema(client, tiny_bundle):
    model = client.get("/v1/model").json()
    assert model["labels"] and model["version"]
    assert model["thresholds"] == {"threshold": 0.5, "uncertain_band": 0.15}
    # the tiny bundle's p_ai reads its alt-text; these tests' settings send alt-texts on purpose
    assert model["alt_text"] == "full" and model["sends_alt_text"] is True
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["cache_kind"] == "memory"
    schema = client.get("/schema/openapi.json").json()
    assert {"/v1/detect", "/v1/detect/upload", "/v1/model", "/readyz", "/metrics"} <= set(schema["paths"])


def test_concurrent_requests_share_model_batches(service_settings, image_server):
    """Eight one-item requests at once, with a 200 ms batching window, take fewer than eight model calls."""
    settings = service_settings.replace(batch_max_wait_ms=200.0)
    picture, _ = image_server.files["photo.jpg"]

    async def run() -> str:
        async with asgi_client(create_app(settings)) as client:
            bodies = [{"items": [{"image_b64": b64(picture), "alt_text": f"caption {i}"}]} for i in range(8)]
            responses = await asyncio.gather(*(client.post("/v1/detect", json=body) for body in bodies))
            assert all(r.status_code == 200 and r.json()["results"][0]["status"] == "ok" for r in responses)
            return (await client.get("/metrics")).text

    metrics = asyncio.run(run())
    assert metric_value(metrics, "genspot_batch_size_sum") == 8
    assert metric_value(metrics, "genspot_batch_size_count") < 8
    assert metric_value(metrics, "genspot_batch_size_bucket", le="1.0") < 8


def test_api_keys_are_required_when_configured(service_settings, image_server):
    settings = service_settings.replace(api_keys=("k1", "k2"))
    item = {"items": [{"url": image_server.url("photo.jpg", "t=keys")}]}
    with TestClient(create_app(settings)) as client:
        missing = client.post("/v1/detect", json=item)
        wrong = client.post("/v1/detect", json=item, headers={"X-API-Key": "nope"})
        right = client.post("/v1/detect", json=item, headers={"X-API-Key": "k2"})
        health = client.get("/healthz")
    assert missing.status_code == wrong.status_code == 401
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert "X-API-Key" in missing.json()["detail"]
    assert right.status_code == 200 and health.status_code == 200


def test_rate_limits_per_client_and_per_key(service_settings):
    settings = service_settings.replace(rate_limit_per_client=3, rate_limit_per_key=2, api_keys=("k1",))
    with TestClient(create_app(settings)) as client:
        by_key = [client.get("/v1/model", headers={"X-API-Key": "k1"}).status_code for _ in range(3)]
        limited = client.get("/v1/model", headers={"X-API-Key": "k1"})
    assert by_key == [200, 200, 429]  # the key's limit (2) bites first
    assert limited.status_code == 429  # then the address's limit (3)
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["content-type"].startswith("application/problem+json")


def test_request_size_limit(service_settings):
    settings = service_settings.replace(max_request_bytes=1000)
    with TestClient(create_app(settings)) as client:
        response = client.post("/v1/detect", json={"items": [{"image_b64": b64(b"x" * 2000)}]})
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")


def test_cors_allows_configured_and_extension_origins_only(client):
    def preflight(origin):
        headers = {"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-api-key"}
        return client.options("/v1/detect", headers=headers)

    allowed = preflight("chrome-extension://abcdefghijklmnopabcdefghijklmnop")
    assert allowed.status_code in (200, 204)
    assert allowed.headers["access-control-allow-origin"] == "chrome-extension://abcdefghijklmnopabcdefghijklmnop"
    firefox = "moz-extension://0b2d1c3e-5f6a-4b7c-8d9e-0f1a2b3c4d5e"  # any extension, by the default pattern
    assert preflight(firefox).headers["access-control-allow-origin"] == firefox
    assert "access-control-allow-origin" not in preflight("https://evil.example").headers
