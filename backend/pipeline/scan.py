"""``genspot scan``: judge local files, folders or URLs with the service's pipeline, no server.

The same service resources as ``genspot serve`` (fetcher, provenance, batcher, cache), so a scan
answers exactly what the API would. Items run ``--concurrency`` at a time (the micro-batcher
groups them into model calls); ``--urls FILE`` reads one target per line (``-``: stdin) and
``--jsonl`` prints each result as one JSON line the moment it is ready, in the order they
finish, for queues too long to wait for. A progress bar and a summary of counts go to
stderr. Exit code 0 when every item was judged, 1 otherwise, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import msgspec
from tqdm import tqdm

from genspot.backend.errors import UnreadableFile
from genspot.backend.pipeline.service import ItemInput
from genspot.backend.schemas import MAX_ITEMS, DetectResponse, ErrorInfo, ItemResult
from genspot.backend.settings import Settings, SettingsError
from genspot.imaging import IMAGE_SUFFIXES

URL_PREFIXES = ("http://", "https://", "data:")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genspot scan", description="Judge images (files, folders or URLs) locally, without a server.")
    parser.add_argument("targets", nargs="*", metavar="FILE_OR_URL", help="image files, folders (searched recursively) or http(s) URLs")
    parser.add_argument("--urls", metavar="FILE", help="also read targets from FILE, one per line ('#' comments; '-' for stdin)")
    parser.add_argument("--caption", help="caption / alt-text read with every image (default: none)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help='print {"results": [...]} exactly as the API answers, at the end')
    output.add_argument("--jsonl", action="store_true", help="print each result as one JSON line as soon as it is ready")
    parser.add_argument("--concurrency", type=int, default=16, help="items in flight at once (default 16)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.add_argument("--bundle", help="bundle directory (default bundles/default; GENSPOT_BUNDLE)")
    parser.add_argument("--device", help="torch device (default cpu)")
    parser.add_argument("--redis-url", help="use (and fill) a shared Redis cache")
    parser.add_argument("--allow-loopback", action="store_true", default=None, help="let URLs point at 127.0.0.1")
    return parser


def _read_url_file(name: str) -> list[str]:
    """Targets listed one per line; blank lines and ``#`` comments are skipped."""
    lines = sys.stdin if name == "-" else Path(name).open(encoding="utf-8")
    with contextlib.nullcontext(lines) if name == "-" else lines:
        return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


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


async def scan(
    targets: list[str],
    caption: str | None,
    settings: Settings,
    on_result: Callable[[ItemResult], None] | None = None,
    concurrency: int = 16,
    progress: bool | None = None,
) -> list[ItemResult]:
    """Every target's result, in the targets' order; ``on_result`` sees each one as it finishes.
    ``progress``: None shows the bar for more than one batch of targets, True always, False never."""
    from genspot.backend.pipeline.resources import open_service_resources

    results: list[ItemResult | None] = [None] * len(targets)
    show = len(targets) > MAX_ITEMS if progress is None else progress
    async with open_service_resources(settings) as resources:
        slots = asyncio.Semaphore(max(1, concurrency))

        async def judge(index: int, target: str) -> None:
            async with slots:
                try:
                    item = _input(target, caption)
                except OSError as exc:  # a file that vanished or cannot be read costs its own line
                    results[index] = ItemResult(id=target, status="error", model_version=resources.service.bundle.version,
                                                error=ErrorInfo(UnreadableFile.code, str(exc)))
                else:
                    results[index] = (await resources.service.detect([item]))[0]
            if on_result is not None:
                on_result(results[index])
            bar.update(1)

        with tqdm(total=len(targets), unit="image", disable=not show, file=sys.stderr) as bar:
            await asyncio.gather(*(judge(index, target) for index, target in enumerate(targets)))
    return [result for result in results if result is not None]


def summary(results: list[ItemResult]) -> str:
    """One line of counts: verdicts, errors by code, and how many provenance decided."""
    verdicts = Counter(result.verdict for result in results if result.status == "ok")
    errors = Counter(result.error.code for result in results if result.status == "error")
    parts = [f"{verdicts.get(kind, 0)} {kind}" for kind in ("ai", "real", "uncertain")]
    parts.append(f"{sum(errors.values())} error" + (f" ({', '.join(f'{code} {n}' for code, n in errors.most_common())})" if errors else ""))
    by_provenance = sum(result.decided_by == "provenance" for result in results)
    return f"{len(results)} image(s): {', '.join(parts)}; decided by provenance: {by_provenance}"


def _line(result: ItemResult) -> str:
    if result.status == "error":
        return f"{'error':<9}  {'':>6}  {result.error.code:<24}  {result.id}: {result.error.message}"
    source = f"{result.source.label} ({result.source.probability:.2f})"
    evidence = f"  [metadata: {result.provenance.verdict}]" if result.decided_by == "provenance" else ""
    if result.conflict:
        evidence += f"  [conflict: {result.conflict}]"
    return f"{result.verdict:<9}  {result.ai_probability:6.3f}  {source:<24}  {result.id}{evidence}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from genspot.bundle import BundleError

    encode = msgspec.json.Encoder().encode

    def stream(result: ItemResult) -> None:
        sys.stdout.write(encode(result).decode() + "\n")
        sys.stdout.flush()

    try:
        # listed targets are taken as they are: a missing file there costs its own error line
        targets = _expand(args.targets) + (_read_url_file(args.urls) if args.urls else [])
        if not targets:
            raise FileNotFoundError("nothing to scan: give files, folders or URLs, or --urls FILE")
        settings = Settings.from_env(bundle=args.bundle, device=args.device, redis_url=args.redis_url, allow_loopback=args.allow_loopback)
        progress = False if args.no_progress else (True if args.jsonl or args.urls else None)
        results = asyncio.run(
            scan(targets, args.caption, settings, stream if args.jsonl else None, args.concurrency, progress)
        )
    except (FileNotFoundError, SettingsError, BundleError) as exc:
        print(f"genspot scan: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(msgspec.json.encode(DetectResponse(results)).decode())
    elif not args.jsonl:
        print(f"{'verdict':<9}  {'p(ai)':>6}  {'likely source':<24}  image")
        for result in results:
            print(_line(result))
    print(f"genspot scan: {summary(results)}", file=sys.stderr)
    return 0 if all(result.status == "ok" for result in results) else 1
