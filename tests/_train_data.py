"""Synthetic SFT / RL records for the training tests (the record format of the project brief).

Answers are rendered by ``affectllm.explanation.parse.format_explanation`` so rewards parse them exactly;
features are random tensors, inline or saved in a FeatureCache under content-free keys.
Dims match ``tiny_affect_factory`` (face 8, audio 12, image 16).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from affectllm.explanation.parse import format_explanation

DIMS = {"face": 8, "audio": 12, "image": 16}
LABELS = ("anger", "happiness", "sadness", "surprise")
CUES = {"anger": ["AU4 brow lowerer, intensity C", "AU23 lip tightener, intensity B"],
        "happiness": ["AU6 cheek raiser, intensity C", "AU12 lip corner puller, intensity D"],
        "sadness": ["AU1 inner brow raiser, intensity B", "AU15 lip corner depressor, intensity C"],
        "surprise": ["AU1 inner brow raiser, intensity C", "AU26 jaw drop, intensity C"]}


def answer(label: str) -> str:
    return format_explanation(CUES[label], f"The face shows cues of {label}.",
                              f"The face most likely shows {label}.", label)


def make_records(n: int, *, modalities=("face",), cache=None, seed: int = 0, frames=(3, 5),
                 split: str = "train", rl: bool = False) -> list[dict]:
    """``n`` records cycling through LABELS. With ``cache`` features are saved there and
    referenced by key, else given inline as tensors. Audio items alternate between ``frames``
    lengths so batches need feature masks."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        label = LABELS[i % len(LABELS)]
        feats = {}
        for m in modalities:
            rows = frames[i % len(frames)] if m == "audio" else 1
            x = torch.randn(rows, DIMS[m], generator=g)
            if cache is not None:
                key = f"test{seed}-{i:04d}-{m}"
                cache.save(key, {m: x})
                feats[m] = key
            else:
                feats[m] = x
        placeholders = " ".join(f"<{m}>" for m in modalities)
        user = (f"{placeholders}\n" if placeholders else "") + \
            f"Evidence:\nFace: {', '.join(CUES[label])}\nWhich emotion is expressed here, and why?"
        messages = [{"role": "system", "content": "You explain emotions from evidence."},
                    {"role": "user", "content": user}]
        if not rl:
            messages.append({"role": "assistant", "content": answer(label)})
        out.append({"id": f"synthetic:{i}", "source": "synthetic", "split": split, "label": label,
                    "labels": [label], "taxonomy": "ekman7", "messages": messages, "media": {},
                    "features": feats, "evidence_aus": [c.split()[0] for c in CUES[label]],
                    "gold_aus": None, "speaker": f"s{i % 3}"})
    return out


def write_jsonl(records: list[dict], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for r in records:
            assert all(isinstance(v, str) for v in r["features"].values()), "inline tensors cannot go to JSONL"
            f.write(json.dumps(r) + "\n")
    return path
