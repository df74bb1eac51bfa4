"""Fit the calibrated decision for one taxonomy and compare it with every channel alone, on dev.

    python scripts/fit_decision.py --taxonomy emodb7 --train runs/decision/emodb7-train.jsonl \
        --dev runs/decision/emodb7-dev.jsonl [--channels face,voice,llm] [--l2 1.0]

Rows (JSONL): {"id", "label", "channels": {channel: {label name: probability}}}. Train rows should
carry *out-of-fold* expert scores (``scripts/train_voice_expression.py --oof``): an expert scored on
the items it was fitted to is always right there, and the fit would trust it too much.

Candidates: all channels, all without the LLM, and each channel alone; each is fitted on train
(weights, biases), given one temperature on dev, and scored on dev. The lowest dev NLL is saved as
``affectllm/assets/decision/<taxonomy>.json`` (channels it dropped kept with weight 0, so callers
may pass them). Printed and written to ``--report-dir`` (report.md, metrics.json, reliability.png):
accuracy / macro-F1 / UAR / ECE (10 bins) / share and accuracy of p >= 0.99 for each raw channel
alone (its own probabilities, on the rows that have it) and each candidate.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from affectllm.decision.calibration import confidence_summary, reliability_diagram  # noqa: E402
from affectllm.decision.fit import (LLM_CHANNEL, calibrate_temperature, choose_confident_threshold,  # noqa: E402
                                    compare_channel_subsets,
                                    derive_coverage,
                                    gold_mask, load_rows, pick_on_dev, prepare)
from affectllm.decision.pool import channel_distribution  # noqa: E402
from affectllm.knowledge.taxonomy import get_taxonomy  # noqa: E402
from eval import metrics as M  # noqa: E402

COLUMNS = ("n", "accuracy", "macro_f1", "uar", "ece", "share_p_ge_0.99", "acc_p_ge_0.99", "nll")


def score(rows: list[dict], probs: np.ndarray, taxonomy: str) -> dict:
    """Dev metrics of probabilities [n x K] against rows' gold (multi-label gold: hit rate, no F1/UAR)."""
    labels = get_taxonomy(taxonomy).labels
    gold = gold_mask(rows, taxonomy)
    top = probs.argmax(axis=1)
    correct = gold[np.arange(len(rows)), top]
    out = {**confidence_summary(probs.max(axis=1), correct),
           "accuracy": float(correct.mean()) if len(rows) else 0.0,
           "nll": float(-np.log(np.maximum((probs * gold).sum(axis=1), 1e-12)).mean()) if len(rows) else 0.0,
           "macro_f1": None, "uar": None}
    if all(isinstance(r["label"], str) for r in rows) and rows:
        g = [labels[int(np.argmax(m))] for m in gold]
        pred = [labels[k] for k in top]
        present = M.present_labels(g)
        out.update(macro_f1=M.macro_f1(g, pred, present), uar=M.uar(g, pred, present))
    return out


def channel_alone(rows: list[dict], channel: str, taxonomy: str) -> dict:
    """The raw channel's own answer on the rows that have it (the "expert alone" baseline)."""
    have = [r for r in rows if channel in r["channels"]]
    if not have:
        return {"n": 0}
    probs = np.stack([channel_distribution(channel, r["channels"][channel], taxonomy) for r in have])
    return score(have, probs, taxonomy)


def table(named: dict[str, dict]) -> str:
    def cell(v):
        return "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))

    lines = ["| system | " + " | ".join(COLUMNS) + " |", "|" + "---|" * (len(COLUMNS) + 1)]
    lines += [f"| {name} | " + " | ".join(cell(m.get(c)) for c in COLUMNS) + " |" for name, m in named.items()]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--taxonomy", required=True)
    ap.add_argument("--train", required=True, type=Path)
    ap.add_argument("--dev", required=True, type=Path)
    ap.add_argument("--channels", default=None, help="comma list; default: every channel in the train rows")
    ap.add_argument("--no-bias", action="store_true",
                    help="fix the per-class biases at 0 (the pool keeps the channels' ranking; T from dev)")
    ap.add_argument("--l2", type=float, default=1.0, help="pull toward the prior, in pseudo-observations")
    ap.add_argument("--out", type=Path, default=None, help="asset path (default affectllm/assets/decision/)")
    ap.add_argument("--report-dir", type=Path, default=None,
                    help="default eval/results/decision-<taxonomy>-dev/")
    args = ap.parse_args(argv)
    tax = get_taxonomy(args.taxonomy)
    train, dev = load_rows(args.train), load_rows(args.dev)
    seen = sorted({c for r in train for c in r["channels"]}, key=lambda c: (c == LLM_CHANNEL, c))
    channels = args.channels.split(",") if args.channels else seen
    subsets = [channels]
    if LLM_CHANNEL in channels and len(channels) > 1:
        subsets.append([c for c in channels if c != LLM_CHANNEL])
    if len(channels) > 1:
        subsets += [[c] for c in channels]
    results = compare_channel_subsets(train, dev, tax.name, subsets, l2=args.l2)
    best = pick_on_dev(results)
    pool = best["pool"]
    dropped = [c for c in channels if c not in pool.weights]
    if dropped:
        pool = replace(pool, weights={**pool.weights, **{c: 0.0 for c in dropped}},
                       coverage={**pool.coverage, **derive_coverage(train, dropped, tax.name)})
    chose = (f"{best['channels']} chosen by dev NLL ({len(dev)} rows) among {[r['channels'] for r in results]}"
             + (f"; {dropped} kept at weight 0" if dropped else ""))
    pool = replace(pool, fitted_on={**pool.fitted_on, "channels": chose})
    if args.no_bias:  # class biases trade macro-F1 for accuracy; keep each channel's own ranking
        pool = calibrate_temperature(replace(pool, bias={y: 0.0 for y in pool.bias},
                                             fitted_on={**pool.fitted_on, "bias": "fixed at 0 (--no-bias)"}), dev)
    pool = choose_confident_threshold(pool, train)

    named = {f"{c} alone (raw)": channel_alone(dev, c, tax.name) for c in channels}
    for r in results:
        lifts, unlocked = prepare(r["pool"], dev)
        named["pooled: " + "+".join(r["channels"])] = score(dev, r["pool"].probabilities(lifts, unlocked)[0],
                                                            tax.name)
    lifts, unlocked = prepare(pool, dev)
    named["shipped (chosen, guard threshold from train)"] = score(dev, pool.probabilities(lifts, unlocked)[0], tax.name)
    asset = pool.save(args.out)
    asset = asset.resolve().relative_to(REPO) if asset.resolve().is_relative_to(REPO) else asset
    out_dir = args.report_dir or REPO / "eval" / "results" / f"decision-{tax.name}-dev"
    out_dir.mkdir(parents=True, exist_ok=True)
    chosen = "pooled: " + "+".join(best["channels"])
    reliability_diagram(best["dev"]["confidences"], best["dev"]["correct"], out_dir / "reliability.png",
                        title=f"{chosen} on {args.dev.name} (ECE {best['dev']['ece']:.3f})")
    (out_dir / "metrics.json").write_text(json.dumps({"systems": named, "chosen": chosen,
                                                      "pool": pool.to_json()}, indent=2) + "\n")
    nobias = "; per-class biases fixed at 0 (--no-bias; the 'pooled' rows below have them fitted)" if args.no_bias else ""
    text = (f"# Decision for {tax.name}\n\ntrain: `{args.train}` ({len(train)} rows); dev: `{args.dev}` "
            f"({len(dev)} rows); L2 {args.l2}{nobias}.\nChosen on dev NLL: **{chosen}**; asset `{asset}` "
            f"({pool.n_parameters} parameters, T = {pool.temperature:.3f}, weights "
            f"{ {c: round(w, 3) for c, w in pool.weights.items()} }).\n\nDev (T of each pooled row was set on "
            f"this dev set; raw channels use their own probabilities, on the rows that have them):\n\n"
            f"{table(named)}\n\n![reliability](reliability.png)\n")
    (out_dir / "report.md").write_text(text)
    print(table(named))
    print(f"chosen: {chosen}; asset {asset}; report {out_dir / 'report.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
