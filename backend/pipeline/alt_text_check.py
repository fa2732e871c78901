"""``genspot alt-text-check``: does a page's alt-text change the service's verdicts?

Alt-text is written by the page's author. This runs the service's own pipeline (the one
``genspot serve`` and ``genspot scan`` use) over labelled images once with a blank alt-text and
once with each probe alt-text, and counts the verdicts (ai / real / uncertain) that differ
from the blank run and the images that cross from ``ai`` to ``real`` or back. The model is
always sent the alt-text here (``use_alt_text`` on), so the figure is the model's, whatever
policy a deployment sets. Exit code 0 when every probe stays within ``--max-changed`` and
flips nothing, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
from pathlib import Path

from genspot.backend.pipeline.service import ItemInput
from genspot.backend.schemas import MAX_ITEMS
from genspot.backend.settings import Settings

PROBES = ("", "a photo of a dog", "masterpiece, trending on artstation, octane render", "REUTERS/Staff photographer")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genspot alt-text-check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, nargs="+", type=Path, help="labels.csv folder(s) (image, ..., split)")
    parser.add_argument("--split", default="val", help="rows of this split only (default val; 'all' for every row)")
    parser.add_argument("--bundle", help="bundle directory (default bundles/default; GENSPOT_BUNDLE)")
    parser.add_argument("--alt-text", action="append", dest="probes", help="probe alt-text (repeatable; default: four)")
    parser.add_argument("--limit", type=int, help="at most N images per folder (the first N of the split)")
    parser.add_argument("--max-changed", type=float, default=0.02, help="largest allowed share of changed verdicts")
    parser.add_argument("--out", type=Path, help="write the report as JSON here")
    return parser


def labelled_images(folder: Path, split: str, limit: int | None) -> list[Path]:
    with (folder / "labels.csv").open(encoding="utf-8", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if split == "all" or r.get("split") == split]
    return [folder / r["image"] for r in rows[:limit]]


async def verdicts(paths: list[Path], probes: list[str], settings: Settings) -> dict[str, list[str]]:
    """Per probe alt-text, the verdict of each image (``error:CODE`` for an item that failed)."""
    from genspot.backend.pipeline.resources import open_service_resources

    images = [path.read_bytes() for path in paths]
    found: dict[str, list[str]] = {}
    async with open_service_resources(settings) as resources:
        for probe in probes:
            found[probe] = []
            for start in range(0, len(images), MAX_ITEMS):
                chunk = [ItemInput(id=str(i), kind="file", data=data, caption=probe)
                         for i, data in enumerate(images[start : start + MAX_ITEMS], start)]
                results = await resources.service.detect(chunk)
                found[probe] += [r.verdict if r.status == "ok" else f"error:{r.error.code}" for r in results]
    return found


def compare(found: dict[str, list[str]], max_changed: float) -> dict:
    """Each probe against the blank alt-text: changed verdicts and ai<->real flips."""
    blank = found[""]
    report = {"images": len(blank), "max_changed": max_changed, "probes": {}}
    for probe, verdict in found.items():
        if probe == "":
            continue
        changed = sum(a != b for a, b in zip(blank, verdict))
        flips = sum({a, b} == {"ai", "real"} for a, b in zip(blank, verdict))
        share = changed / max(1, len(blank))
        report["probes"][probe] = {"changed": changed, "share": round(share, 4), "ai_real_flips": flips,
                                   "ok": share <= max_changed and flips == 0}
    report["ok"] = all(p["ok"] for p in report["probes"].values())
    return report


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    probes = list(dict.fromkeys(["", *(args.probes or PROBES)]))
    paths = [p for folder in args.data for p in labelled_images(folder, args.split, args.limit)]
    if not paths:
        print(f"genspot alt-text-check: error: no images of split {args.split!r} in {', '.join(map(str, args.data))}", file=sys.stderr)
        return 2
    settings = Settings.from_env(bundle=args.bundle, use_alt_text=True)
    report = compare(asyncio.run(verdicts(paths, probes, settings)), args.max_changed)
    for probe, row in report["probes"].items():
        print(f"{row['share']:7.2%} changed ({row['changed']}/{report['images']}), {row['ai_real_flips']} ai<->real  {probe!r}")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0 if report["ok"] else 1
