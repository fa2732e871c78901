"""How provenance and the model combine (backend/verdict.py's policy), on real provenance reads
of real and built files, and in the API's answers (decided_by, model_verdict, sha256, thresholds)."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from litestar.testing import TestClient
from PIL import Image, PngImagePlugin

from genspot.backend.api.app import create_app
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


def camera_jpeg(make: str | None = "Canon", model: str = "Canon EOS REBEL T3") -> bytes:
    exif = Image.Exif()
    if make is not None:
        exif[0x010F], exif[0x0110] = make, model
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "gray").save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


def xmp_capture_png() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" Iptc4xmpExt:DigitalSourceType='
        '"http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"/></rdf:RDF></x:xmpmeta>'
    ))
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), "gray").save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


def transplanted(manifest_file: str, target_jpeg: bytes) -> bytes:
    """``target_jpeg`` carrying the C2PA manifest (APP11 segments) of a real file, as a forger
    would copy it: the manifest's hash of the image no longer matches."""
    source, at, segments = real_file(manifest_file), 2, []
    while source[at] == 0xFF and source[at + 1] != 0xDA:  # up to the start of scan
        end = at + 2 + int.from_bytes(source[at + 2 : at + 4], "big")
        if source[at + 1] == 0xEB:
            segments.append(source[at:end])
        at = end
    return target_jpeg[:2] + b"".join(segments) + target_jpeg[2:]


def judged(provenance: Provenance | None, p_ai: float):
    return decide(Detection(ai_probability=p_ai, sources=SOURCES, provenance=provenance), THRESHOLDS, LABELS)


@pytest.mark.parametrize("p_ai", [0.05, 0.5, 0.99])
def test_metadata_proving_ai_decides_whatever_the_model_says(p_ai):
    decision = judged(read_provenance(real_file("iptc_xmp/ai_gemini_via_firefly_xmp_dst.png")), p_ai)
    assert (decision.verdict, decision.decided_by) == ("ai", "provenance")
    assert "Gemini" in decision.source.label and decision.source.probability == 1.0
    assert (decision.conflict is None) == (decision.model_verdict == "ai")


def test_an_ai_claim_in_an_intact_manifest_decides_ai():
    provenance = read_provenance(real_file("c2pa/ai_firefly_text2image.jpg"))
    assert provenance.c2pa.validity == "untrusted"
    for p_ai in (0.05, 0.99):
        decision = judged(provenance, p_ai)
        assert (decision.verdict, decision.decided_by) == ("ai", "provenance") and "Firefly" in decision.source.label


def test_an_ai_label_in_unsigned_metadata_decides_ai():
    exif = Image.Exif()
    exif[0x9286] = b"Made with OpenAI Labs"  # DALL-E 2's originals, in IFD0
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), "gray").save(buffer, "PNG", exif=exif)
    decision = judged(read_provenance(buffer.getvalue()), 0.05)
    assert (decision.verdict, decision.decided_by, decision.source.label) == ("ai", "provenance", "OpenAI DALL-E 2")
    assert decision.conflict == "the model alone says real (AI probability 5%)"


@pytest.mark.parametrize("p_ai, verdict", [(0.05, "real"), (0.5, "uncertain"), (0.9997, "ai")])
def test_an_ai_claim_in_a_manifest_that_fails_validation_proves_nothing(p_ai, verdict):
    """A Firefly manifest transplanted onto a photo (its hash no longer matches), and Bing Image
    Creator's own manifest (its certificate fails validation): the model decides."""
    for data in (transplanted("c2pa/ai_firefly_text2image.jpg", camera_jpeg(make=None)), real_file("c2pa/ai_bing_image_creator_no_dst.jpg")):
        provenance = read_provenance(data)
        assert provenance.c2pa.validity == "invalid" and provenance.verdict == "unknown"
        assert any(s.detail.startswith("tampered") and s.verdict is None for s in provenance.signals), provenance.signals
        decision = judged(provenance, p_ai)
        assert (decision.verdict, decision.decided_by, decision.conflict) == (verdict, "model", None)


def test_a_trusted_signer_decides_real_even_against_the_model():
    signal = Signal("c2pa", "c2pa.created with digitalSourceType digitalCapture", "not-ai", "Camera")
    provenance = Provenance("not-ai", "Camera", [signal], C2paStatus(validity="valid", signer="Leica"))
    decision = judged(provenance, 0.99)
    assert (decision.verdict, decision.decided_by, decision.source) == ("real", "provenance", Source("real", 1.0))
    assert decision.conflict.startswith("the model alone says ai")


@pytest.mark.parametrize("name", ["c2pa/edit_photoshop_no_ai.jpg", "c2pa/test_digitalcapture_cawg.jpg"])
def test_an_untrusted_signer_confirms_real_but_never_softens_a_model_ai(name):
    provenance = read_provenance(real_file(name))
    assert provenance.c2pa.validity == "untrusted" and provenance.verdict == "not-ai"
    calm = judged(provenance, 0.4)
    assert (calm.verdict, calm.decided_by, calm.model_verdict, calm.conflict) == ("real", "provenance", "uncertain", None)
    clash = judged(provenance, 0.9997)
    assert (clash.verdict, clash.decided_by, clash.model_verdict) == ("ai", "model", "ai")
    assert "(no trust list was checked)" in clash.conflict and "does not move the model's verdict" in clash.conflict


def test_a_capture_in_a_manifest_that_fails_validation_proves_nothing():
    """The Pixel's own manifest (its data hash fails) and a capture manifest copied onto another
    picture: neither softens a model ai; the Pixel's camera EXIF is shown like any camera EXIF."""
    pixel = read_provenance(real_file("c2pa/capture_pixel10pro_computational.jpg"))
    copied = read_provenance(transplanted("c2pa/test_digitalcapture_cawg.jpg", camera_jpeg(make=None)))
    assert pixel.c2pa.validity == copied.c2pa.validity == "invalid"
    assert copied.verdict == "unknown" and pixel.verdict == "not-ai"
    assert [s.kind for s in pixel.signals if s.verdict == "not-ai"] == ["exif"]
    for provenance in (pixel, copied):
        clash = judged(provenance, 0.9997)
        assert (clash.verdict, clash.decided_by, clash.model_verdict) == ("ai", "model", "ai")
        assert judged(provenance, 0.2).verdict == "real" and judged(provenance, 0.2).decided_by == "model"


@pytest.mark.parametrize("kind", ["exif", "iptc_xmp"])
def test_unsigned_capture_claims_are_shown_and_never_move_the_verdict(kind):
    """Two EXIF tags (Make=Canon, Model=Canon EOS 5D Mark IV) or an XMP digitalCapture on an AI picture."""
    data = camera_jpeg(model="Canon EOS 5D Mark IV") if kind == "exif" else xmp_capture_png()
    provenance = read_provenance(data)
    assert provenance.verdict == "not-ai" and [s.kind for s in provenance.signals] == [kind]
    clash = judged(provenance, 0.9997)
    assert (clash.verdict, clash.decided_by, clash.model_verdict) == ("ai", "model", "ai")
    assert ("Canon EOS 5D Mark IV" if kind == "exif" else "digitalCapture") in clash.conflict
    assert "unverified" in clash.conflict and "does not move the model's verdict" in clash.conflict
    for p_ai, verdict in ((0.1, "real"), (0.5, "uncertain")):
        decision = judged(provenance, p_ai)
        assert (decision.verdict, decision.decided_by, decision.conflict) == (verdict, "model", None)


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
        "signer_organization": "Microsoft Corporation", "certificate_issuer": "Microsoft Corporation",
        "validation_passed": False, "trust_list_checked": False,
    }
    assert (result["verdict"], result["decided_by"]) == (result["model_verdict"], "model")  # it fails validation
    [claim] = [signal for signal in result["provenance"]["signals"] if signal["statement"]]
    assert claim["detail"].startswith("tampered") and claim["verdict"] is None
    assert (claim["statement"]["description"], claim["statement"]["software_agent"]) == ("AI Generated Image", "Image Creator from Designer")


def test_display_names_come_from_the_manifest_when_given():
    from genspot.backend.verdict import display_names, named

    names = display_names({"dalle_mini": " DALL·E Mini (2022) ", "blank": " ", "long": "x" * 200})
    assert names == {"dalle_mini": "DALL·E Mini (2022)", "long": "x" * 80}
    assert display_names({}) == {}
    assert named(SOURCES, names) == [Source("midjourney_v3_2022", 0.8, None), Source("dalle_mini", 0.2, "DALL·E Mini (2022)")]
