"""Score the shipped decision against each channel alone on a seeded eval subset, from fitting rows.

    python scripts/decision_on_subset.py --source goemotions --split dev --limit 1000 \
        --rows runs/decision/goemotions_ekman-dev.jsonl --taxonomy goemotions_ekman

The subset is the one ``affectllm eval run --limit N --seed S`` evaluates (same seeded hash), so
the numbers are for the same items; the rows hold each item's channel scores (for GoEmotions the
text classifier's, written by ``scripts/train_text_expression.py``). Prints accuracy, macro-F1,
UAR, ECE (10 bins) and the share/accuracy of p >= 0.99 answers for the decision and each channel.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main(argv=None) -> int:
    from affectllm.decision.calibration import confidence_summary
    from affectllm.decision.pool import channel_distribution, pool_for
    from affectllm.knowledge.taxonomy import get_taxonomy, normalize_label
    from eval.metrics import classification_report
    from eval.runner import load_samples

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--source", required=True)
    ap.add_argument("--split", default="dev")
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rows", type=Path, required=True)
    ap.add_argument("--taxonomy", required=True)
    args = ap.parse_args(argv)
    labels = list(get_taxonomy(args.taxonomy).labels)
    samples, _, _ = load_samples(args.source, args.split, args.limit, args.seed)
    rows = {r["id"]: r for r in map(json.loads, args.rows.read_text().splitlines())}
    chosen = [rows[s.id] for s in samples if s.id in rows]  # rows hold the single-label items
    pool = pool_for(args.taxonomy)
    gold = [normalize_label(r["label"], args.taxonomy) for r in chosen]
    systems = {"decision (shipped)": [pool.decide(r["channels"]).probabilities for r in chosen]}
    for c in sorted({c for r in chosen for c in r["channels"]}):
        systems[f"{c} alone"] = [dict(zip(labels, channel_distribution(c, r["channels"][c], args.taxonomy)))
                                 for r in chosen if c in r["channels"]]
    print(f"{len(chosen)} single-label items of the {len(samples)}-item subset (seed {args.seed})")
    print("| system | n | accuracy | macro F1 | UAR | ECE | share p>=0.99 | acc. p>=0.99 |\n|---|---|---|---|---|---|---|---|")
    for name, probs in systems.items():
        pred = [max(p, key=p.get) for p in probs]
        rep = classification_report(gold[:len(pred)], pred, labels)
        conf = np.array([max(p.values()) for p in probs])
        cal = confidence_summary(conf, np.array([a == b for a, b in zip(pred, gold)]))
        print(f"| {name} | {len(pred)} | {rep['accuracy']:.3f} | {rep['macro_f1']:.3f} | {rep['uar']:.3f} | "
              f"{cal['ece']:.3f} | {cal['share_p_ge_0.99']:.3f} | {cal['acc_p_ge_0.99'] or 0:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
