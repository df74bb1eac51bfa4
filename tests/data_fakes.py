"""Test doubles for the data-engine tests ONLY: a cheap, deterministic ``perceive``.

It fabricates Observations from a Sample's label (prototype AUs, a matching voice) so build
tests run without perception models. Never import this outside tests.
"""

from __future__ import annotations

import csv
import hashlib
import os
import time
from pathlib import Path

from affectllm.knowledge.facs import AU_NAMES
from affectllm.perception.observations import AUObs, AudioObs, FaceObs, Observations

LABEL_AUS = {
    "happiness": {"AU6": 2.8, "AU12": 3.4, "AU25": 1.0},
    "sadness": {"AU1": 2.0, "AU4": 1.8, "AU15": 2.2},
    "anger": {"AU4": 3.0, "AU5": 1.0, "AU7": 2.0, "AU23": 1.6},
    "surprise": {"AU1": 2.5, "AU2": 2.6, "AU5": 2.0, "AU26": 3.0},
    "fear": {"AU1": 2.0, "AU2": 1.5, "AU4": 1.2, "AU20": 2.4, "AU25": 1.5},
    "disgust": {"AU9": 2.5, "AU10": 1.5, "AU15": 1.0},
    "neutral": {},
}
LABEL_VOICE = {
    "anger": {"pitch": "high, variable pitch", "loudness": "loud", "rate": "fast speech", "pauses": "few pauses"},
    "sadness": {"pitch": "low, monotone pitch", "loudness": "quiet", "rate": "slow speech", "pauses": "many pauses"},
    "boredom": {"pitch": "low, monotone pitch", "loudness": "moderate loudness", "rate": "slow speech"},
    "happiness": {"pitch": "high, variable pitch", "loudness": "loud", "rate": "moderate pace"},
    "neutral": {"pitch": "medium pitch", "loudness": "moderate loudness", "rate": "moderate pace"},
}


def _u(key: str) -> float:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") / 2**32


def fake_perceive(sample) -> Observations:
    """Observations that loosely fit the sample's label; a few items get a face at rest."""
    delay = float(os.environ.get("FAKE_PERCEIVE_DELAY", "0"))
    if delay:
        time.sleep(delay)
    label = sample.labels[0] if sample.labels else "neutral"
    obs = Observations(file=next(iter(sample.media.values()), None), text=sample.text)
    if "image" in sample.media or "video" in sample.media:
        at_rest = _u(sample.id + "rest") < 0.2
        target = {} if at_rest else LABEL_AUS.get(label, {})
        aus = []
        for au in AU_NAMES:
            x = target.get(au, 0.3 * _u(sample.id + au))
            x = x + 0.4 * _u(sample.id + au + "j") if au in target else x
            aus.append(AUObs(au, round(x, 2), x >= 0.5))
        expr = {"happy": 0.1, "sad": 0.1, "angry": 0.1, "neutral": 0.1, "fear": 0.1, "surprise": 0.1, "disgust": 0.1}
        fer = {"happiness": "happy", "sadness": "sad", "anger": "angry"}.get(label, "neutral")
        expr[fer] = 0.4
        obs.faces = [FaceObs(box=(0, 0, 64, 64), score=0.95, aus=aus, expression=expr)]
    if "audio" in sample.media:
        obs.audio = AudioObs(duration_s=2.0, descriptors=dict(LABEL_VOICE.get(label, LABEL_VOICE["neutral"])))
    return obs


LABELS = ["happiness", "sadness", "anger", "surprise", "fear", "disgust", "neutral"]


def make_manifest(root: Path, n: int = 28) -> str:
    """A manifest of fake media (never decoded): images, clips and texts over 6 speakers."""
    rows = []
    for i in range(n):
        kind = ("jpg", "wav", "txt")[i % 3]
        row = {"label": LABELS[i % len(LABELS)], "speaker": f"p{i % 6}", "id": f"item{i:02d}"}
        if kind == "txt":
            row["text"] = f"I feel {row['label']} about item {i}"
        else:
            (root / f"m{i}.{kind}").write_bytes(b"not decoded")
            row["path"] = f"m{i}.{kind}"
        rows.append(row)
    rows.append({"path": "m0.jpg", "label": "", "speaker": "p1", "id": "unlabelled"})
    rows.append({"path": "gone.jpg", "label": "anger", "speaker": "p2", "id": "missing"})
    with open(root / "data.csv", "w", newline="") as f:
        w = csv.DictWriter(f, ["id", "path", "text", "label", "speaker"])
        w.writeheader()
        w.writerows(rows)
    return f"manifest:{root / 'data.csv'}"
