"""The continuous AU score is the intensity before the clip: it ranks where the intensity ties at 0."""

import numpy as np

from affectllm.perception import au
from affectllm.perception.au_score import au_scores
from affectllm.perception.calibration import measure_stats

INTERLOCKED = {"AU5", "AU7", "AU26"}  # presence interlocks act on the intensity only


def random_measures(rng, stats, spread=2.5):
    return {m: s["mean"] + spread * s["sd"] * rng.standard_normal() for m, s in stats.items()}


def test_clipped_score_equals_intensity():
    stats = measure_stats()
    rng = np.random.default_rng(0)
    n_checked = 0
    for _ in range(200):
        m = random_measures(rng, stats)
        m["lip_gap"] = abs(m["lip_gap"])
        inten, score = au.au_intensities(m, stats), au_scores(m, stats)
        for a in au.AU_ORDER:
            if a in INTERLOCKED:
                continue
            assert abs(float(np.clip(score[a], 0, 5)) - inten[a]) < 2e-3, a
            n_checked += 1
    assert n_checked == 200 * (len(au.AU_ORDER) - len(INTERLOCKED))


def test_score_orders_faces_that_the_intensity_ties():
    stats = measure_stats()
    rest = {m: s["mean"] for m, s in stats.items()}
    subtle = dict(rest, corner_vs_mid=rest["corner_vs_mid"] + 0.5 * stats["corner_vs_mid"]["sd"])
    assert au.au_intensities(rest, stats)["AU12"] == au.au_intensities(subtle, stats)["AU12"] == 0.0
    assert au_scores(subtle, stats)["AU12"] > au_scores(rest, stats)["AU12"]
