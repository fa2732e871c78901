"""Malformed bodies the schema cannot describe: each is a 4xx problem+json, never a 500."""

from __future__ import annotations

import pytest
from litestar.testing import TestClient

from genspot.backend.api.app import create_app

from backend_helpers import b64


@pytest.fixture
def client(service_settings):
    with TestClient(create_app(service_settings)) as test_client:
        yield test_client


def _assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status
    return problem


def test_a_body_nested_100000_arrays_deep_is_a_400(client):
    body = b"[" * 100_000 + b"]" * 100_000
    problem = _assert_problem(client.post("/v1/detect", content=body, headers={"content-type": "application/json"}), 400)
    assert problem["invalid_params"][0]["name"] == "body"
    assert "nested" in problem["detail"]


def test_deep_nesting_inside_an_item_is_a_400(client):
    body = b'{"items": [{"id": ' + b"[" * 100_000 + b"]" * 100_000 + b"}]}"
    _assert_problem(client.post("/v1/detect", content=body, headers={"content-type": "application/json"}), 400)


def test_a_file_part_without_a_filename_is_a_400(client, image_server):
    """A multipart part with binary content but no filename is a form field to the parser: not text."""
    data, _ = image_server.files["photo.jpg"]
    boundary = "genspotboundary"
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"\r\nContent-Type: image/jpeg\r\n\r\n".encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    response = client.post("/v1/detect/upload", content=body, headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    problem = _assert_problem(response, 400)
    assert "filename" in problem["detail"]


def test_the_same_part_with_a_filename_is_judged(client, image_server):
    data, _ = image_server.files["photo.jpg"]
    response = client.post("/v1/detect/upload", files=[("files", ("a.jpg", data, "image/jpeg"))])
    assert response.status_code == 200 and response.json()["results"][0]["status"] == "ok"


def test_a_text_alt_text_part_still_works_beside_files(client, image_server):
    data, _ = image_server.files["photo.jpg"]
    response = client.post("/v1/detect/upload", files=[("files", ("a.jpg", data, "image/jpeg"))], data={"alt_text": "a cat"})
    assert response.status_code == 200, response.text
    assert b64(data)  # the helper module imports cleanly here too
