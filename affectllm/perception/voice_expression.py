"""Voice expression scores: the voice's counterpart of the face's expression classifier.

A multinomial logistic regression over the mean of a clip's Whisper encoder frames, standardised.
Which Whisper model and which layer it reads are part of the file (``encoder``, ``layer``: None is the
encoder's output, the features the audio projector reads; k is the output of encoder block k, an
intermediate layer that keeps more of the voice and less of the words). It is fitted by
``scripts/train_voice_expression.py`` on the EmoDB *train* speakers only (acted German speech, so it
knows EmoDB's seven labels and generalises to other voices with less certainty) and shipped as
``affectllm/assets/voice_expression.safetensors`` (a few kB: mean, scale, weight, bias, and the
encoder name and labels in the metadata).

Why a classifier and not only prosody words: on the EmoDB dev speakers the fixed prosody
descriptors separate the emotions poorly (the loudest delivery is often "moderate loudness"), while
a linear read-out of the Whisper features is right for most clips. A 135M LLM learns to weigh one
line of scores from a few hundred examples; it does not learn that read-out from the soft tokens.

Deliberately not here: the features (``audio``), fitting (sklearn, in :func:`fit`, only used by the
training script) and how the scores are written into prompts (``observations``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from affectllm.paths import ASSETS

ASSET = ASSETS / "voice_expression.safetensors"


@dataclass
class VoiceExpression:
    encoder: str  # Whisper model whose features it reads, e.g. "whisper-tiny.en"
    labels: list[str]
    mean: np.ndarray  # [d]
    scale: np.ndarray  # [d]
    weight: np.ndarray  # [n_labels x d]
    bias: np.ndarray  # [n_labels]
    info: dict  # how it was fitted (data, C, scores): written to the metadata
    digest: str = ""  # sha256 of the file it was loaded from (feature-cache keys)
    layer: int | None = None  # encoder block whose output it reads; None: the encoder's output

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    def scores(self, features) -> dict[str, float]:
        """Label -> probability for one clip's encoder features ``[frames x d]`` (torch or numpy)."""
        x = np.asarray(features.float().numpy() if hasattr(features, "float") else features, np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim or x.shape[0] == 0:
            raise ValueError(f"voice expression expects [frames x {self.dim}] features, got {list(x.shape)}")
        z = (x.mean(0) - self.mean) / self.scale
        logits = self.weight @ z + self.bias
        p = np.exp(logits - logits.max())
        p /= p.sum()
        return {lab: float(v) for lab, v in zip(self.labels, p)}

    # ---- files ------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike = ASSET) -> Path:
        from safetensors.numpy import save

        from affectllm.io.files import atomic_write_bytes

        tensors = {k: np.ascontiguousarray(getattr(self, k), dtype=np.float32)
                   for k in ("mean", "scale", "weight", "bias")}
        meta = {"encoder": self.encoder, "labels": json.dumps(self.labels), "info": json.dumps(self.info),
                "layer": "" if self.layer is None else str(int(self.layer))}
        return atomic_write_bytes(path, save(tensors, metadata=meta))

    @classmethod
    def load(cls, path: str | os.PathLike = ASSET) -> VoiceExpression:
        from safetensors import safe_open

        from affectllm.io.files import sha256_file

        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            t = {k: f.get_tensor(k).astype(np.float64) for k in ("mean", "scale", "weight", "bias")}
        layer = meta.get("layer") or None
        return cls(encoder=meta["encoder"], labels=json.loads(meta["labels"]), info=json.loads(meta.get("info", "{}")),
                   digest=sha256_file(path), layer=None if layer is None else int(layer), **t)


def load_default(path: str | os.PathLike | None = None) -> VoiceExpression | None:
    """The shipped classifier when its file exists, else None (it names the features it reads)."""
    path = Path(path) if path is not None else ASSET
    return VoiceExpression.load(path) if path.is_file() else None


def pooled(features) -> np.ndarray:
    """The classifier's input for one clip: the mean encoder frame ``[d]``."""
    x = features.float().numpy() if hasattr(features, "float") else np.asarray(features)
    return np.asarray(x, np.float64).mean(0)


def fit(X: np.ndarray, y: list[str], labels: list[str], encoder: str, C: float,
        info: dict | None = None, layer: int | None = None) -> VoiceExpression:
    """Fit on pooled features ``X [n x d]`` with labels ``y`` (sklearn's lbfgs logistic regression)."""
    from sklearn.linear_model import LogisticRegression

    X = np.asarray(X, np.float64)
    mean, scale = X.mean(0), X.std(0)
    scale = np.where(scale > 1e-8, scale, 1.0)
    present = [lab for lab in labels if lab in set(y)]
    if len(present) < 3:
        raise ValueError(f"voice expression needs at least 3 labels with examples, got {present}")
    clf = LogisticRegression(C=C, max_iter=5000).fit((X - mean) / scale, y)
    order = [list(clf.classes_).index(lab) for lab in present]
    return VoiceExpression(encoder=encoder, labels=present, mean=mean, scale=scale,
                           weight=clf.coef_[order], bias=clf.intercept_[order],
                           info=dict(info or {}, C=C), layer=layer)
