"""Synthetic face-evidence training records for affectllm-mini.

    python scripts/synth_face_records.py --n 280 --out runs/data/synth_faces

Why synthetic: no labelled face images exist offline except the 5 demo photos and the London set,
and both are kept for evaluation. What the LLM has to learn about faces is how to *write* about a
face's evidence (Action Units with intensity letters, the expression classifier's scores, the
closest EMFACS prototypes) for the decided answer, so the records are evidence-only: each one is a
:class:`FaceObs` drawn at random, then the data engine's own record path
(``data_engine.build.make_record`` with ``decided=True``: the channel experts' decision, the
template rationale for it, the one verifier) turns it into a record exactly as for a real item.

How an item is drawn (seeded; ``intent`` cycles over Ekman-7):
- every one of the 18 estimated AUs starts at rest (intensity uniform in [0, 0.45), absent);
- for an intent with an EMFACS prototype, each of its estimated AUs is active with probability
  0.8 at an intensity uniform in [0.8, 4.2); 0-4 other AUs are active at [0.5, 2.6) (the geometric
  estimator reports several incidental AUs on real photos, e.g. parted lips or a dropped jaw);
- the expression classifier's scores use its own label names (FER2013's angry, disgust, fear,
  happy, sad, surprise, neutral, as on real faces); its top label is the intent (65 %), another
  label (20 %), or there is no clear top (15 %); the top probability is uniform in [0.35, 0.995) and the rest is split by a
  Dirichlet draw, so the decision ranges from confident to uncertain and sometimes disagrees with
  the AUs (the template then hedges, and the model learns to);
- 10 % carry the "small face" caveat. There are no landmarks, embeddings or images.
The records' gold label is the intent; the rationale argues for the *decided* answer.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TAXONOMY = "ekman7"
# Ekman-7 label -> the expression classifier's own name (perception.frame_table.FER_LABELS)
FER_NAME = {"anger": "angry", "disgust": "disgust", "fear": "fear", "happiness": "happy", "sadness": "sad",
            "surprise": "surprise", "neutral": "neutral"}


def draw_face(rng: random.Random, intent: str):
    from affectllm.knowledge.emfacs import EMFACS_PROTOTYPES, prototype_aus
    from affectllm.knowledge.taxonomy import EKMAN7
    from affectllm.perception.au import AU_ORDER, to_au_obs
    from affectllm.perception.observations import FaceObs

    inten = {au: rng.uniform(0.0, 0.45) for au in AU_ORDER}
    if intent in EMFACS_PROTOTYPES:
        for au in prototype_aus(intent):
            if au in inten and rng.random() < 0.8:
                inten[au] = rng.uniform(0.8, 4.2)
    for au in rng.sample(list(AU_ORDER), rng.choices((0, 1, 2, 3, 4), (0.2, 0.25, 0.25, 0.15, 0.15))[0]):
        inten[au] = max(inten[au], rng.uniform(0.5, 2.6))
    labels = list(EKMAN7.labels)
    mode = rng.random()
    if mode < 0.65:
        top = intent
    elif mode < 0.85:
        top = rng.choice([lab for lab in labels if lab != intent])
    else:
        top = None
    rest = [rng.gammavariate(0.7, 1.0) for _ in labels]
    if top is None:
        expression = {lab: v / sum(rest) for lab, v in zip(labels, rest)}
    else:
        p_top = rng.uniform(0.35, 0.995)
        others = [v for lab, v in zip(labels, rest) if lab != top]
        expression = {top: p_top}
        for lab, v in zip([lab for lab in labels if lab != top], others):
            expression[lab] = (1 - p_top) * v / sum(others)
        if max(expression, key=expression.get) != top:  # a Dirichlet draw above p_top: keep the intended top
            expression[top] = max(expression.values()) + 1e-3
            z = sum(expression.values())
            expression = {k: v / z for k, v in expression.items()}
    w = rng.uniform(90, 420)
    x0, y0 = rng.uniform(10, 300), rng.uniform(10, 200)
    inten = {au: round(v, 2) for au, v in inten.items()}  # as stored in records (to_dict rounds), so letters match
    return FaceObs(box=(x0, y0, x0 + w, y0 + w * rng.uniform(1.1, 1.3)), score=rng.uniform(0.85, 0.995),
                   pose={"yaw": rng.uniform(-20, 20), "pitch": rng.uniform(-12, 12), "roll": rng.uniform(-8, 8)},
                   aus=to_au_obs(inten), expression={FER_NAME[k]: round(v, 4) for k, v in expression.items()},
                   flags=["small_face"] if rng.random() < 0.1 else [])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=280)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/data/synth_faces", metavar="DIR")
    args = ap.parse_args(argv)

    from affectllm.io.files import atomic_write_text
    from affectllm.knowledge.taxonomy import EKMAN7
    from affectllm.perception.observations import Observations
    from data_engine.build import DEFAULT_EVIDENCE, Rejected, make_record
    from data_engine.sample import Sample

    rng = random.Random(args.seed)
    kept, rejected = [], []
    for i in range(args.n):
        intent = EKMAN7.labels[i % len(EKMAN7.labels)]
        sid = f"synthetic_faces/{i:04d}"
        obs = Observations(file=f"{sid}.jpg", faces=[draw_face(rng, intent)])
        sample = Sample(id=sid, source="synthetic_faces", split="train", labels=[intent],
                        media={"image": f"{sid}.jpg"})
        try:
            rec = make_record(sample, lambda s, o=obs: o, seed=args.seed, taxonomy=TAXONOMY,
                              evidence=DEFAULT_EVIDENCE, feature_tag="synthetic", decided=True)
        except Rejected as r:
            rejected.append({"id": sid, "stage": r.stage, "reasons": r.reasons})
            continue
        rec["meta"]["synthetic"] = "scripts/synth_face_records.py (evidence-only FaceObs)"
        kept.append(rec)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "sft.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept))
    atomic_write_text(out / "rejected.jsonl", "".join(json.dumps(r) + "\n" for r in rejected))
    agree = sum(r["answer"] == r["label"] for r in kept)
    print(f"{len(kept)} synthetic face record(s) kept, {len(rejected)} rejected -> {out}/sft.jsonl; "
          f"decided answer = intent on {agree}/{len(kept)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
