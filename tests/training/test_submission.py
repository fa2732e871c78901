"""`genspot predict`: train on tiny CT2-schema parquet, predict the test split, write a submission;
per-image predictions for any folder; clear errors for what cannot be a submission."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest

from genspot.cli import main as genspot
from genspot.training.data.data import CT2_LABEL_B
from tests.fixtures.ct2 import write_long, write_test_shards, write_train_wide

TINY = ["--config", "tiny", "--epochs", "1", "--quiet"]


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def ct2(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ct2-schemas")
    write_train_wide(root / "Defactify4_Train" / "data" / "train-00000-of-00001.parquet", n_rows=6, seed=1)
    # the official validation set as a separate --val-data; its hub file name says "train"
    write_long(root / "Defactify4_Validation" / "data" / "train-00000-of-00001.parquet", n_captions=2, seed=2, prefix="val")
    write_long(root / "long" / "data.parquet", n_captions=6, seed=3)  # no split: held out by caption
    write_test_shards(root / "Defactify4_Test" / "data", (4, 3), seed=4)
    return {name: root / name for name in ("Defactify4_Train", "Defactify4_Validation", "long", "Defactify4_Test")}


@pytest.fixture(scope="module")
def wide_run(ct2, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wide-run")
    assert genspot(["train", "--data", str(ct2["Defactify4_Train"]), "--val-data", str(ct2["Defactify4_Validation"]),
                    "--out", str(out), *TINY]) == 0
    return out / "model.pt"


def check_submission(path: Path, n_rows: int, per_image: list[dict]) -> list[dict]:
    """``per_image``: the same model's predictions in row order (p_ai, source) from --format csv/jsonl."""
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "index,Label_A,Label_B"
    rows = read_csv(path)
    assert len(rows) == n_rows == len(per_image) and [int(r["index"]) for r in rows] == list(range(n_rows))
    for row, image in zip(rows, per_image):
        ai = float(image["p_ai"]) >= 0.5  # task A at the 0.5 threshold
        assert int(row["Label_A"]) == int(ai)
        # the dataset's id of the predicted generator (0 real), not the model's own class order
        assert int(row["Label_B"]) == (CT2_LABEL_B.index(image["source"]) if ai else 0)
    return rows


def test_train_wide_with_val_data_then_submission_for_the_test_split(ct2, wide_run, tmp_path):
    submission = tmp_path / "submission.csv"
    assert genspot(["predict", "--checkpoint", str(wide_run), "--data", str(ct2["Defactify4_Test"]), "--out", str(submission), "--quiet"]) == 0
    # the same model's probabilities, per image, in row order (shard 0 rows 0-3, then shard 1)
    per_image = tmp_path / "p.csv"
    assert genspot(["predict", "--checkpoint", str(wide_run), "--data", str(ct2["Defactify4_Test"]), "--out", str(per_image),
                    "--format", "csv", "--uncertain-band", "0", "--quiet"]) == 0
    records = read_csv(per_image)
    assert records[4]["image"] == "train-00001-of-00002.parquet#0"
    check_submission(submission, 7, records)
    headerless = tmp_path / "plain.csv"
    assert genspot(["predict", "--checkpoint", str(wide_run), "--data", str(ct2["Defactify4_Test"]), "--out", str(headerless),
                    "--no-header", "--quiet"]) == 0
    assert headerless.read_text().splitlines() == submission.read_text().splitlines()[1:]


def test_val_data_is_all_val_and_data_is_all_train(ct2, wide_run):
    from genspot.training.model.checkpoint import read_checkpoint

    payload = read_checkpoint(wide_run)
    assert payload["train_args"]["val_data"] == str(ct2["Defactify4_Validation"])
    assert sorted(payload["labels_b"]) == sorted(CT2_LABEL_B[1:])
    log = (wide_run.parent / "train.log").read_text()
    assert "36 train / 12 val samples" in log  # 6 wide rows x 6 images; 2 validation captions x 6 rows


def test_train_logs_the_time_of_each_part(wide_run):
    """What docs/ct2.md's wall-time estimate reads: frozen-feature seconds and seconds a step."""
    log = (wide_run.parent / "train.log").read_text()
    assert re.search(r"frozen backbones' features of 36 train \+ 12 val samples: \d+\.\d s", log)
    # tiny config: batch 8, the last partial batch dropped
    assert re.search(r"epoch 1: .*; training \d+\.\d s \(4 steps of batch 8, \d+\.\d\d s a step\), validation \d+\.\d s", log)
    history = json.loads((wide_run.parent / "metrics.json").read_text())["history"]
    assert history[0]["train_seconds"] > 0 and history[0]["val_seconds"] > 0


def test_train_long_then_submission(ct2, tmp_path):
    run = tmp_path / "run"
    assert genspot(["train", "--data", str(ct2["long"]), "--out", str(run), "--val-fraction", "0.34", *TINY]) == 0
    log = (run / "train.log").read_text()
    assert "24 train / 12 val samples" in log  # two of six captions, whole, held out
    submission = tmp_path / "submission.csv"
    assert genspot(["predict", "--checkpoint", str(run / "model.pt"), "--data", str(ct2["Defactify4_Test"]),
                    "--out", str(submission), "--quiet"]) == 0
    per_image = tmp_path / "p.jsonl"
    assert genspot(["predict", "--checkpoint", str(run / "model.pt"), "--data", str(ct2["Defactify4_Test"]),
                    "--out", str(per_image), "--quiet"]) == 0
    records = [json.loads(line) for line in per_image.read_text().splitlines()]
    check_submission(submission, 7, records)


def test_any_folder_predictions_csv_and_jsonl(tiny_checkpoint, synthetic_dataset, tmp_path):
    images = tmp_path / "web"
    for path in sorted((synthetic_dataset / "images").glob("*_0[0-2].png")):
        (images / "page").mkdir(parents=True, exist_ok=True)
        shutil.copy(path, images / "page" / path.name)
    out = tmp_path / "out.jsonl"
    assert genspot(["predict", "--checkpoint", str(tiny_checkpoint), "--data", str(images), "--out", str(out),
                    "--uncertain-band", "0.1", "--quiet"]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 9 and list(records[0]) == ["image", "p_ai", "verdict", "source", "p_source"]
    assert records[0]["image"] == "page/blocky_gan_00.png"
    for r in records:
        expected = "ai" if r["p_ai"] >= 0.6 else "real" if r["p_ai"] < 0.4 else "uncertain"
        assert r["verdict"] == expected
        if r["verdict"] == "real":
            assert r["source"] == "real" and r["p_source"] == pytest.approx(1 - r["p_ai"], abs=2e-6)
        else:
            assert r["source"] in ("blocky_gan", "stripe_diffusion") and 0.5 <= r["p_source"] <= 1
    as_csv = tmp_path / "out.csv"  # a folder is never a submission
    assert genspot(["predict", "--checkpoint", str(tiny_checkpoint), "--data", str(images), "--out", str(as_csv),
                    "--uncertain-band", "0.1", "--quiet"]) == 0
    assert [dict(r, p_ai=float(r["p_ai"]), p_source=float(r["p_source"])) for r in read_csv(as_csv)] == records


def test_what_cannot_be_a_submission_is_a_one_line_error(tiny_checkpoint, wide_run, ct2, tmp_path, capsys):
    out = str(tmp_path / "submission.csv")
    # generators the checkpoint knows are not CT2's
    assert genspot(["predict", "--checkpoint", str(tiny_checkpoint), "--data", str(ct2["Defactify4_Test"]), "--out", out, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "no Label_B id for blocky_gan, stripe_diffusion" in err and err.count("\n") == 1
    # wide rows hold six images each
    assert genspot(["predict", "--checkpoint", str(wide_run), "--data", str(ct2["Defactify4_Train"]), "--out", out,
                    "--format", "submission", "--quiet"]) == 2
    assert "holds several images" in capsys.readouterr().err
    # an unreadable image leaves a row without an answer
    broken = tmp_path / "broken"
    shutil.copytree(ct2["Defactify4_Test"], broken)
    import pyarrow.parquet as pq

    shard = broken / "data" / "train-00001-of-00002.parquet"
    table = pq.read_table(shard).to_pylist()
    table[1]["image"] = {"bytes": b"not a png", "path": None}
    import pyarrow as pa

    pq.write_table(pa.Table.from_pylist(table), shard)
    assert genspot(["predict", "--checkpoint", str(wide_run), "--data", str(broken), "--out", out, "--quiet"]) == 2
    assert "1 of 7 rows have no readable image (first: row 5)" in capsys.readouterr().err


def test_pseudo_label_rounds_as_the_readme_runs_them_on_ct2(ct2, wide_run, tmp_path):
    """docs/ct2.md's CT2 rounds: test images pseudo-labelled, the official validation set (files named
    train-*.parquet) both --val-data of every retraining and, all of it, the held-out check."""
    out = tmp_path / "pseudo"
    validation = str(ct2["Defactify4_Validation"])
    assert genspot(["pseudo-label", "--checkpoint", str(wide_run), "--unlabelled", str(ct2["Defactify4_Test"]), "--out", str(out),
                    "--rounds", "1", "--data", str(ct2["Defactify4_Train"]), "--config", "tiny",
                    "--train-args", f"--val-data {validation} --epochs 1", "--eval-data", validation,
                    "--threshold", "0.5", "--quiet"]) == 0
    report = json.loads((out / "rounds.json").read_text())
    assert report["eval_split"] is None and [r["round"] for r in report["rounds"]] == [0, 1]
    for number in (0, 1):
        assert json.loads((out / f"round{number}" / "eval" / "metrics.json").read_text())["n_samples"] == 12  # all of it
    assert json.loads((out / "round1" / "summary.json").read_text())["n_kept"] == 7  # every test row: confidence >= 0.5
    assert "43 train / 12 val samples" in (out / "round1" / "run" / "train.log").read_text()  # 36 + 7 / the validation set
