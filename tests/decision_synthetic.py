"""Synthetic decision rows for the decision tests: channels of known quality over a taxonomy."""

from __future__ import annotations

import numpy as np

from affectllm.knowledge.taxonomy import get_taxonomy

FER_NAMES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def peaked(rng: np.random.Generator, k: int, hot: int, strength: float) -> np.ndarray:
    """A random distribution over k labels with extra log-mass ``strength`` on index ``hot``."""
    logits = rng.normal(size=k)
    logits[hot] += strength
    e = np.exp(logits - logits.max())
    return e / e.sum()


def make_rows(n: int, seed: int, taxonomy: str = "ekman7", informative: float = 3.0,
              channels: tuple[str, ...] = ("good", "noise")) -> list[dict]:
    """Rows whose channel ``good`` peaks on the gold label 80% of the time; ``noise`` is independent of it."""
    rng = np.random.default_rng(seed)
    labels = get_taxonomy(taxonomy).labels
    k = len(labels)
    rows = []
    for i in range(n):
        gold = int(rng.integers(k))
        out = {}
        if "good" in channels:
            hot = gold if rng.random() < 0.8 else int(rng.integers(k))
            out["good"] = dict(zip(labels, peaked(rng, k, hot, informative).tolist()))
        if "noise" in channels:
            out["noise"] = dict(zip(labels, peaked(rng, k, int(rng.integers(k)), informative).tolist()))
        rows.append({"id": f"{seed}-{i}", "label": labels[gold], "channels": out})
    return rows
