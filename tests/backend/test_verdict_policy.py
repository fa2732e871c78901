"""How provenance and the model combine (backend/verdict.py's policy), on real provenance reads
of real and built files, and in the API's answers (decided_by, model_verdict, sha256, thresholds)."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from litestar.testing import TestClient
from PIL import Image

from genspot.backend.app import create_app
from genspot.backend.provenance import C2paStatus, Provenance, Signal, read_provenance
from genspot.backend.schemas import Detection, Source, Thresholds
from genspot.backend.verdict import decide

from backend_helpers import b64

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "provenance"
THRESHOLDS = Thresholds(0.5, 0.15)
LABELS = ["midjourney_v3_2022", "dalle_mini"]
SOURCES = [Source("midjourney_v3_2022", 0.8), Source("dalle_mini", 0.2)]


def real_file(name: str) -> bytes:
    path = DATA / name
    if not path.exists():
        pytest.skip(f"provenance test data not found at {path}")
    return path.read_bytes()


def camera_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Canon", "Canon EOS REBEL T3"
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), "gray").save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


def judged(provenance: Provenance | None, p_ai: float):
    return decide(Detection(ai_probability=p_ai, sources=SOURCES, provenance=provenance), THRESHOLDS, LABELS)


@pytest.mark.parametrize("p_ai", [0.05, 0.5, 0.99])
def test_metadata_proving_ai_decides_whatever_the_model_says(p_ai):
    decision = judged(read_provenance(real_file("iptc_xmp/ai_gemini_via_firefly_xmp_dst.png")), p_ai)
    assert (decision.verdict, decision.decided_by) == ("ai", "provenance")
    assert "Gemini" in decision.source.label and decision.source.probability == 1.0
    assert (decision.conflict is None) == (decision.model_verdict == "ai")


def test_an_intact_signed_ai_free_edit_decides_real_unless_an_untrusted_signer_meets_a_confident_model():
    provenance = read_provenance(real_file("c2pa/edit_photoshop_no_ai.jpg"))
    assert provenance.c2pa.validity == "untrusted"
    calm = judged(provenance, 0.4)
    assert (calm.verdict, calm.decided_by, calm.model_verdict, calm.conflict) == ("real", "provenance", "uncertain", None)
    clash = judged(provenance, 0.89)
    assert (clash.verdict, clash.decided_by, clash.model_verdict) == ("uncertain", "provenance", "ai")
    assert "the model alone says ai (AI probability 89%)" in clash.conflict and "Adobe C2PA" in clash.conflict


def test_a_trusted_signer_decides_real_even_against_the_model():
    signal = Signal("c2pa", "c2pa.created with digitalSourceType digitalCapture", "not-ai", "Camera")
    provenance = Provenance("not-ai", "Camera", [signal], C2paStatus(validity="valid", signer="Leica"))
    decision = judged(provenance, 0.99)
    assert (decision.verdict, decision.decided_by, decision.source) == ("real", "provenance", Source("real", 1.0))
    assert decision.conflict.startswith("the model alone says ai")


def test_camera_exif_only_holds_a_model_ai_verdict_at_uncertain():
    provenance = read_provenance(camera_jpeg())
    clash = judged(provenance, 0.99)
    assert (clash.verdict, clash.decided_by, clash.model_verdict) == ("uncertain", "model", "ai")
    assert "Canon EOS REBEL T3" in clash.conflict and "easy to copy" in clash.conflict
    assert judged(provenance, 0.1).verdict == "real" and judged(provenance, 0.1).decided_by == "model"
    assert judged(provenance, 0.5).verdict == "uncertain"


def test_a_capture_in_an_invalid_manifest_is_weak_evidence():
    provenance = read_provenance(real_file("c2pa/capture_pixel10pro_computational.jpg"))
    assert provenance.verdict == "not-ai" and provenance.c2pa.validity == "invalid"
    clash = judged(provenance, 0.95)
    assert (clash.verdict, clash.decided_by) == ("uncertain", "model")
    assert judged(provenance, 0.2).decided_by == "model"


def test_without_metadata_the_model_decides():
    for p_ai, verdict in ((0.9, "ai"), (0.5, "uncertain"), (0.2, "real")):
        decision = judged(None, p_ai)
        assert (decision.verdict, decision.decided_by, decision.model_verdict, decision.conflict) == (verdict, "model", verdict, None)


@pytest.fixture
def client(service_settings):
    with TestClient(create_app(service_settings)) as test_client:
        yield test_client


def test_api_results_carry_decided_by_sha256_thresholds_and_c2pa_status(client, image_server):
    photo, _ = image_server.files["photo.jpg"]
    sd, _ = image_server.files["sd.png"]
    items = [{"id": "photo", "url": image_server.url("photo.jpg", "t=policy")}, {"id": "sd", "image_b64": b64(sd)}]
    for attempt in ("computed", "cached"):
        response = client.post("/v1/detect", json={"items": items})
        assert response.status_code == 200, response.text
        photo_result, sd_result = response.json()["results"]
        assert photo_result["sha256"] == hashlib.sha256(photo).hexdigest(), attempt
        assert sd_result["sha256"] == hashlib.sha256(sd).hexdigest(), attempt
        assert photo_result["thresholds"] == client.get("/v1/model").json()["thresholds"]
        assert photo_result["decided_by"] == "model" and photo_result["model_verdict"] == photo_result["verdict"]
        assert sd_result["decided_by"] == "provenance" and sd_result["verdict"] == "ai"
        assert sd_result["cached"] is (attempt == "cached") and photo_result["cached"] is (attempt == "cached")


def test_api_reports_c2pa_validity_and_signer(client):
    data = real_file("c2pa/ai_bing_image_creator_no_dst.jpg")
    result = client.post("/v1/detect", json={"items": [{"image_b64": b64(data)}]}).json()["results"][0]
    assert result["provenance"]["c2pa"] == {
        "validity": "invalid", "signer": "Microsoft Corporation", "issuer": None,
        "codes": ["signingCredential.untrusted", "signingCredential.invalid"],
    }
    assert (result["verdict"], result["decided_by"]) == ("ai", "provenance")


def test_display_names_come_from_the_manifest_when_given():
    from genspot.backend.verdict import display_names, named

    names = display_names({"dalle_mini": " DALL·E Mini (2022) ", "blank": " ", "long": "x" * 200})
    assert names == {"dalle_mini": "DALL·E Mini (2022)", "long": "x" * 80}
    assert display_names({}) == {}
    assert named(SOURCES, names) == [Source("midjourney_v3_2022", 0.8, None), Source("dalle_mini", 0.2, "DALL·E Mini (2022)")]
