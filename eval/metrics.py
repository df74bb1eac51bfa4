"""Evaluation metrics as plain functions over aligned lists (gold first, prediction second).

Single-label: accuracy (= WAR), UAR, macro/weighted F1, per-class precision/recall/F1, confusion
matrix. Multi-label (GoEmotions): micro/macro F1 and hit rate. Calibration: expected calibration
error. Explanation quality (AU F1, grounding, consistency, ROUGE-L, lengths) is in
``eval.explanation_metrics`` and re-exported here, so ``from eval.metrics import ...`` finds all.

Conventions (chosen to match scikit-learn with ``zero_division=0``):
- A prediction that is None, empty, or not one of ``labels`` is *unmapped*: it is wrong, counts
  as a false negative of the gold class, and is the false positive of no class. The confusion
  matrix gives it a last column named :data:`UNMAPPED`.
- Every class in ``labels`` is averaged, also one absent from gold: its recall is 0 (undefined
  -> 0), its precision 0 when never predicted, so it pulls macro averages down, exactly as
  sklearn does with explicit labels. To average only classes present in gold, pass
  ``labels=present_labels(gold)``. With ``labels=None`` the classes are the sorted union of gold
  and (non-empty) predictions, sklearn's default.
- Empty inputs give 0.0 rather than NaN (nothing was right), so reports stay valid JSON.
Gold labels must be clean: a gold label outside ``labels`` raises ValueError.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from affectllm.decision import calibration

from eval.explanation_metrics import (  # noqa: F401  (re-exported)
    au_f1, au_macro_f1, au_micro_f1, consistency_rate, grounding, grounding_precision,
    hallucination_rate, length_stats, rouge_l, rouge_l_corpus, well_formed_rate)

UNMAPPED = "unmapped"


def _aligned(gold: Sequence, pred: Sequence) -> None:
    if len(gold) != len(pred):
        raise ValueError(f"gold and predictions differ in length: {len(gold)} vs {len(pred)}")


def _safe_div(a: float, b: float) -> float:
    return float(a) / float(b) if b else 0.0


def present_labels(gold: Iterable[str]) -> list[str]:
    """The classes that occur in gold, sorted (for UAR over present classes only)."""
    return sorted(set(gold))


def _resolve_labels(gold: Sequence[str], pred: Sequence[str | None], labels: Sequence[str] | None) -> list[str]:
    if labels is not None:
        labels = list(labels)
    else:
        labels = sorted(set(gold) | {p for p in pred if p})
    unknown = sorted(set(gold) - set(labels))
    if unknown:
        raise ValueError(f"gold labels outside the label set: {unknown}")
    return labels


def accuracy(gold: Sequence[str], pred: Sequence[str | None]) -> float:
    """Fraction of items whose prediction equals the gold label (None never does)."""
    _aligned(gold, pred)
    return _safe_div(sum(g == p for g, p in zip(gold, pred)), len(gold))


def war(gold: Sequence[str], pred: Sequence[str | None]) -> float:
    """Weighted average recall: recall weighted by class support, which equals accuracy."""
    return accuracy(gold, pred)


weighted_accuracy = war


def confusion_matrix(gold: Sequence[str], pred: Sequence[str | None], labels: Sequence[str]) -> np.ndarray:
    """Counts ``[k x (k+1)]``: row = gold label, column = predicted label, last column = unmapped."""
    _aligned(gold, pred)
    labels = _resolve_labels(gold, pred, labels)
    index = {label: i for i, label in enumerate(labels)}
    cm = np.zeros((len(labels), len(labels) + 1), dtype=np.int64)
    for g, p in zip(gold, pred):
        cm[index[g], index.get(p, len(labels))] += 1
    return cm


def per_class(gold: Sequence[str], pred: Sequence[str | None],
              labels: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """``{label: {"precision", "recall", "f1", "support"}}`` (0 where undefined)."""
    labels = _resolve_labels(gold, pred, labels)
    cm = confusion_matrix(gold, pred, labels)
    out = {}
    for i, label in enumerate(labels):
        tp, predicted, support = cm[i, i], cm[:, i].sum(), cm[i].sum()
        p, r = _safe_div(tp, predicted), _safe_div(tp, support)
        out[label] = {"precision": p, "recall": r, "f1": _safe_div(2 * p * r, p + r), "support": int(support)}
    return out


def uar(gold: Sequence[str], pred: Sequence[str | None], labels: Sequence[str] | None = None) -> float:
    """Unweighted average recall (macro recall): every class counts the same."""
    pc = per_class(gold, pred, labels)
    return _safe_div(sum(c["recall"] for c in pc.values()), len(pc))


def macro_f1(gold: Sequence[str], pred: Sequence[str | None], labels: Sequence[str] | None = None) -> float:
    """Mean of per-class F1 over ``labels``."""
    pc = per_class(gold, pred, labels)
    return _safe_div(sum(c["f1"] for c in pc.values()), len(pc))


def weighted_f1(gold: Sequence[str], pred: Sequence[str | None], labels: Sequence[str] | None = None) -> float:
    """Per-class F1 averaged with weights = gold support."""
    pc = per_class(gold, pred, labels)
    total = sum(c["support"] for c in pc.values())
    return _safe_div(sum(c["f1"] * c["support"] for c in pc.values()), total)


def classification_report(gold: Sequence[str], pred: Sequence[str | None],
                          labels: Sequence[str] | None = None) -> dict:
    """All single-label metrics in one JSON-safe dict (confusion matrix as nested lists)."""
    labels = _resolve_labels(gold, pred, labels)
    cm = confusion_matrix(gold, pred, labels)
    return {"n": len(gold), "accuracy": accuracy(gold, pred), "war": war(gold, pred),
            "uar": uar(gold, pred, labels), "macro_f1": macro_f1(gold, pred, labels),
            "weighted_f1": weighted_f1(gold, pred, labels), "unmapped": int(cm[:, -1].sum()),
            "per_class": per_class(gold, pred, labels), "labels": labels,
            "confusion": {"columns": [*labels, UNMAPPED], "matrix": cm.tolist()}}


# ---- multi-label ------------------------------------------------------------------------------


def _sets(rows: Sequence[Iterable[str] | str | None]) -> list[set[str]]:
    out = []
    for r in rows:
        if r is None:
            out.append(set())
        elif isinstance(r, str):
            out.append({r} if r else set())
        else:
            out.append({x for x in r if x})
    return out


def _multilabel_counts(gold, pred, labels):
    g, p = _sets(gold), _sets(pred)
    _aligned(g, p)
    if labels is None:
        labels = sorted(set().union(*g, *p)) if g else []
    counts = {label: [0, 0, 0] for label in labels}  # tp, fp, fn
    for gs, ps in zip(g, p):
        for label in labels:
            if label in ps and label in gs:
                counts[label][0] += 1
            elif label in ps:
                counts[label][1] += 1
            elif label in gs:
                counts[label][2] += 1
    return counts


def multilabel_micro_f1(gold: Sequence, pred: Sequence, labels: Sequence[str] | None = None) -> float:
    """F1 of true/false positives and false negatives pooled over all items and labels."""
    counts = _multilabel_counts(gold, pred, labels)
    tp, fp, fn = (sum(c[i] for c in counts.values()) for i in range(3))
    return _safe_div(2 * tp, 2 * tp + fp + fn)


def multilabel_macro_f1(gold: Sequence, pred: Sequence, labels: Sequence[str] | None = None) -> float:
    """Mean over labels of each label's F1 (0 for a label never in gold nor predicted)."""
    counts = _multilabel_counts(gold, pred, labels)
    return _safe_div(sum(_safe_div(2 * tp, 2 * tp + fp + fn) for tp, fp, fn in counts.values()), len(counts))


def hit_rate(gold: Sequence, top_pred: Sequence[str | None]) -> float:
    """Fraction of items whose top prediction is one of their gold labels."""
    g = _sets(gold)
    _aligned(g, top_pred)
    return _safe_div(sum(p is not None and p in gs for gs, p in zip(g, top_pred)), len(g))


# ---- calibration ------------------------------------------------------------------------------


def top_confidences(probabilities: Sequence[Mapping[str, float]] | np.ndarray, gold: Sequence[str],
                    labels: Sequence[str] | None = None) -> tuple[list[float], list[bool]]:
    """(confidence of the top label, whether it is the gold label) per item.

    ``probabilities``: one ``{label: p}`` per item, or an array ``[n x k]`` with columns in the
    order of ``labels``. The first label wins ties; probabilities are used as given. An item
    without probabilities raises ValueError.
    """
    if isinstance(probabilities, np.ndarray):
        if labels is None or probabilities.ndim != 2 or probabilities.shape[1] != len(labels):
            raise ValueError("an [n x k] probability array needs labels of length k")
        probabilities = [dict(zip(labels, row.tolist())) for row in probabilities]
    _aligned(gold, probabilities)
    confs, correct = [], []
    for i, (probs, g) in enumerate(zip(probabilities, gold)):
        if not probs:
            raise ValueError(f"item {i} has no probabilities")
        top, c = max(probs.items(), key=lambda kv: kv[1])  # max keeps the first of equal values
        confs.append(float(c))
        correct.append(top == g)
    return confs, correct


def expected_calibration_error(probabilities: Sequence[Mapping[str, float]] | np.ndarray,
                               gold: Sequence[str], labels: Sequence[str] | None = None,
                               n_bins: int = 10) -> float:
    """ECE (Guo et al. 2017) of the top label over ``n_bins`` equal-width bins: the one
    implementation, ``affectllm.decision.calibration``, fed by :func:`top_confidences`."""
    if n_bins < 1:
        raise ValueError("n_bins must be >= 1")
    confs, correct = top_confidences(probabilities, gold, labels)
    return float(calibration.expected_calibration_error(confs, correct, n_bins)) if confs else 0.0
