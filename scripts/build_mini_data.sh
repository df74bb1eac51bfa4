#!/usr/bin/env bash
# Builds the training mix of affectllm-mini from ../shared/data with the data engine, then
# writes runs/data/mini/sft.jsonl (+ rl.jsonl). Resumable: rerun after an interruption.
# Every record is written as inference runs (--decided): the channel experts' calibrated decision
# is made first, the prompt carries it ("Decided answer: X (probability p)"), and the rationale is
# the verified template for that answer (hedged where it is uncertain or the cues disagree).
# EmoDB: all 278 clips (speaker-disjoint split: dev = speakers 08, 12), no ASR (its sentences
# are emotionally neutral by design; ASR would be 90% of the perception time).
# Its voice classifier scores on the train speakers are out-of-fold (scripts/train_voice_expression.py),
# and the EmoDB train records enter the mix twice (speech is the harder task for a 135M LLM).
# GoEmotions: 320 comments of the text classifier's held-out "decision" slice of train (its scores
# there are honest, as on unseen text), scored by the shipped text classifier with driving words.
# Faces: 280 synthetic evidence-only records (scripts/synth_face_records.py): no labelled training
# faces exist offline (the London and demo photos are kept for evaluation).
set -euo pipefail
cd "$(dirname "$0")/.."
A=.venv/bin/affectllm
mkdir -p runs/data
# Out-of-fold scores only: the refit classifier and its report go under runs/, so the shipped asset
# (and its digest, part of every perception cache key) stays byte-identical across machines.
.venv/bin/python scripts/train_voice_expression.py --oof runs/data/voice_oof.json \
  --out runs/data/voice_expression.safetensors --report runs/data/voice-expression-dev 2>/dev/null
$A data build --source emodb --out runs/data/emodb --no-transcribe --no-hf --quiet --decided \
  --voice-scores runs/data/voice_oof.json
# The decision slice's ids (scripts/train_text_expression.py writes runs/text_expression/scores.jsonl).
[ -f runs/decision/goemotions_ekman-train.jsonl ] || \
  .venv/bin/python scripts/decision_rows.py --text-scores runs/text_expression/scores.jsonl --split decision \
    -o runs/decision/goemotions_ekman-train.jsonl
$A data build --source goemotions --ids runs/decision/goemotions_ekman-train.jsonl --limit 400 \
  --out runs/data/goemo --no-hf --quiet --decided
.venv/bin/python scripts/synth_face_records.py --n 280 --out runs/data/synth_faces
.venv/bin/python - <<'PY'
import json, random
from pathlib import Path

def read(p):
    p = Path(p)
    return [json.loads(l) for l in p.read_text().splitlines() if l.strip()] if p.is_file() else []

rng = random.Random(0)
emodb = read("runs/data/emodb/sft.jsonl")
goemo = [r for r in read("runs/data/goemo/sft.jsonl") if r.get("split") in (None, "train")]
faces = read("runs/data/synth_faces/sft.jsonl")
rng.shuffle(goemo)
emodb_train = [r for r in emodb if r.get("split") == "train"]
mix = emodb + emodb_train + goemo[:320] + faces  # EmoDB dev records stay in as eval (split == dev)
rng.shuffle(mix)
out = Path("runs/data/mini"); out.mkdir(parents=True, exist_ok=True)
(out / "sft.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in mix))
(out / "rl.jsonl").write_text("".join(
    json.dumps({**r, "messages": [m for m in r["messages"] if m["role"] != "assistant"]}, ensure_ascii=False) + "\n"
    for r in mix if r.get("split") != "dev"))
# Stage 2 (train/recipes/affectllm_mini_faces.yaml): the faces again with 100 speech/text records.
others = [r for r in mix if r["source"] != "synthetic_faces" and r.get("split") != "dev"][:100]
stage2 = faces + others
rng.shuffle(stage2)
out2 = Path("runs/data/mini_faces"); out2.mkdir(parents=True, exist_ok=True)
(out2 / "sft.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in stage2))
counts = {}
for r in mix:
    key = (r["source"], r.get("split"))
    counts[key] = counts.get(key, 0) + 1
print("mini mix:", {f"{s}/{sp}": n for (s, sp), n in sorted(counts.items())})
PY
