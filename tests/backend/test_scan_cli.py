"""`genspot scan`: the service's pipeline on local files, folders and URLs, without a server."""

from __future__ import annotations

import json

import pytest

from genspot.backend import scan


@pytest.fixture
def image_folder(tmp_path, image_server):
    folder = tmp_path / "images"
    (folder / "nested").mkdir(parents=True)
    for name in ("photo.jpg", "sd.png", "photo.webp"):
        (folder / name).write_bytes(image_server.files[name][0])
    (folder / "nested" / "animated.gif").write_bytes(image_server.files["animated.gif"][0])
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_scan_json_matches_the_api_shape(image_folder, tiny_bundle, capsys):
    code = scan.main([str(image_folder), "--bundle", str(tiny_bundle), "--caption", "a photo", "--json"])
    assert code == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert [result["id"].rsplit("/", 1)[-1] for result in results] == ["animated.gif", "photo.jpg", "photo.webp", "sd.png"]
    assert all(result["status"] == "ok" and result["verdict"] in {"ai", "real", "uncertain"} for result in results)
    sd = results[-1]
    assert sd["verdict"] == "ai" and sd["provenance"]["verdict"] == "ai"


def test_scan_table_urls_and_errors(image_folder, tiny_bundle, image_server, monkeypatch, capsys):
    monkeypatch.setenv("GENSPOT_ALLOWED_PORTS", str(image_server.port))
    targets = [str(image_folder / "photo.jpg"), image_server.url("plain.png", "t=scan"), image_server.url("page.png", "t=scan")]
    code = scan.main([*targets, "--bundle", str(tiny_bundle), "--allow-loopback"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1  # one item could not be judged
    assert lines[0].split()[:2] == ["verdict", "p(ai)"]
    assert len(lines) == 4
    assert lines[3].startswith("error") and "not_an_image" in lines[3]
    assert lines[1].split()[0] in {"ai", "real", "uncertain"} and targets[0] in lines[1]


def test_scan_refuses_a_missing_file_in_one_line(tmp_path, tiny_bundle, capsys):
    assert scan.main([str(tmp_path / "missing.jpg"), "--bundle", str(tiny_bundle)]) == 2
    assert capsys.readouterr().err.strip() == f"genspot scan: error: no such file, folder or URL: {tmp_path / 'missing.jpg'}"
