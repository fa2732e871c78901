"""The verdict band and naming confidence chosen from out-of-fold predictions."""

from __future__ import annotations

import numpy as np

from genspot.training.evaluation.operating_point import Band, Targets, choose_band, choose_naming_confidence, outcome_table


def test_the_band_keeps_every_sizeable_source_under_its_false_ai_rate():
    rng = np.random.default_rng(0)
    # "clean" real photos score low; "glossy" real photos score higher, like AI pictures
    p_ai = np.concatenate([rng.uniform(0.0, 0.4, 100), rng.uniform(0.2, 0.8, 40), rng.uniform(0.5, 1.0, 100), [0.99]])
    label_a = np.array([0] * 140 + [1] * 100 + [0])
    sources = np.array(["clean"] * 100 + ["glossy"] * 40 + ["gen"] * 100 + ["single"])
    band = choose_band(p_ai, label_a, sources, Targets(max_real_called_ai=0.03, max_ai_called_real=0.10))
    glossy = p_ai[sources == "glossy"]
    assert (glossy >= band.ai_from).mean() <= 0.03, "the glossy source sets the upper edge, not the pooled reals"
    assert (glossy >= band.ai_from - 0.01).mean() > 0.03, "and it is the lowest such edge"
    assert (p_ai[label_a == 1] < band.real_below).mean() <= 0.10
    assert band.real_below <= band.ai_from
    rows = {(r["source"], r["class"]): r for r in outcome_table(p_ai, label_a, sources, band)}
    assert rows[("glossy", "real")]["wrong"] <= 0.03
    assert rows[("single", "real")]["wrong"] == 1.0, "a source below min_source_images is reported, not obeyed"
    for row in rows.values():
        assert abs(row["right"] + row["uncertain"] + row["wrong"] - 1.0) < 1e-9


def test_band_as_threshold_and_half_width():
    band = Band(ai_from=0.8, real_below=0.3)
    assert (band.threshold, band.uncertain_band) == (0.55, 0.25)
    assert band.verdicts(np.array([0.8, 0.79, 0.3, 0.29])).tolist() == ["ai", "uncertain", "uncertain", "real"]


def test_a_generator_is_named_only_where_named_guesses_are_accurate():
    top_p = np.linspace(0.05, 1.0, 200)
    correct = top_p > 0.6  # confident guesses are right, unsure ones wrong
    t = choose_naming_confidence(top_p, correct, Targets(min_named_accuracy=0.9, min_named=20))
    named = top_p >= t
    assert correct[named].mean() >= 0.9 and (correct[top_p >= t - 0.01].mean() < 0.9)
    assert choose_naming_confidence(top_p, np.zeros(200, bool)) is None
    # a set whose guesses are right only when very sure holds the confidence up for both
    groups = np.array(["old", "new"] * 100)
    harder = correct & ((groups == "old") | (top_p > 0.8))
    assert choose_naming_confidence(top_p, harder, Targets(min_named_accuracy=0.9, min_named=20), groups) > t
