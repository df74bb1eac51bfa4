"""What storing the LLM's weights as float16 / int8-head for CPU inference costs in answers.

Runs the shipped model on the dev sets of ``eval/results/mini-*`` with the same settings (max 160
new tokens, batches of 8) for float32 and each packed kind, and compares each with float32:
accuracy and macro-F1 (``eval.score``), how often the label is the same, how often the whole
rationale is identical, and the median and largest change of a label probability. Accuracy and
macro-F1 are ``eval.score``'s headline numbers (for GoEmotions: its single-label items). Speed is
not measured here (these runs may share the machine): see explain_speed.py. Runs resume
(``eval.runner``); results go to results/cpu_weights_quality.md.

    python benchmarks/cpu_weights_quality.py [--kinds float32,float16,int8-head] [--out runs/cpu_weights]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# (name, source, split, limit, baselines): the committed float32 runs in eval/results/mini-<name>
SETS = (("faces-demo", "faces_demo", None, None, ("majority",)),
        ("emodb-dev", "emodb", "dev", None, ("majority", "voice")),
        ("goemotions-dev", "goemotions", "dev", 200, ("majority",)))


def _rows(path: Path) -> dict[str, dict]:
    return {(d := json.loads(line))["id"]: d for line in path.open() if line.strip()}


def compare(ref: dict[str, dict], got: dict[str, dict]) -> dict:
    common = [k for k in ref if k in got]
    same_label = sum(ref[k]["pred"] == got[k]["pred"] for k in common)
    same_text = sum(ref[k].get("rationale") == got[k].get("rationale") for k in common)
    dps = [abs(ref[k]["probabilities"].get(lab, 0.0) - p) for k in common
           for lab, p in (got[k].get("probabilities") or {}).items()]
    return {"n": len(common), "same_label": same_label, "same_rationale": same_text,
            "median_prob_change": statistics.median(dps) if dps else 0.0,
            "max_prob_change": max(dps, default=0.0)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kinds", default="float32,float16,int8-head")
    ap.add_argument("--out", default=str(ROOT / "runs" / "cpu_weights"))
    ap.add_argument("--model", default="affectllm-mini")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from eval.runner import evaluate

    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if kinds[0] != "float32":
        raise SystemExit("--kinds must start with float32, the reference the others are compared with")
    lines = [f"# CPU weight storage vs float32 ({time.strftime('%Y-%m-%d %H:%M')}, model {args.model})", "",
             "Each row is compared with the float32 run of this script (same code, items and settings: max 160",
             "new tokens, batches of 8). The `committed` row is `eval/results/mini-<set>` as committed.", "",
             "| set | weights | accuracy | macro-F1 | same label | same rationale | label prob. change, median / max |",
             "|---|---|---|---|---|---|---|"]
    for name, source, split, limit, baselines in SETS:
        runs = {}
        for kind in kinds:
            out = Path(args.out) / f"{name}-{kind}"
            runs[kind] = (evaluate(source, out, split=split, limit=limit, model=args.model, baselines=baselines,
                                   max_new_tokens=160, cpu_weights=kind, progress=False), out)
        committed = ROOT / "eval" / "results" / f"mini-{name}"
        if committed.is_dir():
            runs["committed"] = (json.loads((committed / "metrics.json").read_text()), committed)
        ref = _rows(runs["float32"][1] / "predictions.jsonl")
        for kind, (m, out) in runs.items():
            cells = ["-", "-", "-"]
            if kind != "float32":
                c = compare(ref, _rows(out / "predictions.jsonl"))
                cells = [f"{c['same_label']}/{c['n']}", f"{c['same_rationale']}/{c['n']}",
                         f"{c['median_prob_change']:.4f} / {c['max_prob_change']:.3f}"]
            label = kind + (" (reference)" if kind == "float32" else "")
            lines.append(f"| {name} | {label} | {m['accuracy']:.3f} | {m['macro_f1']:.3f} | {' | '.join(cells)} |")
    text = "\n".join(lines) + "\n"
    print(text)
    (ROOT / "benchmarks" / "results" / "cpu_weights_quality.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
