"""``genspot scan``: judge local files, folders or URLs with the service's pipeline, no server.

The same runtime as ``genspot serve`` (fetcher, provenance, batcher, cache), so a scan
answers exactly what the API would. Exit code 0 when every item was judged, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import msgspec
from tqdm import tqdm

from genspot.backend.schemas import MAX_ITEMS, DetectResponse, ItemResult
from genspot.backend.service import ItemInput
from genspot.backend.settings import Settings, SettingsError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".avif", ".heic"}
URL_PREFIXES = ("http://", "https://", "data:")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genspot scan", description="Judge images (files, folders or URLs) locally, without a server.")
    parser.add_argument("targets", nargs="+", metavar="FILE_OR_URL", help="image files, folders (searched recursively) or http(s) URLs")
    parser.add_argument("--caption", help="caption / alt-text read with every image (default: none)")
    parser.add_argument("--json", action="store_true", help='print {"results": [...]} exactly as the API answers')
    parser.add_argument("--bundle", help="bundle directory (default bundles/default; GENSPOT_BUNDLE)")
    parser.add_argument("--device", help="torch device (default cpu)")
    parser.add_argument("--redis-url", help="use (and fill) a shared Redis cache")
    parser.add_argument("--allow-loopback", action="store_true", default=None, help="let URLs point at 127.0.0.1")
    return parser


def _expand(targets: list[str]) -> list[str]:
    """Files and URLs as given; folders replaced by the image files inside them, sorted."""
    expanded = []
    for target in targets:
        path = Path(target)
        if target.startswith(URL_PREFIXES):
            expanded.append(target)
        elif path.is_dir():
            expanded += sorted(str(p) for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        elif path.is_file():
            expanded.append(target)
        else:
            raise FileNotFoundError(f"no such file, folder or URL: {target}")
    return expanded


def _input(target: str, caption: str | None) -> ItemInput:
    if target.startswith(URL_PREFIXES):
        return ItemInput(id=target, kind="url", url=target, caption=caption)
    return ItemInput(id=target, kind="file", data=Path(target).read_bytes(), caption=caption)


async def scan(targets: list[str], caption: str | None, settings: Settings) -> list[ItemResult]:
    from genspot.backend.runtime import open_runtime

    results: list[ItemResult] = []
    async with open_runtime(settings) as runtime:
        with tqdm(total=len(targets), unit="image", disable=len(targets) <= MAX_ITEMS, file=sys.stderr) as progress:
            for start in range(0, len(targets), MAX_ITEMS):
                chunk = [_input(target, caption) for target in targets[start : start + MAX_ITEMS]]
                results += await runtime.service.detect(chunk)
                progress.update(len(chunk))
    return results


def _line(result: ItemResult) -> str:
    if result.status == "error":
        return f"{'error':<9}  {'':>6}  {result.error.code:<24}  {result.id}: {result.error.message}"
    source = f"{result.source.label} ({result.source.probability:.2f})"
    evidence = f"  [metadata: {result.provenance.verdict}]" if result.provenance and result.provenance.verdict != "unknown" else ""
    return f"{result.verdict:<9}  {result.ai_probability:6.3f}  {source:<24}  {result.id}{evidence}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from genspot.bundle import BundleError

    try:
        targets = _expand(args.targets)
        settings = Settings.from_env(bundle=args.bundle, device=args.device, redis_url=args.redis_url, allow_loopback=args.allow_loopback)
        results = asyncio.run(scan(targets, args.caption, settings))
    except (FileNotFoundError, SettingsError, BundleError) as exc:
        print(f"genspot scan: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(msgspec.json.encode(DetectResponse(results)).decode())
    else:
        print(f"{'verdict':<9}  {'p(ai)':>6}  {'likely source':<24}  image")
        for result in results:
            print(_line(result))
    return 0 if all(result.status == "ok" for result in results) else 1
