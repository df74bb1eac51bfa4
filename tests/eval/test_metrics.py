"""Evaluation metrics against values computed by hand (and sklearn where it is installed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from affectllm.explanation.parse import format_explanation, parse
from eval.metrics import (
    UNMAPPED, accuracy, au_f1, au_macro_f1, au_micro_f1, classification_report, confusion_matrix,
    consistency_rate, expected_calibration_error, grounding, grounding_precision, hallucination_rate,
    hit_rate, length_stats, macro_f1, multilabel_macro_f1, multilabel_micro_f1, per_class,
    present_labels, rouge_l, rouge_l_corpus, uar, war, weighted_f1, well_formed_rate)

L3 = ["a", "b", "c"]
GOLD = ["a", "a", "a", "b", "b", "c"]
PRED = ["a", "a", "b", "b", None, "a"]  # one unmapped (None)


def test_single_label_hand_computed():
    # confusion rows a: [2,1,0 | 0], b: [0,1,0 | 1], c: [1,0,0 | 0]
    cm = confusion_matrix(GOLD, PRED, L3)
    assert cm.tolist() == [[2, 1, 0, 0], [0, 1, 0, 1], [1, 0, 0, 0]]
    assert accuracy(GOLD, PRED) == 0.5 and war(GOLD, PRED) == 0.5
    pc = per_class(GOLD, PRED, L3)
    assert pc["a"] == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "support": 3})
    assert pc["b"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert pc["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert uar(GOLD, PRED, L3) == pytest.approx(7 / 18)
    assert macro_f1(GOLD, PRED, L3) == pytest.approx(7 / 18)
    assert weighted_f1(GOLD, PRED, L3) == pytest.approx(0.5)  # (3*2/3 + 2*1/2 + 1*0) / 6


def test_class_absent_from_gold_counts_as_zero_unless_excluded():
    labels = L3 + ["d"]
    assert macro_f1(GOLD, PRED, labels) == pytest.approx(7 / 24)
    assert uar(GOLD, PRED, labels) == pytest.approx(7 / 24)
    assert uar(GOLD, PRED, present_labels(GOLD)) == pytest.approx(7 / 18)
    # a class predicted but absent from gold: precision 0, recall 0 -> F1 0
    assert macro_f1(["a", "b"], ["a", "c"], L3) == pytest.approx(1 / 3)
    assert macro_f1(["a", "b"], ["a", "c"]) == pytest.approx(1 / 3)  # labels=None: union of gold and pred


def test_unknown_predictions_go_to_unmapped_column():
    cm = confusion_matrix(["a", "b", "b"], ["banana", "", "b"], ["a", "b"])
    assert cm.tolist() == [[0, 0, 1], [0, 1, 1]]
    report = classification_report(["a", "b", "b"], ["banana", "", "b"], ["a", "b"])
    assert report["unmapped"] == 2 and report["confusion"]["columns"] == ["a", "b", UNMAPPED]
    assert report["per_class"]["b"]["precision"] == 1.0  # unmapped is nobody's false positive
    with pytest.raises(ValueError, match="gold labels outside"):
        confusion_matrix(["zzz"], ["a"], ["a"])
    with pytest.raises(ValueError, match="length"):
        accuracy(["a"], [])


def test_empty_inputs_are_zero():
    assert accuracy([], []) == 0.0 and uar([], [], L3) == 0.0 and macro_f1([], [], L3) == 0.0
    assert weighted_f1([], [], L3) == 0.0 and macro_f1([], []) == 0.0
    assert multilabel_micro_f1([], []) == 0.0 and hit_rate([], []) == 0.0
    assert expected_calibration_error([], []) == 0.0


def test_matches_sklearn_zero_division_0():
    sk = pytest.importorskip("sklearn.metrics")
    labels = L3 + ["d"]
    pred = [p if p is not None else "__none__" for p in PRED]
    assert uar(GOLD, PRED, labels) == pytest.approx(
        sk.recall_score(GOLD, pred, labels=labels, average="macro", zero_division=0))
    assert macro_f1(GOLD, PRED, labels) == pytest.approx(
        sk.f1_score(GOLD, pred, labels=labels, average="macro", zero_division=0))
    assert weighted_f1(GOLD, PRED, labels) == pytest.approx(
        sk.f1_score(GOLD, pred, labels=labels, average="weighted", zero_division=0))


def test_multilabel_hand_computed():
    gold = [{"a", "b"}, {"c"}, set()]
    pred = [{"a"}, {"c", "b"}, {"a"}]
    # a: tp1 fp1 fn0 -> 2/3; b: tp0 fp1 fn1 -> 0; c: tp1 -> 1
    assert multilabel_micro_f1(gold, pred) == pytest.approx(4 / 7)  # tp2 fp2 fn1
    assert multilabel_macro_f1(gold, pred) == pytest.approx(5 / 9)
    assert multilabel_macro_f1(gold, pred, ["a", "b", "c", "d"]) == pytest.approx(5 / 12)
    assert hit_rate(gold, ["b", "a", None]) == pytest.approx(1 / 3)
    assert hit_rate(["a", ["b", "c"]], ["a", "c"]) == 1.0  # a plain string is a one-label set


def test_expected_calibration_error_hand_computed():
    probs = [{"a": 0.9, "b": 0.1}, {"a": 0.6, "b": 0.4}, {"a": 0.2, "b": 0.8}]
    gold = ["a", "b", "b"]
    # 10 bins: each item alone in its bin -> (|1-.9| + |0-.6| + |1-.8|) / 3
    assert expected_calibration_error(probs, gold, n_bins=10) == pytest.approx(0.3)
    # 1 bin: |2/3 - (0.9+0.6+0.8)/3|
    assert expected_calibration_error(probs, gold, n_bins=1) == pytest.approx(0.1)
    arr = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
    assert expected_calibration_error(arr, gold, ["a", "b"], n_bins=10) == pytest.approx(0.3)
    # 0.7 sits on a bin edge and belongs to (0.6, 0.7], with 0.65: |1 - (0.7 + 0.65)| / 2
    edge = [{"a": 0.7, "b": 0.3}, {"a": 0.65, "b": 0.35}]
    assert expected_calibration_error(edge, ["a", "b"], n_bins=10) == pytest.approx(0.175)
    with pytest.raises(ValueError, match="no probabilities"):
        expected_calibration_error([{}], ["a"])


def test_au_f1_hand_computed():
    gold = [["AU6", "AU12"], ["AU4"]]
    pred = [["AU12", "au 25"], []]
    assert au_micro_f1(gold, pred) == pytest.approx(0.4)  # tp1 fp1 fn2
    assert au_macro_f1(gold, pred) == pytest.approx(0.25)  # AU4 0, AU6 0, AU12 1, AU25 0
    assert au_macro_f1(gold, pred, aus=["AU4", "AU6", "AU12"]) == pytest.approx(1 / 3)
    assert au_f1(gold, pred, "micro", aus=["AU4", "AU6", "AU12"]) == pytest.approx(0.5)
    # dicts count AUs at or above the presence threshold; strings may list AUs
    assert au_micro_f1([{"AU6": 0.2, "AU12": 3.0}], ["AU12"]) == 1.0
    assert au_micro_f1(["AU6, AU12"], [[6, 12]]) == 1.0
    with pytest.raises(ValueError):
        au_f1(gold, pred, "weighted")


def test_grounding_hand_computed():
    cited = [["AU6", "AU12"], ["AU9"], []]
    evidence = [["AU12"], [], ["AU4"]]
    g = grounding(cited, evidence)
    assert g["precision"] == pytest.approx(1 / 3) and g["hallucination_rate"] == pytest.approx(2 / 3)
    assert g["n_cited"] == 3 and g["n_grounded"] == 1 and g["items_citing"] == 2
    assert grounding_precision([[]], [["AU1"]]) == 0.0 and hallucination_rate([[]], [["AU1"]]) == 0.0


def test_explanation_rates():
    good = format_explanation(["AU12 lip corner puller"], "a smile", "happiness", "happiness")
    wrong = good.replace("<answer>happiness</answer>", "<answer>sadness</answer>")
    bare = "<answer>fear</answer>"
    exps = [parse(t) for t in (good, wrong, bare)]
    assert consistency_rate(exps) == pytest.approx(1 / 3)
    assert well_formed_rate(exps) == pytest.approx(2 / 3)  # wrong answer, but well formed
    assert consistency_rate([]) == 0.0


def test_rouge_l_hand_computed():
    assert rouge_l("the cat sat on the mat", "The cat, on the mat!") == pytest.approx(10 / 11)
    assert rouge_l("a b c d", "d c b a") == pytest.approx(0.25)
    assert rouge_l("same words", "same words") == 1.0
    assert rouge_l("", "x") == 0.0 and rouge_l(None, None) == 0.0
    assert rouge_l_corpus(["a b", "x"], ["a b", "y"]) == pytest.approx(0.5)


def test_rouge_l_matches_rouge_score_when_installed():
    rs = pytest.importorskip("rouge_score.rouge_scorer")
    scorer = rs.RougeScorer(["rougeL"])
    for ref, cand in [("the cat sat on the mat", "the cat on a mat"), ("AU12 smile, happy", "happy smile AU12")]:
        assert rouge_l(ref, cand) == pytest.approx(scorer.score(ref, cand)["rougeL"].fmeasure)


def test_length_stats():
    s = length_stats(["a b", "a b c d", ""])
    assert s["n"] == 3 and s["mean"] == 2.0 and s["median"] == 2.0 and s["min"] == 0.0 and s["max"] == 4.0
    assert s["std"] == pytest.approx(math.sqrt(8 / 3)) and s["p95"] == pytest.approx(3.8)
    assert length_stats(["abc", None], unit="chars")["max"] == 3.0
    assert length_stats([])["n"] == 0
    with pytest.raises(ValueError):
        length_stats(["x"], unit="tokens")
