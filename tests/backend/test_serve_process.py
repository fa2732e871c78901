"""Real `genspot serve` processes: the embedded default, and two processes sharing one Redis."""

from __future__ import annotations

import httpx

from genspot.backend.api import serve

from backend_helpers import metric_value


def _detect(server, url, caption=None):
    response = httpx.post(server.url + "/v1/detect", json={"items": [{"url": url, "alt_text": caption}]}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["results"][0]


def test_two_processes_on_one_redis_share_results(backend_server, tiny_bundle, redis_server, image_server):
    settings = {"allow_loopback": True, "allowed_ports": [image_server.port]}
    first = backend_server(tiny_bundle, redis_server.url, **settings)
    second = backend_server(tiny_bundle, redis_server.url, **settings)
    url = image_server.url("photo.webp", "t=two-processes")

    computed = _detect(first, url, "a boat")
    shared = _detect(second, url, "a boat")
    assert (computed["cached"], shared["cached"]) == (False, True)
    assert shared["ai_probability"] == computed["ai_probability"]
    assert image_server.hits("photo.webp?t=two-processes") == 1  # the second process did not download it
    metrics = httpx.get(second.url + "/metrics").text
    assert metric_value(metrics, "genspot_cache_total", entry="result", outcome="hit") == 1
    assert metric_value(metrics, "genspot_batch_size_count") == 0  # its model never ran


def test_embedded_server_answers_with_in_process_cache(backend_server, tiny_bundle, image_server):
    server = backend_server(tiny_bundle, allow_loopback=True, allowed_ports=[image_server.port])
    ready = httpx.get(server.url + "/readyz").json()
    assert ready == {"status": "ready", "model": True, "cache": "ok", "cache_kind": "memory"}
    first = _detect(server, image_server.url("photo.jpg", "t=embedded"))
    again = _detect(server, image_server.url("photo.jpg", "t=embedded"))
    assert first["status"] == "ok" and (first["cached"], again["cached"]) == (False, True)


def test_serve_refuses_a_missing_bundle_in_one_line(tmp_path, capsys):
    assert serve.main(["--bundle", str(tmp_path / "nope")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("genspot serve: error:") and "\n" not in error


def test_serve_rejects_an_invalid_environment_setting(monkeypatch, tiny_bundle, capsys):
    monkeypatch.setenv("GENSPOT_PORT", "eighty")
    assert serve.main(["--bundle", str(tiny_bundle)]) == 2
    assert "GENSPOT_PORT" in capsys.readouterr().err
