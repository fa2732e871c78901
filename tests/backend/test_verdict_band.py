"""The verdict band travels with the detector: chosen with the recipe (its config's ``verdict``
section), written into the bundle's manifest by export, used by the service unless settings
override it."""

from __future__ import annotations

import json
import shutil

import pytest
from litestar.testing import TestClient

from genspot.backend.api.app import create_app
from genspot.backend.verdict import DEFAULT_BAND, verdict_thresholds
from genspot.formats import VerdictBand
from genspot.training.config import ConfigError, VerdictConfig


def test_settings_override_the_bundle_band_field_by_field():
    band = VerdictBand(threshold=0.6, uncertain_band=0.25)
    assert (verdict_thresholds(None, None, band).threshold, verdict_thresholds(None, None, band).uncertain_band) == (0.6, 0.25)
    mixed = verdict_thresholds(0.4, None, band)
    assert (mixed.threshold, mixed.uncertain_band) == (0.4, 0.25)
    old = verdict_thresholds(None, None, None)
    assert (old.threshold, old.uncertain_band) == (DEFAULT_BAND.threshold, DEFAULT_BAND.uncertain_band) == (0.5, 0.15)


def test_the_service_uses_the_band_its_bundle_was_chosen_with(tiny_bundle, tmp_path, service_settings):
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    assert manifest["verdict_band"] == {"threshold": 0.5, "uncertain_band": 0.15}, "the tiny config's default band, exported"
    chosen = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, chosen)
    manifest["verdict_band"] = {"threshold": 0.62, "uncertain_band": 0.2}
    (chosen / "manifest.json").write_text(json.dumps(manifest))
    with TestClient(create_app(service_settings.replace(bundle=str(chosen)))) as client:
        assert client.get("/v1/model").json()["thresholds"] == {"threshold": 0.62, "uncertain_band": 0.2}
    with TestClient(create_app(service_settings.replace(bundle=str(chosen), uncertain_band=0.05))) as client:
        assert client.get("/v1/model").json()["thresholds"] == {"threshold": 0.62, "uncertain_band": 0.05}


def test_a_band_outside_zero_one_is_refused():
    with pytest.raises(ConfigError, match="inside"):
        VerdictConfig(threshold=0.9, uncertain_band=0.15)
