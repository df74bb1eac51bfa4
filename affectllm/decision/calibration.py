"""Calibration measures of a decision's top answer: ECE, the p >= 0.99 share, a reliability diagram.

Inputs are two aligned lists: the confidence of each answer (its top probability) and whether that
answer was right. Working on (confidence, correct) rather than on label dictionaries keeps these
usable for single-label and multi-label gold alike (the caller decides what "right" means).

Bins follow ``eval.metrics.expected_calibration_error``: equal width, right-closed
``(i/M, (i+1)/M]`` with 0 in the first, so both give the same number for the same bins. That one
defaults to 15 bins and takes label dictionaries; the issue asks for 10 bins, the default here.

Deliberately not here: accuracy/F1/UAR (``eval.metrics``) and anything that fits parameters
(``affectllm.decision.fit``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

HIGH_CONFIDENCE = 0.99  # the "p >= 0.99" answers


def _arrays(confidences: Sequence[float], correct: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    conf = np.asarray(confidences, dtype=np.float64).reshape(-1)
    hit = np.asarray(correct, dtype=bool).reshape(-1)
    if conf.shape != hit.shape:
        raise ValueError(f"{conf.size} confidences but {hit.size} correctness flags")
    if conf.size and (not np.all(np.isfinite(conf)) or conf.min() < 0 or conf.max() > 1 + 1e-9):
        raise ValueError("confidences must be finite probabilities in [0, 1]")
    return conf, hit


def bin_index(confidences: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin of each confidence: right-closed ``(i/M, (i+1)/M]``, 0 in bin 0. ``[n] -> [n]`` ints."""
    if n_bins < 1:
        raise ValueError("n_bins must be >= 1")
    # the 1e-9 keeps 0.3 (= 2.9999999999999996 / 10 in floats) in the bin that ends at 0.3
    b = np.ceil(confidences * n_bins - 1e-9).astype(int) - 1
    return np.clip(b, 0, n_bins - 1)


def reliability_bins(confidences: Sequence[float], correct: Sequence[bool], n_bins: int = 10) -> list[dict]:
    """Per bin: {lo, hi, n, confidence (mean), accuracy}; empty bins have None for the means."""
    conf, hit = _arrays(confidences, correct)
    idx = bin_index(conf, n_bins)
    out = []
    for b in range(n_bins):
        sel = idx == b
        n = int(sel.sum())
        out.append({"lo": b / n_bins, "hi": (b + 1) / n_bins, "n": n,
                    "confidence": float(conf[sel].mean()) if n else None,
                    "accuracy": float(hit[sel].mean()) if n else None})
    return out


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool], n_bins: int = 10) -> float:
    """ECE (Guo et al. 2017): sum over bins of |B|/n * |accuracy(B) - mean confidence(B)|; 0.0 when empty."""
    conf, hit = _arrays(confidences, correct)
    if conf.size == 0:
        return 0.0
    total = 0.0
    for b in reliability_bins(conf, hit, n_bins):
        if b["n"]:
            total += b["n"] * abs(b["accuracy"] - b["confidence"])
    return float(total / conf.size)


def confidence_summary(confidences: Sequence[float], correct: Sequence[bool], n_bins: int = 10,
                       threshold: float = HIGH_CONFIDENCE) -> dict:
    """{ece, share_p_ge_0.99, acc_p_ge_0.99, n} (key names follow ``threshold``).

    ``acc_p_ge_...`` is None when no answer reaches the threshold (an accuracy of nothing is not 0).
    """
    conf, hit = _arrays(confidences, correct)
    high = conf >= threshold
    tag = f"{threshold:g}"
    return {"ece": expected_calibration_error(conf, hit, n_bins),
            f"share_p_ge_{tag}": float(high.mean()) if conf.size else 0.0,
            f"acc_p_ge_{tag}": float(hit[high].mean()) if high.any() else None,
            "n": int(conf.size)}


def reliability_diagram(confidences: Sequence[float], correct: Sequence[bool], path: str | Path,
                        n_bins: int = 10, title: str = "") -> Path:
    """Write a reliability diagram PNG (accuracy per confidence bin against the diagonal) to ``path``."""
    import matplotlib  # imported here: the decision itself must not need a plotting stack

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conf, hit = _arrays(confidences, correct)
    bins = reliability_bins(conf, hit, n_bins)
    ece = expected_calibration_error(conf, hit, n_bins)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, (ax, axn) = plt.subplots(2, 1, figsize=(4.5, 5.5), sharex=True,
                                  gridspec_kw={"height_ratios": [3, 1]})
    width = 1.0 / n_bins
    lefts = [b["lo"] for b in bins]
    ax.bar(lefts, [b["accuracy"] or 0.0 for b in bins], width=width, align="edge",
           edgecolor="black", color="#4c72b0", label="accuracy")
    # the gap to each bin's mean confidence is what ECE sums
    ax.bar(lefts, [(b["confidence"] - b["accuracy"]) if b["n"] else 0.0 for b in bins],
           bottom=[b["accuracy"] or 0.0 for b in bins], width=width, align="edge",
           color="#dd8452", alpha=0.5, label="gap to confidence")
    ax.plot([0, 1], [0, 1], "k--", linewidth=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.set_title(title or f"reliability (ECE {ece:.3f}, n={conf.size})", fontsize=9)
    ax.legend(loc="upper left", fontsize=7)
    axn.bar(lefts, [b["n"] for b in bins], width=width, align="edge", edgecolor="black", color="grey")
    axn.set_xlabel("confidence of the answer")
    axn.set_ylabel("answers")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
