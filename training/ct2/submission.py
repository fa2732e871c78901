"""`genspot predict`: run a checkpoint over images; write a CT2 submission or per-image predictions.

Two kinds of output, chosen by ``--format`` (``auto``: a submission when the data is CT2 rows
with one image each, such as ``Defactify4_Test``, and OUT ends in ``.csv``; otherwise per-image
predictions, JSON Lines when OUT ends in ``.jsonl``):

- ``submission``: the Defactify 4 (CT2) image task's answer, one line per test row in row order:
  ``index,Label_A,Label_B``. ``index`` is the row's position in the data (over its parquet files
  in sorted order, or the dataset's rows), ``Label_A`` 0 real / 1 AI-generated, ``Label_B`` the
  dataset's generator ids (``genspot.training.data.data.CT2_LABEL_B``: 0 real, 1 SD 2.1, 2 SDXL,
  3 SD 3, 4 DALL-E 3, 5 Midjourney), 0 wherever task A says real. The checkpoint must have been
  trained on CT2's generators for the ids to exist. ``--no-header`` drops the header line.
- ``csv`` / ``jsonl``: ``image, p_ai, verdict, source, p_source`` for any folder of images (or
  labels.csv folder, parquet, dataset): ``verdict`` is ``ai``, ``real`` or ``uncertain`` by the
  service's rule (``--threshold`` and ``--uncertain-band``, defaults as in the service),
  ``source`` the most likely generator (``real`` for a real verdict, with ``p_source`` 1 - p_ai).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np

from genspot.training.data.data import CT2_LABEL_B, REAL, DataError, Sample, load_samples
from genspot.training.evaluation.model_cli import add_model_arguments, head_b_confidence, load_model, probability, run_command, run_model, select_split, write_csv
from genspot.training.model.predict import Predictions

SUBMISSION_COLUMNS = ("index", "Label_A", "Label_B")
PREDICTION_COLUMNS = ("image", "p_ai", "verdict", "source", "p_source")
FORMATS = ("auto", "submission", "csv", "jsonl")
DEFAULT_UNCERTAIN_BAND = 0.15  # the service's GENSPOT_UNCERTAIN_BAND default


def ct2_label_b_ids(labels_b: list[str]) -> dict[str, int]:
    """The CT2 Label_B id of each of the model's generator names (and of ``real``)."""
    unknown = [name for name in labels_b if name not in CT2_LABEL_B]
    if unknown:
        raise DataError(
            f"the checkpoint's generators ({', '.join(labels_b)}) are not all CT2's ({', '.join(CT2_LABEL_B[1:])}): "
            f"no Label_B id for {', '.join(unknown)}; train on CT2 data for a submission, or use --format csv"
        )
    return {name: CT2_LABEL_B.index(name) for name in (REAL, *labels_b)}


def expected_rows(spec: str) -> int | None:
    """Rows in the local parquet file(s) of ``spec`` (None for anything else)."""
    path = Path(spec)
    files = [path] if path.is_file() and path.suffix == ".parquet" else sorted(path.rglob("*.parquet")) if path.is_dir() else []
    if not files:
        return None
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(file).metadata.num_rows for file in files)


def check_rows(samples: list[Sample], expected: int | None) -> None:
    """A submission needs exactly one readable image for every row of the data."""
    rows = [s.row for s in samples]
    if any(row is None for row in rows):
        raise DataError("a submission needs CT2 rows (parquet or dataset); this data has none: use --format csv")
    repeated = [row for row, n in Counter(rows).items() if n > 1]
    if repeated:
        raise DataError(f"row {repeated[0]} holds several images (wide training rows): a submission needs the test "
                        "split's one image per row; use --format csv")
    if expected is not None and len(rows) != expected:
        missing = sorted(set(range(expected)) - set(rows))
        raise DataError(f"{len(missing)} of {expected} rows have no readable image (first: row {missing[0]}); "
                        "a submission needs every row")


def submission_rows(samples: list[Sample], predictions: Predictions, labels_b: list[str], threshold: float) -> list[dict]:
    ids = ct2_label_b_ids(labels_b)
    names = predictions.pred_label_b(labels_b, threshold)
    order = np.argsort([s.row for s in samples], kind="stable")
    return [
        {"index": samples[i].row, "Label_A": int(names[i] != REAL), "Label_B": ids[names[i]]}
        for i in order
    ]


def verdict(p_ai: float, threshold: float, uncertain_band: float) -> str:
    """The service's rule (backend/verdict.py): ``uncertain`` within the band around the threshold."""
    if p_ai >= threshold + uncertain_band:
        return "ai"
    return "real" if p_ai < threshold - uncertain_band else "uncertain"


def prediction_records(samples: list[Sample], predictions: Predictions, labels_b: list[str],
                       threshold: float, uncertain_band: float) -> list[dict]:
    best = predictions.probs_b.argmax(axis=1) if predictions.probs_b.size else np.zeros(len(samples), dtype=int)
    confidence_b = head_b_confidence(predictions)
    records = []
    for sample, p_ai, b, p_b in zip(samples, predictions.p_ai, best, confidence_b):
        said = verdict(float(p_ai), threshold, uncertain_band)
        real = said == "real" or not labels_b
        records.append({
            "image": sample.key,
            "p_ai": round(float(p_ai), 6),
            "verdict": said,
            "source": REAL if real else labels_b[b],
            "p_source": round(float(1.0 - p_ai if real else p_b), 6),
        })
    return records


def choose_format(requested: str, out: Path, samples: list[Sample]) -> str:
    if requested != "auto":
        return requested
    if out.suffix == ".jsonl":
        return "jsonl"
    one_per_row = all(s.row is not None for s in samples) and len({s.row for s in samples}) == len(samples)
    return "submission" if out.suffix == ".csv" and one_per_row else "csv"


def write_jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(record) + "\n" for record in records)


def write_submission(path: Path, rows: list[dict], header: bool) -> None:
    if header:
        write_csv(path, SUBMISSION_COLUMNS, rows)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(",".join(str(row[c]) for c in SUBMISSION_COLUMNS) + "\n" for row in rows), encoding="utf-8")


def predict_command(args: argparse.Namespace) -> str:
    model, meta, device = load_model(args)
    samples = select_split(load_samples(args.data, require_labels=False, progress=not args.quiet), args.split)
    kind = choose_format(args.format, args.out, samples)
    if kind == "submission" and args.split is None:
        check_rows(samples, expected_rows(args.data))
    elif kind == "submission":
        check_rows(samples, None)
    predictions = run_model(model, meta, device, samples, args)
    labels_b = list(model.labels_b)
    if kind == "submission":
        rows = submission_rows(samples, predictions, labels_b, args.threshold)
        write_submission(args.out, rows, header=not args.no_header)
        counts = Counter(row["Label_B"] for row in rows)
        spread = ", ".join(f"{CT2_LABEL_B[i]} ({i}) {counts[i]}" for i in sorted(counts))
        return f"wrote {args.out}: submission of {len(rows)} rows (Label_B: {spread})"
    records = prediction_records(samples, predictions, labels_b, args.threshold, args.uncertain_band)
    if kind == "jsonl":
        write_jsonl(args.out, records)
    else:
        write_csv(args.out, PREDICTION_COLUMNS, records)
    verdicts = Counter(r["verdict"] for r in records)
    return f"wrote {args.out}: {len(records)} images ({', '.join(f'{k} {v}' for k, v in sorted(verdicts.items()))})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genspot predict", description=__doc__.split("\n\n")[0])
    add_model_arguments(parser)
    parser.add_argument("--data", required=True, help="folder of images, labels.csv folder, parquet file/folder, or HF dataset name")
    parser.add_argument("--out", required=True, type=Path, help="output file: submission.csv, predictions.csv or .jsonl")
    parser.add_argument("--format", choices=FORMATS, default="auto", help="default: by the data and OUT's suffix (see above)")
    parser.add_argument("--threshold", type=probability, default=0.5, help="p_ai at or above which an image counts as AI")
    parser.add_argument("--uncertain-band", type=float, default=DEFAULT_UNCERTAIN_BAND,
                        help="csv/jsonl: 'uncertain' within this distance of the threshold (0 for none)")
    parser.add_argument("--no-header", action="store_true", help="submission without its header line")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not 0.0 <= args.uncertain_band < 0.5:
        build_parser().error(f"--uncertain-band must be in [0, 0.5), got {args.uncertain_band}")
    return run_command("genspot predict", lambda: predict_command(args))
