"""Which generator a result names (``generator``): when the file's label decided, the one it
names or none; when the model decided, the source head's top guess only when it reaches the
bundle's ``source_name_min_confidence`` (0.8 when the manifest has none); never for a verdict
other than ``ai``."""

from __future__ import annotations

import pytest
from litestar.testing import TestClient

from genspot.backend.api.app import create_app
from genspot.backend.provenance import Provenance, Signal
from genspot.backend.schemas import Detection, Generator, Source, Thresholds
from genspot.backend.verdict import DEFAULT_SOURCE_NAME_MIN_CONFIDENCE, decide, named_generator

from backend_helpers import b64
from tests.fixtures.bundles import bundle_with
from tests.fixtures.c2pa_files import AI, GOOGLE_LIKE, signed_jpeg

THRESHOLDS = Thresholds(0.5, 0.15)
LABELS = ["midjourney_v3_2022", "dalle_mini"]
SD_PARAMETERS = Provenance("ai", "AUTOMATIC1111", [Signal("png_text", "Stable Diffusion parameters", "ai", "AUTOMATIC1111")])


def named(p_ai: float, top: float, provenance: Provenance | None = None, min_confidence: float = 0.8) -> Generator | None:
    sources = [Source("midjourney_v3_2022", top), Source("dalle_mini", round(1 - top, 6))]
    detection = Detection(ai_probability=p_ai, sources=sources, provenance=provenance)
    return named_generator(decide(detection, THRESHOLDS, LABELS), detection, min_confidence)


def test_the_model_names_a_generator_only_at_the_bundles_confidence():
    assert named(0.95, 0.79) is None, "below the limit: generator unknown"
    assert named(0.95, 0.8) == Generator("midjourney_v3_2022", 0.8, named_by="model")
    assert named(0.95, 0.6, min_confidence=0.5) == Generator("midjourney_v3_2022", 0.6, named_by="model")


@pytest.mark.parametrize("p_ai", [0.05, 0.5])
def test_no_generator_for_real_or_uncertain_verdicts_however_sure_the_source_head(p_ai):
    assert named(p_ai, 0.99, min_confidence=0.0) is None


def test_a_label_that_decides_names_its_own_generator_or_none():
    assert named(0.05, 0.3, SD_PARAMETERS) == Generator("AUTOMATIC1111", 1.0, named_by="provenance")
    unnamed = Provenance("ai", None, [Signal("c2pa", "c2pa.created with digitalSourceType trainedAlgorithmicMedia", "ai")])
    assert named(0.05, 0.3, unnamed) is None, "the model's weak guess is no substitute for the label's silence"
    for p_ai in (0.05, 0.95):
        assert named(p_ai, 0.99, unnamed, min_confidence=0.0) is None, "nor its sure one: next to a label it would read as the label's"
    hostile = Provenance("ai", "\u202eDALL-E\x1b[0m " + "x" * 500, [Signal("png_text", "Software", "ai", "DALL-E")])
    shown = named(0.05, 0.3, hostile)
    assert shown.named_by == "provenance" and shown.label.startswith("DALL-E [0m x") and len(shown.label) == 80
    blank = Provenance("ai", "\u200b\n", [Signal("png_text", "Software", "ai", "\u200b\n")])
    assert named(0.05, 0.99, blank, min_confidence=0.0) is None, "a name of invisible characters names nothing"


def answers(settings, photo: bytes) -> tuple[dict, dict]:
    with TestClient(create_app(settings)) as client:
        result = client.post("/v1/detect", json={"items": [{"image_b64": b64(photo)}]}).json()["results"][0]
        return result, client.get("/v1/model").json()


@pytest.mark.parametrize("min_confidence", [None, 0.0, 1.01])
def test_api_names_the_generator_by_the_manifests_limit(tiny_bundle, service_settings, image_server, tmp_path, min_confidence):
    bundle = bundle_with(tiny_bundle, tmp_path / "bundle", min_confidence)
    photo, _ = image_server.files["photo.jpg"]
    says_ai = service_settings.replace(bundle=str(bundle), threshold=1e-6, uncertain_band=0.0)  # p_ai 2.6e-05: "ai"
    result, model = answers(says_ai, photo)
    limit = DEFAULT_SOURCE_NAME_MIN_CONFIDENCE if min_confidence is None else min_confidence
    assert model["source_name_min_confidence"] == limit
    assert result["verdict"] == "ai" and result["decided_by"] == "model"
    top = result["sources"][0]
    expected = {**top, "named_by": "model"} if top["probability"] >= limit else None
    assert result["generator"] == expected

    says_real, _ = answers(service_settings.replace(bundle=str(bundle), threshold=0.999, uncertain_band=0.0), photo)
    assert says_real["verdict"] == "real" and says_real["generator"] is None


def test_api_names_what_a_content_credentials_label_names_and_nothing_else(tiny_bundle, service_settings, tmp_path):
    """A bundle that lets the model name any guess: next to a label that decided, it names none."""
    settings = service_settings.replace(bundle=str(bundle_with(tiny_bundle, tmp_path / "bundle", 0.0)))
    google, _ = answers(settings, signed_jpeg(GOOGLE_LIKE))
    assert (google["verdict"], google["decided_by"]) == ("ai", "provenance")
    generator = google["generator"]
    assert (generator["label"], generator["probability"], generator["named_by"]) == ("Google Generative AI", 1.0, "provenance")

    generic, _ = answers(settings, signed_jpeg([{"action": "c2pa.created", "digitalSourceType": AI, "description": "Made with AI"}]))
    assert (generic["verdict"], generic["decided_by"]) == ("ai", "provenance")
    assert generic["sources"] and generic["generator"] is None, "the model's guesses stay in sources, never named as the label's"
