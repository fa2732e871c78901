"""Drive-by use from a web page: a page can make its visitor's browser POST text/plain or multipart
bodies to a local instance without a CORS preflight. JSON is accepted only as application/json,
and a request whose Origin is not allowed is refused on every state-changing route; requests
without an Origin (curl, servers) and from the extension work as before."""

from __future__ import annotations

import json

import pytest
from litestar.testing import TestClient

from genspot.backend.api.app import create_app

from backend_helpers import b64, metric_value

EXTENSION = "chrome-extension://abcdefghijklmnopabcdefghijklmnop"  # service_settings' configured origin


@pytest.fixture
def client(service_settings):
    settings = service_settings.replace(cors_origins=(EXTENSION, "https://moderation.example"))
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _body(image_server, tag: str) -> bytes:
    return json.dumps({"items": [{"url": image_server.url("photo.jpg", f"t={tag}")}]}).encode()


def _assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.json()


@pytest.mark.parametrize(
    "content_type", ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None]
)
def test_json_is_accepted_only_as_application_json(client, image_server, content_type):
    tag = f"ct-{content_type}"
    headers = {} if content_type is None else {"content-type": content_type}
    problem = _assert_problem(client.post("/v1/detect", content=_body(image_server, tag), headers=headers), 415)
    assert "application/json" in problem["detail"]
    assert image_server.hits(f"photo.jpg?t={tag}") == 0  # refused before anything was fetched


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"])
def test_application_json_in_any_spelling_is_served(client, image_server, content_type):
    response = client.post("/v1/detect", content=_body(image_server, "json"), headers={"content-type": content_type})
    assert response.status_code == 200, response.text


def test_the_upload_route_takes_only_multipart(client, image_server):
    data, _ = image_server.files["photo.jpg"]
    _assert_problem(client.post("/v1/detect/upload", content=data, headers={"content-type": "image/jpeg"}), 415)
    _assert_problem(client.post("/v1/detect/upload", content=b"files=x", headers={"content-type": "text/plain"}), 415)


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://127.0.0.1:8000", "chrome-extension://"])
def test_a_foreign_origin_is_refused_on_every_state_changing_route(client, image_server, origin):
    """What a web page's form or fetch() can send without a preflight: text/plain and multipart."""
    data, _ = image_server.files["photo.jpg"]
    tag = f"origin-{origin}"
    refused = [
        client.post("/v1/detect", content=_body(image_server, tag), headers={"origin": origin, "content-type": "application/json"}),
        client.post("/v1/detect", content=_body(image_server, tag), headers={"origin": origin, "content-type": "text/plain"}),
        client.post("/v1/detect/upload", files=[("files", ("a.jpg", data, "image/jpeg"))], headers={"origin": origin}),
    ]
    for response in refused:
        problem = _assert_problem(response, 403)
        assert "Origin" in problem["detail"]
    assert image_server.hits(f"photo.jpg?t={tag}") == 0
    assert metric_value(client.get("/metrics").text, "genspot_batch_size_count") == 0  # no model work either


@pytest.mark.parametrize(
    "origin", [EXTENSION, "moz-extension://0b2d1c3e-5f6a-4b7c-8d9e-0f1a2b3c4d5e", "chrome-extension://zyxwvutsrqponmlkzyxwvutsrqponmlk", "https://moderation.example"]
)
def test_extension_and_configured_origins_are_served(client, image_server, origin):
    response = client.post("/v1/detect", content=_body(image_server, "allowed"), headers={"origin": origin, "content-type": "application/json"})
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == origin


def test_requests_without_an_origin_are_served(client, image_server):
    data, _ = image_server.files["photo.jpg"]
    assert client.post("/v1/detect", content=_body(image_server, "no-origin"), headers={"content-type": "application/json"}).status_code == 200
    upload = client.post("/v1/detect/upload", files=[("files", ("a.jpg", data, "image/jpeg"))])
    assert upload.status_code == 200, upload.text


def test_reading_routes_answer_any_origin(client):
    """GETs change nothing; CORS alone decides whether the page may read the answer."""
    assert client.get("/v1/model", headers={"origin": "https://evil.example"}).status_code == 200
    assert client.get("/healthz", headers={"origin": "https://evil.example"}).status_code == 200


def test_the_origin_check_can_be_turned_off(service_settings, image_server):
    with TestClient(create_app(service_settings.replace(check_origin=False))) as client:
        body = {"items": [{"image_b64": b64(image_server.files["photo.jpg"][0])}]}
        response = client.post("/v1/detect", json=body, headers={"origin": "https://tools.example"})
    assert response.status_code == 200, response.text
