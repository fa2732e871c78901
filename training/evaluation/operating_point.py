"""The verdict band and the generator-naming confidence, chosen from out-of-fold predictions.

Calling a real photograph AI is the worst error the product can make, so the band's upper edge
(``ai`` from there up) is the lowest value at which, out of fold, at most ``max_real_called_ai``
of the real photographs of every source with enough of them score as high; its lower edge
(``real`` below it) the highest value at which at most ``max_ai_called_real`` of the AI pictures
of every such source score as low. Between the two the answer is ``uncertain``: doubt instead of
a wrong verdict. The generator is named only from the least top-source probability at which the
named guesses on AI pictures are right at least ``min_named_accuracy`` of the time.
Everything here is a pure function of predictions, so `genspot cv` and `genspot evaluate` share it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Scores are compared on a grid this fine (p_ai and p_source are rounded to it when reported).
GRID = np.round(np.arange(0.01, 1.0, 0.01), 2)


@dataclass(frozen=True)
class Targets:
    max_real_called_ai: float = 0.03
    max_ai_called_real: float = 0.10
    min_source_images: int = 20  # sources with fewer images of a class do not set the edges
    min_named_accuracy: float = 0.9
    min_named: int = 20  # at least this many named guesses for a naming confidence to count


@dataclass(frozen=True)
class Band:
    ai_from: float
    real_below: float

    @property
    def threshold(self) -> float:
        return round((self.ai_from + self.real_below) / 2, 4)

    @property
    def uncertain_band(self) -> float:
        return round((self.ai_from - self.real_below) / 2, 4)

    @classmethod
    def around(cls, threshold: float, uncertain_band: float) -> "Band":
        """The band as the service states it (``VerdictConfig``, manifest ``verdict_band``)."""
        return cls(ai_from=threshold + uncertain_band, real_below=threshold - uncertain_band)

    def verdicts(self, p_ai: np.ndarray) -> np.ndarray:
        """"ai", "uncertain" or "real" per score."""
        p_ai = np.asarray(p_ai, dtype=np.float64)
        return np.where(p_ai >= self.ai_from, "ai", np.where(p_ai < self.real_below, "real", "uncertain"))


def _groups(sources: np.ndarray, mask: np.ndarray, targets: Targets) -> list[np.ndarray]:
    """Index masks of each source with enough images of one class, plus that class pooled."""
    masks = [mask]
    for source in np.unique(sources[mask]):
        member = mask & (sources == source)
        if member.sum() >= targets.min_source_images:
            masks.append(member)
    return masks


def choose_band(p_ai: np.ndarray, label_a: np.ndarray, sources: np.ndarray, targets: Targets = Targets()) -> Band:
    """The band of the module docstring (falls back to the grid's ends when no value meets a target)."""
    p_ai, label_a, sources = np.asarray(p_ai, dtype=np.float64), np.asarray(label_a), np.asarray(sources)
    real, ai = _groups(sources, label_a == 0, targets), _groups(sources, label_a == 1, targets)
    ai_from = next(
        (t for t in GRID if all((p_ai[m] >= t).mean() <= targets.max_real_called_ai for m in real)), float(GRID[-1])
    )
    real_below = next(
        (t for t in GRID[::-1] if t <= ai_from and all((p_ai[m] < t).mean() <= targets.max_ai_called_real for m in ai)),
        float(GRID[0]),
    )
    return Band(float(ai_from), float(real_below))


def named_guess_candidates(label_a: np.ndarray, p_ai: np.ndarray, band: Band) -> np.ndarray:
    """AI pictures the band calls ``ai``: the only ones on which a generator is ever named."""
    return (np.asarray(label_a) == 1) & (np.asarray(p_ai, dtype=np.float64) >= band.ai_from)


def choose_naming_confidence(
    top_p: np.ndarray, correct: np.ndarray, targets: Targets = Targets(), groups: np.ndarray | None = None
) -> float | None:
    """The least top-source probability from which the named guesses (AI pictures only) are right at
    least ``min_named_accuracy`` of the time, over at least ``min_named`` guesses, in each of
    ``groups`` (e.g. data sets: old generators are easy to name, today's are not); None if none is."""
    top_p, correct = np.asarray(top_p, dtype=np.float64), np.asarray(correct, dtype=bool)
    groups = np.zeros(len(top_p)) if groups is None else np.asarray(groups)
    members = [groups == g for g in np.unique(groups)]
    for t in GRID:
        named = top_p >= t
        if named.sum() >= targets.min_named and all(
            correct[named & m].mean() >= targets.min_named_accuracy for m in members if (named & m).any()
        ):
            return float(t)
    return None


def outcome_table(p_ai: np.ndarray, label_a: np.ndarray, sources: np.ndarray, band: Band) -> list[dict]:
    """Per source and class: images, and the share right / uncertain / wrong at ``band``."""
    verdicts = band.verdicts(p_ai)
    label_a, sources = np.asarray(label_a), np.asarray(sources)
    rows = []
    for source in sorted(set(sources.tolist())):
        for cls, right in ((0, "real"), (1, "ai")):
            mask = (sources == source) & (label_a == cls)
            if not mask.any():
                continue
            wrong = "ai" if right == "real" else "real"
            got = verdicts[mask]
            rows.append({
                "source": source, "class": right, "n": int(mask.sum()),
                "right": float((got == right).mean()), "uncertain": float((got == "uncertain").mean()),
                "wrong": float((got == wrong).mean()),
            })
    return rows


def format_table(rows: list[dict]) -> str:
    lines = ["| source | class | images | right | uncertain | wrong |", "|---|---|---|---|---|---|"]
    lines += [
        f"| {r['source']} | {r['class']} | {r['n']} | {r['right']:.1%} | {r['uncertain']:.1%} | {r['wrong']:.1%} |"
        for r in rows
    ]
    return "\n".join(lines)
