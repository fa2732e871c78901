"""URL entries are bounded per URL and per client, so made-up page origins cannot flush the cache."""

from __future__ import annotations

from litestar.testing import TestClient

from genspot.backend.api.app import create_app


def _detect(client, item: dict, key: str | None = None) -> dict:
    response = client.post("/v1/detect", json={"items": [item]}, headers={"X-API-Key": key} if key else {})
    assert response.status_code == 200, response.text
    result = response.json()["results"][0]
    assert result["status"] == "ok", result
    return result


def test_made_up_page_origins_for_one_url_cannot_flush_the_cache(service_settings, image_server):
    settings = service_settings.replace(memory_cache_items=40, url_variants_per_url=4)
    kept = image_server.url("plain.png", "t=kept")
    with TestClient(create_app(settings)) as client:
        _detect(client, {"url": kept})
        for n in range(60):
            _detect(client, {"url": image_server.url("photo.jpg", "t=origins"), "page_url": f"https://site{n}.example/"})
        again = _detect(client, {"url": kept})
        latest = _detect(client, {"url": image_server.url("photo.jpg", "t=origins"), "page_url": "https://site59.example/"})
    assert again["cached"] and image_server.hits("plain.png?t=kept") == 1  # its entries survived the 60 origins
    assert latest["cached"] and image_server.hits("photo.jpg?t=origins") == 60  # the latest origins stay remembered


def test_one_client_writes_a_bounded_number_of_url_entries(service_settings, image_server):
    settings = service_settings.replace(url_entries_per_client=5, api_keys=("one", "other"), rate_limit_per_key=10**9)
    urls = [image_server.url("dark.png", f"t=client-{n}") for n in range(8)]
    with TestClient(create_app(settings)) as client:
        for _ in range(2):
            for url in urls:
                _detect(client, {"url": url}, "one")
        _detect(client, {"url": urls[-1]}, "other")
        remembered_for_other = _detect(client, {"url": urls[-1]}, "other")
    # "one" remembered its first five URLs only; "other" has a share of its own
    assert [image_server.hits(f"dark.png?t=client-{n}") for n in range(8)] == [1] * 5 + [2, 2, 3]
    assert remembered_for_other["cached"]
