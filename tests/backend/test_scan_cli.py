"""`genspot scan`: the service's pipeline on local files, folders and URLs, without a server."""

from __future__ import annotations

import asyncio
import json

import pytest

from genspot.backend.pipeline import scan


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


def test_scan_urls_file_streams_jsonl_with_progress_and_summary(image_folder, tiny_bundle, image_server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GENSPOT_ALLOWED_PORTS", str(image_server.port))
    listed = [image_server.url("photo.jpg", "t=jsonl"), image_server.url("page.png", "t=jsonl"), str(image_folder / "sd.png"), str(tmp_path / "gone.jpg")]
    url_file = tmp_path / "queue.txt"
    url_file.write_text("# moderation queue\n\n" + "\n".join(listed) + "\n")
    streamed: list[bool] = []
    real_write = scan.sys.stdout.write

    def spy(text):  # whether each line reaches stdout while the scan still runs (inside its event loop)
        try:
            asyncio.get_running_loop()
            streamed.append(True)
        except RuntimeError:
            streamed.append(False)
        return real_write(text)

    monkeypatch.setattr(scan.sys.stdout, "write", spy)
    code = scan.main(["--urls", str(url_file), "--jsonl", "--bundle", str(tiny_bundle), "--allow-loopback", "--concurrency", "2"])
    out, err = capsys.readouterr()
    assert code == 1
    results = [json.loads(line) for line in out.splitlines()]
    assert sorted(result["id"] for result in results) == sorted(listed)
    by_id = {result["id"]: result for result in results}
    assert by_id[listed[0]]["status"] == "ok" and len(by_id[listed[0]]["sha256"]) == 64 and by_id[listed[0]]["thresholds"]
    assert by_id[listed[1]]["error"]["code"] == "not_an_image"
    assert by_id[listed[2]]["decided_by"] == "provenance" and by_id[listed[2]]["verdict"] == "ai"
    assert by_id[listed[3]]["error"]["code"] == "unreadable_file"
    assert streamed == [True] * 4, "one write per result, each while the scan still runs"
    assert "4/4" in err, "a progress bar on stderr"
    summary = err.strip().splitlines()[-1]
    assert summary.startswith("genspot scan: 4 image(s): ") and "2 error (" in summary and "decided by provenance: 1" in summary


def test_scan_summary_counts_verdicts(image_folder, tiny_bundle, capsys):
    assert scan.main([str(image_folder), "--bundle", str(tiny_bundle), "--no-progress"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()[1:]
    counts = {kind: sum(line.split()[0] == kind for line in lines) for kind in ("ai", "real", "uncertain")}
    assert err.strip() == (
        f"genspot scan: 4 image(s): {counts['ai']} ai, {counts['real']} real, {counts['uncertain']} uncertain, 0 error; decided by provenance: 1"
    )
