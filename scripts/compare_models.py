"""Compare systems on exactly the same items: label metrics and rationale form, from predictions.

    python scripts/compare_models.py emodb-dev=eval/results/emodb-dev/predictions.jsonl \
        mini:emodb-dev=eval/results/mini-emodb-dev/predictions.jsonl ...

Each argument is ``[SYSTEM:]SET=PATH``; SYSTEM defaults to the file's ``model`` field. Items are
intersected per SET, so every system in a row is scored on the same ids. Single-label metrics
use the first gold label; for multi-label sets (GoEmotions) a prediction counts as correct when
it is among the gold labels (hit rate), reported as accuracy. Unlabelled items are left out.
Prints a Markdown table.
"""

from __future__ import annotations

import sys
from collections import defaultdict

from affectllm.explanation.parse import parse
from affectllm.io import jsonl
from eval.metrics import macro_f1, present_labels, uar


def read(path: str) -> dict[str, dict]:
    rows = {}
    for r in jsonl.read(path):
        if r.get("system", "model") == "model" and r.get("gold"):  # unlabelled items are not scored
            rows[r["id"]] = r
    return rows


def main(args: list[str]) -> int:
    sets: dict[str, dict[str, dict]] = defaultdict(dict)
    for a in args:
        head, path = a.split("=", 1)
        system, _, name = head.rpartition(":")
        rows = read(path)
        system = system or next(iter(rows.values()))["model"]
        sets[name][system] = rows
    print("| set | system | n | accuracy | macro F1 | UAR | well-formed | consistent |")
    print("|---|---|---|---|---|---|---|---|")
    for name, systems in sets.items():
        ids = sorted(set.intersection(*(set(r) for r in systems.values())))
        for system, rows in systems.items():
            gold, pred, wf, cons = [], [], 0, 0
            for i in ids:
                r = rows[i]
                g = r["gold"]
                first = g[0] if g else None
                hit = r.get("pred") in g
                gold.append(first)
                pred.append(r.get("pred") if not hit else first)  # a hit on any gold label counts
                ex = parse(r.get("rationale") or "", r.get("taxonomy"))
                wf += ex.well_formed
                cons += ex.consistent
            n = len(ids)
            acc = sum(p == g for p, g in zip(pred, gold)) / n if n else 0.0
            labels = present_labels(gold)
            print(f"| {name} | {system} | {n} | {acc:.3f} | {macro_f1(gold, pred, labels):.3f} | "
                  f"{uar(gold, pred, labels):.3f} | {wf / max(n, 1):.2f} | {cons / max(n, 1):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
