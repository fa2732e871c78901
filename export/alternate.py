"""Two bundles timed call for call in one process: a speed-up that holds under the same conditions.

Rows timed one after the other drift with the machine (another job, the clock, the cache), and on
a shared 2-core machine that drift can exceed the gain being measured. Here every round makes one
call of each bundle, in alternating order, on the same real pictures (each bundle preprocesses
them at its own input size) with distinct alt-texts, so no text cache helps either; each round
gives one ratio, and the spread of those ratios is the interval of the result.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from genspot.bundle import Bundle, load_bundle
from genspot.export.bench import captions_for, settle
from genspot.export.parity import picture_batches

MIN_ROUNDS = 20


@dataclass(frozen=True)
class Duel:
    """Per-round wall seconds of one call of each bundle at ``batch`` pictures."""

    labels: tuple[str, str]
    batch: int
    seconds: tuple[list[float], list[float]]

    def images_per_s(self, which: int) -> float:
        return self.batch / statistics.median(self.seconds[which])

    def ratios(self) -> list[float]:
        """Per round: images/s of the first bundle over the second's."""
        return sorted(old / new for new, old in zip(*self.seconds))

    def ratio_interval(self) -> tuple[float, float]:
        """The 5th and 95th percentiles of the per-round ratios."""
        ratios = self.ratios()
        return ratios[round(0.05 * (len(ratios) - 1))], ratios[round(0.95 * (len(ratios) - 1))]


def _inputs(bundle: Bundle, pictures: Path, batch: int):
    images, _ = picture_batches(pictures, bundle.preprocess, limit=batch, batch_size=batch)[0]
    if len(images) < batch:
        raise ValueError(f"{pictures} holds {len(images)} pictures; batch {batch} needs as many")
    return images, captions_for(batch, distinct=True)


def duel(first: Path, second: Path, pictures: Path, batch: int = 8, seconds: float = 30.0, rounds: int = MIN_ROUNDS) -> Duel:
    """Warm both bundles up, then at least ``rounds`` rounds and ``seconds`` of alternating calls."""
    bundles = [load_bundle(path, text_cache=False) for path in (first, second)]
    calls = []
    for bundle in bundles:
        images, captions = _inputs(bundle, pictures, batch)
        calls.append(lambda bundle=bundle, images=images, captions=captions: bundle.predict(images, captions))
    for call in calls:
        settle(call)
    times: tuple[list[float], list[float]] = ([], [])
    deadline = time.perf_counter() + seconds
    while len(times[0]) < rounds or time.perf_counter() < deadline:
        order = (0, 1) if len(times[0]) % 2 == 0 else (1, 0)
        for which in order:
            started = time.perf_counter()
            calls[which]()
            times[which].append(time.perf_counter() - started)
    labels = tuple(f"{path.name} ({bundle.version})" for path, bundle in zip((first, second), bundles))
    return Duel(labels, batch, times)


def format_duel(result: Duel) -> str:
    low, high = result.ratio_interval()
    lines = [f"alternating calls, batch {result.batch}, {len(result.seconds[0])} rounds, real pictures, distinct alt-texts"]
    for which, label in enumerate(result.labels):
        median_ms = statistics.median(result.seconds[which]) * 1e3
        lines.append(f"  {label}: {result.images_per_s(which):.2f} images/s (median call {median_ms:.0f} ms)")
    lines.append(
        f"  {result.labels[0]} over {result.labels[1]}: {statistics.median(result.ratios()):.2f}x "
        f"(per-round ratios, 5th-95th percentile {low:.2f}-{high:.2f}x)"
    )
    return "\n".join(lines)
