"""Calibration measures: ECE on hand-computed cases, the p >= 0.99 summary, the reliability PNG."""

from __future__ import annotations

import numpy as np
import pytest

from affectllm.decision.calibration import (bin_index, confidence_summary, expected_calibration_error,
                                            reliability_diagram)


def test_ece_hand_computed():
    # bins (0.8,0.9]: two answers, conf 0.9, one right -> 2 * |0.5 - 0.9| = 0.8
    #      (0.5,0.6]: conf 0.6, right -> 0.4;  (0.2,0.3]: conf 0.3, wrong -> 0.3;  total 1.5 / 4
    assert expected_calibration_error([0.9, 0.9, 0.6, 0.3], [True, False, True, False]) == pytest.approx(0.375)
    # one bin: |mean accuracy - mean confidence| = |0.5 - 0.675|
    assert expected_calibration_error([0.9, 0.9, 0.6, 0.3], [1, 0, 1, 0], n_bins=1) == pytest.approx(0.175)
    assert expected_calibration_error([1.0, 1.0], [True, True]) == 0.0
    assert expected_calibration_error([], []) == 0.0


def test_bins_are_right_closed_like_eval_metrics():
    assert bin_index(np.array([0.0, 0.1, 0.3, 0.30001, 1.0]), 10).tolist() == [0, 0, 2, 3, 9]


def test_agrees_with_the_eval_metrics_ece_on_the_same_bins():
    from eval.metrics import expected_calibration_error as eval_ece

    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(4), size=200)
    gold = rng.integers(0, 4, size=200)
    labels = ["a", "b", "c", "d"]
    conf, correct = p.max(axis=1), p.argmax(axis=1) == gold
    ours = expected_calibration_error(conf, correct, n_bins=10)
    assert ours == pytest.approx(eval_ece(p, [labels[g] for g in gold], labels, n_bins=10))


def test_confidence_summary_counts_the_certain_answers():
    s = confidence_summary([0.995, 0.99, 0.5, 0.999], [True, False, True, True])
    assert s["share_p_ge_0.99"] == pytest.approx(0.75)
    assert s["acc_p_ge_0.99"] == pytest.approx(2 / 3)
    assert s["n"] == 4 and s["ece"] > 0
    none = confidence_summary([0.5, 0.6], [True, False])
    assert none["share_p_ge_0.99"] == 0.0 and none["acc_p_ge_0.99"] is None


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="3 confidences but 2"):
        expected_calibration_error([0.1, 0.2, 0.3], [True, False])
    with pytest.raises(ValueError, match="probabilities"):
        expected_calibration_error([1.5], [True])


def test_reliability_diagram_writes_a_png(tmp_path):
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.2, 1.0, size=300)
    path = reliability_diagram(conf, rng.random(300) < conf, tmp_path / "sub" / "reliability.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
