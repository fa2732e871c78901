"""POST /v1/feedback (in-process app, tiny bundle) and `genspot feedback export` on the file it writes."""

from __future__ import annotations

import base64
import csv
import hashlib
import json

import pytest
from litestar.testing import TestClient

from genspot import cli
from genspot.backend.api.app import create_app
from genspot.backend.api.feedback import FeedbackRequest, FeedbackStore, read_records

from backend_helpers import b64

SHA = hashlib.sha256(b"an image").hexdigest()
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg==")
OTHER = hashlib.sha256(b"another image").hexdigest()


@pytest.fixture
def store_path(tmp_path):
    return tmp_path / "reports" / "feedback.jsonl"


@pytest.fixture
def client(service_settings, store_path):
    settings = service_settings.replace(feedback_path=str(store_path), feedback_per_client_per_hour=3)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def report(**fields):
    return {"sha256": SHA, "correct_label": "real", "reported_verdict": "ai", "decided_by": "model", **fields}


def test_a_report_is_stored_unverified_with_the_image_hash(client, store_path):
    response = client.post("/v1/feedback", json=report(model_version="tiny-1", image_url="https://example.org/a.jpg"))
    assert response.status_code == 201, response.text
    receipt = response.json()
    assert receipt["status"] == "stored" and receipt["verification"] == "unverified"
    [record] = [json.loads(line) for line in store_path.read_text().splitlines()]
    assert record["id"] == receipt["id"] and record["sha256"] == SHA and record["correct_label"] == "real"
    assert record["verification"] == "unverified" and record["model_version"] == "tiny-1"
    assert len(record["reporter"]) == 16 and "testclient" not in json.dumps(record), "the client's address is never stored"

    again = client.post("/v1/feedback", json=report(model_version="tiny-1"))
    assert again.json() == {"id": receipt["id"], "status": "duplicate", "verification": "unverified"}
    assert len(store_path.read_text().splitlines()) == 1, "a client's repeated report of one image is stored once"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (report(sha256="not-a-hash"), "sha256"),
        (report(correct_label="maybe"), "correct_label"),
        (report(image_url="javascript:alert(1)"), "image_url"),
        (report(comment="x" * 1001), "comment"),
        (report(training_weight=100), "training_weight"),
    ],
)
def test_malformed_reports_are_refused(client, store_path, body, field):
    response = client.post("/v1/feedback", json=body)
    assert response.status_code == 400 and field in response.text
    assert not store_path.exists()


def test_only_json_bodies_within_16_kib_are_accepted(client, store_path):
    simple = client.post("/v1/feedback", content=json.dumps(report()), headers={"content-type": "text/plain"})
    assert simple.status_code == 415 and "application/json" in simple.json()["detail"]  # backend/api/browser.py refuses it first
    huge = client.post("/v1/feedback", content=json.dumps(report(comment="x" * 20_000)), headers={"content-type": "application/json"})
    assert huge.status_code == 413
    assert not store_path.exists()


def test_reports_are_rate_limited_per_client(client, store_path):
    codes = [client.post("/v1/feedback", json=report(sha256=hashlib.sha256(bytes([i])).hexdigest())).status_code for i in range(4)]
    assert codes == [201, 201, 201, 429]
    assert len(store_path.read_text().splitlines()) == 3


def test_web_pages_cannot_report_cross_origin(client):
    preflight = client.options(
        "/v1/feedback", headers={"origin": "https://evil.example", "access-control-request-method": "POST", "access-control-request-headers": "content-type"}
    )
    assert "access-control-allow-origin" not in preflight.headers
    extension = client.options(
        "/v1/feedback",
        headers={"origin": "chrome-extension://abcdefghijklmnopabcdefghijklmnop", "access-control-request-method": "POST",
                 "access-control-request-headers": "content-type"},
    )
    assert extension.headers.get("access-control-allow-origin") == "chrome-extension://abcdefghijklmnopabcdefghijklmnop"


def test_a_full_store_refuses_more(tmp_path):
    store = FeedbackStore(tmp_path / "f.jsonl", max_bytes=600)
    store.add(FeedbackRequest(sha256=SHA, correct_label="ai"), "r1")
    with pytest.raises(Exception, match="full"):
        for index in range(5):
            store.add(FeedbackRequest(sha256=SHA, correct_label="ai"), f"r{index + 2}")


def test_export_counts_distinct_reporters_per_image(store_path, tmp_path, capsys):
    store = FeedbackStore(store_path)
    for reporter, sha, label in [("a", SHA, "real"), ("b", SHA, "real"), ("c", SHA, "ai"), ("a", OTHER, "ai")]:
        store.add(FeedbackRequest(sha256=sha, correct_label=label, generator="Midjourney" if label == "ai" else None), reporter)
    store.add(FeedbackRequest(sha256=SHA, correct_label="real"), "b")  # a duplicate: stored once
    assert len(read_records(store_path)[0]) == 4

    assert cli.main(["feedback", "export", "--store", str(store_path)]) == 0
    out, err = capsys.readouterr()
    rows = {row["sha256"]: row for row in map(json.loads, out.splitlines())}
    assert rows[SHA]["label_a"] == 0 and (rows[SHA]["votes_real"], rows[SHA]["votes_ai"], rows[SHA]["reporters"]) == (2, 1, 3)
    assert rows[OTHER]["label_a"] == 1 and rows[OTHER]["generators"] == ["Midjourney"]
    assert all(row["verification"] == "unverified" for row in rows.values())
    assert "4 report(s), 2 row(s)" in err

    out_csv = tmp_path / "labels.csv"
    assert cli.main(["feedback", "export", "--store", str(store_path), "--format", "csv", "--min-reporters", "2", "--out", str(out_csv)]) == 0
    [row] = list(csv.DictReader(out_csv.open()))
    assert row["sha256"] == SHA and row["label_a"] == "0" and row["reporters"] == "3"


def test_export_of_a_missing_store_fails_in_one_line(tmp_path, capsys):
    assert cli.main(["feedback", "export", "--store", str(tmp_path / "none.jsonl")]) == 2
    assert capsys.readouterr().err.startswith("genspot feedback: error:")


def test_made_up_api_keys_do_not_multiply_a_reporter(client, store_path):
    """No keys are configured: whatever X-API-Key a client sends, it is one reporter."""
    answers = [client.post("/v1/feedback", json=report(), headers={"X-API-Key": f"made-up-{n}"}).json()["status"] for n in range(3)]
    assert answers == ["stored", "duplicate", "duplicate"]  # within the client's 3 reports an hour
    assert len({record.reporter for record in read_records(store_path)[0]}) == 1


def test_a_reporter_stays_one_across_restarts_and_workers(store_path):
    """Every process writing the store (a restarted one, another worker) hashes a client alike."""
    first, restarted, other_worker = (FeedbackStore(store_path) for _ in range(3))
    assert first.reporter_id("203.0.113.7", None) == restarted.reporter_id("203.0.113.7", None) == other_worker.reporter_id("203.0.113.7", None)
    assert first.reporter_id("203.0.113.7", None) != first.reporter_id("203.0.113.8", None)
    assert FeedbackStore(store_path.parent / "elsewhere.jsonl").reporter_id("203.0.113.7", None) != first.reporter_id("203.0.113.7", None)


@pytest.mark.parametrize("sha256", [SHA + "\n", SHA + "\r\n", " " + SHA, SHA.upper()])
def test_a_hash_must_be_exactly_64_lowercase_hex_digits(client, store_path, sha256):
    response = client.post("/v1/feedback", json=report(sha256=sha256))
    assert response.status_code == 400 and "sha256" in response.text
    assert not store_path.exists()


@pytest.mark.parametrize("path", ["/v1/feedback", "/v1/detect"])
def test_duplicate_json_keys_are_refused(client, store_path, path):
    picture = {"items": [{"url": "data:image/png;base64," + b64(PNG)}]}
    first, second = (report(), report(sha256=OTHER)) if path == "/v1/feedback" else (picture, picture)
    body = json.dumps(first)[:-1] + ", " + json.dumps(second)[1:]  # every key twice, the second wins in msgspec
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert "appears twice" in response.json()["detail"]
    assert not store_path.exists()


def test_csv_export_neutralises_formulas(store_path, tmp_path):
    """A spreadsheet runs a cell starting with = + - @ (or a tab or CR before one) as a formula."""
    store = FeedbackStore(store_path)
    hostile = ['=HYPERLINK("https://evil.example","click")', "+1+1", "-2+3", "@SUM(A1)", "\t=1+1", "\r=1+1"]
    for n, text in enumerate(hostile):
        store.add(FeedbackRequest(sha256=hashlib.sha256(bytes([n])).hexdigest(), correct_label="ai", comment=text, generator=text[:100]), "r")
    out_csv = tmp_path / "records.csv"
    assert cli.main(["feedback", "export", "--store", str(store_path), "--records", "--format", "csv", "--out", str(out_csv)]) == 0
    rows = list(csv.DictReader(out_csv.open(newline="")))
    assert [row["comment"] for row in rows] == ["'" + text for text in hostile]
    assert [row["generator"] for row in rows] == ["'" + text for text in hostile]
    candidates = tmp_path / "candidates.csv"
    assert cli.main(["feedback", "export", "--store", str(store_path), "--format", "csv", "--out", str(candidates)]) == 0
    assert sorted(row["generators"] for row in csv.DictReader(candidates.open(newline=""))) == sorted("'" + t for t in hostile)
