"""Turn eval predictions into the decision layer's fitting rows.

    python scripts/decision_rows.py runs/decision/emodb-train/predictions.jsonl \
        --oof-voice runs/decision/voice_oof.json -o runs/decision/emodb7-train.jsonl

Each prediction line of ``affectllm eval run`` carries the item's expert scores (``channels``:
face / voice / text, as ``decision.channels.expert_scores`` read them) and the LLM's own label
scores (``llm_probabilities``); a row is ``{"id", "label", "channels": {..., "llm": {...}}}``
for every single-label line without an error. ``--oof-voice`` replaces the voice channel by the
voice classifier's out-of-fold scores (``scripts/train_voice_expression.py --oof``): on its own
train clips the classifier is nearly always right, and a decision fitted on that would trust it
far more than it deserves on unheard voices. Lines a row cannot be made from are counted and
named, never dropped silently.

Two more row sources, for a channel whose scores exist without an LLM run:
``--from-oof emodb`` makes train rows from the out-of-fold voice scores alone (labels from the
source), and a baseline file of eval (``baselines/voice.jsonl``, ``fer.jsonl``, ``text.jsonl``)
gives rows from the raw classifier scores it records.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from affectllm.io import jsonl  # noqa: E402
from affectllm.io.files import atomic_write_text  # noqa: E402


BASELINE_CHANNEL = {"voice": "voice", "fer": "face", "text": "text"}  # eval baseline -> channel


def rows_from_oof(source: str, oof: dict) -> tuple[list[dict], list[str]]:
    """Rows of the voice channel alone: each train clip's out-of-fold scores and its gold label."""
    from data_engine.sources import open_source

    gold = {s.id: s.labels for s in open_source(source).load()}
    rows, skipped = [], []
    for item_id, scores in oof.items():
        labels = gold.get(item_id) or []
        if len(labels) != 1:
            skipped.append(f"{item_id}: {'not in the source' if item_id not in gold else 'not single-label'}")
            continue
        rows.append({"id": item_id, "label": labels[0], "channels": {"voice": scores}})
    return rows, skipped


def rows_from_predictions(lines: list[dict], oof_voice: dict | None = None) -> tuple[list[dict], list[str]]:
    """(rows, reasons for the lines left out)."""
    rows, skipped = [], []
    for r in lines:
        if "channels" not in r and r.get("system") in BASELINE_CHANNEL and r.get("raw"):
            r = {**r, "channels": {BASELINE_CHANNEL[r["system"]]: r["raw"]}}
        if r.get("error") or len(r.get("gold") or []) != 1 or "channels" not in r:
            skipped.append(f"{r.get('id')}: {r.get('error') or 'not single-label or no channels recorded'}")
            continue
        channels = dict(r["channels"])
        if r.get("llm_probabilities"):
            channels["llm"] = r["llm_probabilities"]
        if oof_voice is not None and "voice" in channels:
            if r["id"] not in oof_voice:
                skipped.append(f"{r['id']}: no out-of-fold voice scores")
                continue
            channels["voice"] = oof_voice[r["id"]]
        rows.append({"id": r["id"], "label": r["gold"][0], "channels": channels})
    return rows, skipped


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("predictions", type=Path, nargs="?", help="eval predictions or a baseline file")
    ap.add_argument("--from-oof", default=None, metavar="SOURCE",
                    help="rows from --oof-voice alone, labels from SOURCE (e.g. emodb)")
    ap.add_argument("--oof-voice", type=Path, default=None, metavar="JSON")
    ap.add_argument("--text-scores", type=Path, default=None, metavar="JSONL",
                    help="rows of the text channel alone from scripts/train_text_expression.py's scores "
                         "(runs/text_expression/scores.jsonl); --split picks decision or dev")
    ap.add_argument("--split", default=None, help="with --text-scores: decision (train rows) or dev")
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args(argv)
    oof = json.loads(args.oof_voice.read_text()) if args.oof_voice else None
    if args.text_scores:
        rows, skipped = [], []
        for _, r, problem in jsonl.iter_lines(args.text_scores, torn="skip_last"):
            if r is None:
                skipped.append(str(problem))
            elif args.split in (None, r.get("split")):
                rows.append({"id": f"goemotions/{r['id']}", "label": r["label"], "channels": {"text": r["probs"]}})
    elif args.from_oof:
        if oof is None:
            ap.error("--from-oof needs --oof-voice")
        rows, skipped = rows_from_oof(args.from_oof, oof)
    else:
        if args.predictions is None:
            ap.error("give a predictions file, or --from-oof with --oof-voice")
        lines = [obj for _, obj, _ in jsonl.iter_lines(args.predictions, torn="skip_last") if obj is not None]
        rows, skipped = rows_from_predictions(lines, oof)
    atomic_write_text(args.out, "".join(json.dumps(r) + "\n" for r in rows))
    print(f"{len(rows)} rows -> {args.out}; {len(skipped)} lines left out")
    for why in skipped[:10]:
        print(f"  left out: {why}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
