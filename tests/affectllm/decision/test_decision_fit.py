"""Fitting the pool: deterministic, learns which channel informs, calibrates T on dev, picks subsets."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from decision_synthetic import make_rows

from affectllm.decision.fit import (calibrate_temperature, compare_channel_subsets, evaluate, fit_pool,
                                    gold_mask, load_rows, pick_on_dev)


@pytest.fixture(scope="module")
def train():
    return make_rows(400, seed=1)


@pytest.fixture(scope="module")
def dev():
    return make_rows(300, seed=2)


def test_fitting_is_deterministic(train):
    a = fit_pool(train, "ekman7", ["good", "noise"], seed=0)
    b = fit_pool(train, "ekman7", ["good", "noise"], seed=0)
    assert a.weights == b.weights and a.bias == b.bias and a == b


def test_the_informative_channel_gets_the_larger_weight_and_nll_improves(train, dev):
    pool = fit_pool(train, "ekman7", ["good", "noise"])
    assert pool.weights["good"] > 0.5 > pool.weights["noise"]
    assert pool.weights["good"] > 3 * pool.weights["noise"]
    prior = replace(pool, weights={"good": 1.0, "noise": 1.0}, bias={y: 0.0 for y in pool.labels})
    assert evaluate(pool, train)["nll"] < evaluate(prior, train)["nll"]
    assert evaluate(pool, dev)["nll"] < evaluate(prior, dev)["nll"]  # and it generalises
    assert "train (400 rows)" in pool.fitted_on["weights"]
    assert pool.coverage == {"good": list(pool.labels), "noise": list(pool.labels)}


def test_calibrating_temperature_fixes_an_overconfident_pool(train, dev):
    pool = fit_pool(train, "ekman7", ["good"], confident_threshold=0.0)  # guard off to see T alone
    over = replace(pool, weights={"good": pool.weights["good"] * 4})
    fixed = calibrate_temperature(over, dev)
    assert fixed.temperature > 2.0
    before, after = evaluate(over, dev), evaluate(fixed, dev)
    assert after["nll"] < before["nll"] and after["ece"] < before["ece"]
    assert after["accuracy"] == before["accuracy"]  # one temperature never changes an answer
    assert fixed.fitted_on["temperature"].startswith("dev (300 rows)")


def test_missing_channels_in_rows_are_fitted_as_absent(train):
    half = [dict(r, channels={c: s for c, s in r["channels"].items() if c != "noise" or i % 2})
            for i, r in enumerate(train)]
    pool = fit_pool(half, "ekman7", ["good", "noise"])
    assert pool.weights["good"] > pool.weights["noise"]
    with pytest.raises(ValueError, match=r"\['text'\] name no ekman7 label"):
        fit_pool(train, "ekman7", ["good", "text"])


def test_compare_channel_subsets_and_pick_on_dev(train, dev):
    results = compare_channel_subsets(train, dev, "ekman7", [["good", "noise"], ["good"], ["noise"]])
    assert [r["channels"] for r in results] == [["good", "noise"], ["good"], ["noise"]]
    by = {tuple(r["channels"]): r["dev"] for r in results}
    assert by[("noise",)]["accuracy"] < 0.3 < by[("good",)]["accuracy"]
    best = pick_on_dev(results)
    assert "good" in best["channels"]
    assert {"ece", "share_p_ge_0.99", "acc_p_ge_0.99", "nll", "n"} <= set(best["dev"])


def test_multi_label_gold_and_bad_gold(tmp_path):
    rows = [{"id": "a", "label": ["joy", "surprise"], "channels": {}},
            {"id": "b", "label": "happy", "channels": {}}]
    mask = gold_mask(rows, "goemotions_ekman")
    assert mask.sum(axis=1).tolist() == [2, 1]
    with pytest.raises(ValueError, match="row 'c'.*boredom"):
        gold_mask([{"id": "c", "label": "boredom", "channels": {}}], "ekman7")
    p = tmp_path / "rows.jsonl"
    p.write_text('{"id": "x", "label": "anger", "channels": {}}\n\n{"id": "y"}\n')
    with pytest.raises(ValueError, match="rows.jsonl:3"):
        load_rows(p)


def test_a_bad_channel_in_a_row_names_the_row(train):
    bad = train[:5] + [{"id": "broken", "label": "anger", "channels": {"good": {"anger": 0.0}}}]
    with pytest.raises(ValueError, match="row 'broken'.*good"):
        fit_pool(bad, "ekman7", ["good"])
    assert np.isfinite(list(fit_pool(train[:50], "ekman7", ["good"]).bias.values())).all()


def test_guard_threshold_is_the_lowest_whose_sure_answers_are_right_enough():
    from affectllm.decision.fit import choose_confident_threshold, fit_pool

    rows = make_rows(300, seed=5)
    pool = fit_pool(rows, "ekman7", ["good", "noise"])
    strict = choose_confident_threshold(pool, rows, target=1.01)  # unreachable: the grid's highest
    assert strict.confident_threshold == 0.995 and "confident_threshold" in strict.fitted_on
    loose = choose_confident_threshold(pool, rows, target=0.0)  # always reached: the grid's lowest
    assert loose.confident_threshold == 0.9
    chosen = choose_confident_threshold(pool, rows, target=0.97)
    sure = [(d.emotion == r["label"]) for r in rows
            for d in [chosen.decide(r["channels"])] if max(d.probabilities.values()) >= 0.99]
    assert chosen.confident_threshold == 0.995 or not sure or sum(sure) / len(sure) >= 0.97
