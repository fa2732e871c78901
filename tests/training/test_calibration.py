"""Temperature scaling recovers the miscalibration of a synthetic head and lowers its NLL."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genspot.training.loop.calibration import MAX_TEMPERATURE, MIN_TEMPERATURE, binary_nll, fit_temperature
from genspot.training.loop.metrics import expected_calibration_error


def _calibrated_sample(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """True logits and labels drawn from sigmoid(true logit): calibrated by construction."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 2.0, n)
    labels = (rng.random(n) < 1 / (1 + np.exp(-logits))).astype(int)
    return logits, labels


@pytest.mark.parametrize("scale", [4.0, 0.3])
def test_recovers_scale_and_improves_nll(scale):
    logits, labels = _calibrated_sample()
    miscalibrated = logits * scale  # overconfident (4x) or underconfident (0.3x)
    temperature = fit_temperature(miscalibrated, labels)
    assert temperature == pytest.approx(scale, rel=0.15)
    assert binary_nll(miscalibrated, labels, temperature) < binary_nll(miscalibrated, labels) - 0.01
    p_before = 1 / (1 + np.exp(-miscalibrated))
    p_after = 1 / (1 + np.exp(-miscalibrated / temperature))
    assert expected_calibration_error(p_after, labels) < expected_calibration_error(p_before, labels)


def test_accepts_tensors():
    logits, labels = _calibrated_sample(500, seed=1)
    assert fit_temperature(torch.tensor(logits * 3), torch.tensor(labels)) > 1.5


def test_degenerate_inputs_keep_identity_or_clamp():
    assert fit_temperature([], []) == 1.0
    assert fit_temperature([2.0, 3.0], [1, 1]) == 1.0  # one class: nothing to calibrate
    # perfectly separated: NLL falls as T -> 0; T stays within the sane range
    assert MIN_TEMPERATURE <= fit_temperature([-1.0, -2.0, 1.0, 2.0], [0, 0, 1, 1]) < 0.1
    assert fit_temperature([-30.0, 30.0], [1, 0]) == MAX_TEMPERATURE  # all wrong: flatten
    with pytest.raises(ValueError):
        fit_temperature([1.0, 2.0], [1])


def test_fit_calibration_is_one_temperature_over_both_views():
    """With captions and blanked, as the web has both; the inputs are untouched."""
    from genspot.training.loop.calibration import fit_calibration

    logits, labels = _calibrated_sample(2000, seed=1)
    sharp, blurred = logits * 3.0, logits * 0.5
    before = (sharp.copy(), blurred.copy())
    assert fit_calibration(sharp, blurred, labels) == fit_temperature(np.concatenate([sharp, blurred]), np.concatenate([labels, labels]))
    assert all(np.array_equal(a, b) for a, b in zip(before, (sharp, blurred)))


def test_validator_fit_calibration_leaves_the_model_as_it_was(tiny_checkpoint, synthetic_dataset):
    from genspot.training.model.checkpoint import load_checkpoint
    from genspot.training.config import load_train_config
    from genspot.training.data.data import load_samples
    from genspot.training.loop.distributed import TrainingProcess
    from genspot.training.loop.loop import Validator

    model, meta = load_checkpoint(tiny_checkpoint)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    validator = Validator(model, load_samples(synthetic_dataset, progress=False), None, load_train_config("tiny"),
                          TrainingProcess(0, 1, torch.device("cpu")), progress=False)
    assert validator.fit_calibration(validator.predictions(False), validator.predictions(True)) > 0
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
