"""``genspot feedback export``: the wrong-verdict reports as per-image label candidates.

Reports are claims, stored ``unverified`` (see backend/api/feedback.py): the export is material
for a person to review, or for a pseudo-labelling run that weighs ``reporters`` and the
votes, never a training set as is. Exit code 0, 2 for bad arguments or a missing store.
"""

from __future__ import annotations

import argparse
import csv
import sys

import msgspec

from genspot.backend.api.feedback import label_candidates, read_records
from genspot.backend.settings import Settings, SettingsError

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = [
    "sha256", "label_a", "votes_ai", "votes_real", "reporters", "image_url",
    "generators", "model_versions", "first_reported", "last_reported", "verification",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genspot feedback", description="Work with wrong-verdict reports (POST /v1/feedback).")
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="one label candidate per reported image (or every raw report)")
    export.add_argument("--store", help="the feedback file (default GENSPOT_FEEDBACK_PATH or ~/.local/share/genspot/feedback.jsonl)")
    export.add_argument("--out", default="-", help="output file (default: stdout)")
    export.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    export.add_argument("--min-reporters", type=int, default=1, help="leave out images reported by fewer distinct reporters")
    export.add_argument("--records", action="store_true", help="every stored report as is, instead of one candidate per image")
    return parser


def _rows(args: argparse.Namespace, records) -> list[dict]:
    if args.records:
        return [msgspec.structs.asdict(record) for record in records]
    return [msgspec.structs.asdict(candidate) for candidate in label_candidates(records, args.min_reporters)]


def _write(rows: list[dict], fmt: str, handle) -> None:
    if fmt == "jsonl":
        for row in rows:
            handle.write(msgspec.json.encode(row).decode() + "\n")
        return
    columns = list(rows[0]) if rows else CSV_COLUMNS
    writer = csv.DictWriter(handle, fieldnames=columns)
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _cell(";".join(value) if isinstance(value, list) else value) for key, value in row.items()})


def _cell(value: object) -> object:
    """A text cell a spreadsheet would run as a formula (=, +, -, @, or a tab or CR first), quoted with '."""
    return "'" + value if isinstance(value, str) and value.startswith(_FORMULA_STARTS) else value


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        store = args.store or Settings.from_env().feedback_path
        records, unreadable = read_records(store)
    except (OSError, SettingsError) as exc:
        print(f"genspot feedback: error: {exc}", file=sys.stderr)
        return 2
    rows = _rows(args, records)
    if args.out == "-":
        _write(rows, args.format, sys.stdout)
    else:
        with open(args.out, "w", encoding="utf-8", newline="") as handle:
            _write(rows, args.format, handle)
    skipped = f", {unreadable} unreadable line(s) skipped" if unreadable else ""
    print(f"genspot feedback: {len(records)} report(s), {len(rows)} row(s) written (all unverified claims){skipped}", file=sys.stderr)
    return 0
