"""Score prediction files: ``metrics.json``, ``report.md`` and figures for one eval folder.

    >>> from eval.score import score
    >>> metrics = score("runs/eval/emodb-dev")          # or: affectllm eval score runs/eval/emodb-dev

Reads the folder's ``run.json`` (written by ``eval.runner``: which files hold which system, the
exact command) or, without it, ``predictions.jsonl`` plus ``baselines/*.jsonl``. Every system is
scored the same way (:func:`score_records`); ``metrics.json`` holds the chosen model's block at
its top level and each baseline's block under ``baselines``.

Conventions (all metrics come from ``eval.metrics``):
- Unlabelled items (no gold label in the taxonomy) are left out and counted (``n_unlabelled``).
- An item whose line has an error, or whose answer is outside the taxonomy, counts as wrong
  (an *unmapped* prediction), never dropped: a failure is not allowed to raise accuracy.
- ``uar``, ``macro_f1`` and ``weighted_f1`` average over the taxonomy classes present in gold
  (``classes_scored``); ``macro_f1_all`` averages over every taxonomy class (absent ones score 0).
- Multi-label taxonomies (GoEmotions): single-label metrics and ECE use the items with exactly
  one gold label (``single_label_subset``); ``multilabel`` scores every item with the predicted
  label as a one-element set (micro/macro F1, hit rate = the prediction is one of the gold labels).
- ECE uses the items whose line has probabilities (``n_ece``); None when none has.
- Explanation metrics (``explanation``) are over every line of an LLM system, errors included
  (a failed item is not well formed and cites nothing).

Deliberately not here: generating predictions (``eval.generate``), plotting (``eval.figures``),
markdown (``eval.report``).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from affectllm.io import jsonl
from affectllm.io.files import atomic_write_json, atomic_write_text
from affectllm.knowledge.taxonomy import get_taxonomy
from affectllm.decision.calibration import confidence_summary
from eval import metrics as M
from eval.explanation_metrics import verifier_block

log = logging.getLogger(__name__)

PRIMARY = "model"
HEADLINE = ("n", "accuracy", "uar", "macro_f1", "weighted_f1", "ece", "unmapped", "n_errors")


def load_predictions(path: str | Path) -> list[dict]:
    """The lines of a predictions file, one per id (a repeated id keeps its last line).

    A torn last line (a run still writing, or killed) is skipped with a warning; a bad line
    before it raises ValueError naming the line.
    """
    by_id: dict[str, dict] = {}
    for rec in jsonl.read(path, torn="skip_last"):
        by_id[rec["id"]] = rec
    return list(by_id.values())


def _mean(xs: Sequence[float]) -> float | None:
    return round(float(np.mean(xs)), 4) if xs else None


def _single_label_block(gold: list[str], pred: list[str | None], labels: list[str]) -> dict:
    full = M.classification_report(gold, pred, labels)
    present = [lab for lab in labels if lab in set(gold)]
    return {"accuracy": full["accuracy"], "war": full["war"],
            "uar": M.uar(gold, pred, present), "macro_f1": M.macro_f1(gold, pred, present),
            "weighted_f1": M.weighted_f1(gold, pred, present), "macro_f1_all": full["macro_f1"],
            "classes_scored": present, "unmapped": full["unmapped"], "per_class": full["per_class"],
            "labels": labels, "confusion": full["confusion"]}


def _explanation_block(recs: list[dict]) -> dict:
    ns = [SimpleNamespace(well_formed=bool(r.get("well_formed")), consistent=bool(r.get("consistent")))
          for r in recs]
    out = {"n": len(recs), "well_formed_rate": M.well_formed_rate(ns), "consistency_rate": M.consistency_rate(ns),
           "grounding": M.grounding([r.get("cited_aus") or [] for r in recs],
                                    [r.get("evidence_aus") or [] for r in recs]),
           "items_citing_aus": sum(bool(r.get("cited_aus")) for r in recs),
           "length_words": M.length_stats([r.get("rationale") for r in recs if r.get("rationale")])}
    refs = [r for r in recs if r.get("reference")]
    if refs:
        out["rouge_l"] = M.rouge_l_corpus([r["reference"] for r in refs], [r.get("rationale") for r in refs])
        out["n_rouge"] = len(refs)
    return out


def _decision_block(recs: list[dict]) -> dict | None:
    """How often the decided answer differs from the LLM's own label, and which channels spoke."""
    decided = [r for r in recs if r.get("decision")]
    if not decided:
        return None
    used = Counter(c for r in decided for c in r["decision"].get("channels_used", []))
    return {"n": len(decided), "channels_used": dict(used),
            "llm_overruled": sum(r.get("llm_emotion") not in (None, r.get("pred")) for r in decided),
            "guard_applied": sum(bool(r["decision"].get("guard_applied")) for r in decided)}


def score_records(records: Sequence[dict], taxonomy: str | None = None) -> dict:
    """All metrics of one system's lines (see module docstring for the conventions)."""
    if taxonomy is None:
        taxonomy = next((r["taxonomy"] for r in records if r.get("taxonomy")), None)
    tax = get_taxonomy(taxonomy)
    labels = list(tax.labels)
    labelled = [r for r in records if r.get("gold")]
    errors = [r for r in records if r.get("error")]
    block: dict = {"system": records[0].get("system") if records else None,
                   "model": records[0].get("model") if records else None, "taxonomy": tax.name,
                   "n_records": len(records), "n_unlabelled": len(records) - len(labelled),
                   "n_errors": len(errors), "error_examples": [r["error"] for r in errors[:3]]}
    single = [r for r in labelled if len(r["gold"]) == 1] if tax.multi_label else labelled
    gold = [r["gold"][0] for r in single]
    pred = [r.get("pred") if r.get("pred") in labels else None for r in single]
    block["n"] = len(single)
    block.update(_single_label_block(gold, pred, labels))
    counts = Counter(r.get("pred") if r.get("pred") in labels else "unmapped" for r in labelled)
    block["predicted_counts"] = dict(counts.most_common())  # all labelled items: a constant answer shows here
    if tax.multi_label:
        block["single_label_subset"] = True
        gsets = [r["gold"] for r in labelled]
        psets = [[r["pred"]] if r.get("pred") else [] for r in labelled]
        # Labels seen in gold or predictions (sklearn's default): a prediction of a class absent
        # from gold is still a false positive.
        present = [lab for lab in labels if any(lab in g for g in gsets) or any(lab in p for p in psets)]
        block["multilabel"] = {"n": len(labelled), "hit_rate": M.hit_rate(gsets, [r.get("pred") for r in labelled]),
                               "micro_f1": M.multilabel_micro_f1(gsets, psets, present),
                               "macro_f1": M.multilabel_macro_f1(gsets, psets, present)}
    with_p = [r for r in single if r.get("probabilities")]
    block["n_ece"] = len(with_p)
    block["ece"] = None
    if with_p:  # ECE (10 bins), the share of answers at p >= 0.99 and how often those are right
        confs, correct = M.top_confidences([r["probabilities"] for r in with_p], [r["gold"][0] for r in with_p])
        block["calibration"] = confidence_summary(confs, correct)
        block["ece"] = block["calibration"]["ece"]
        block["channels_decided"] = _decision_block(with_p)
    if any("rationale" in r for r in records):
        block["explanation"] = _explanation_block(list(records))
        block["verifier"] = verifier_block([r for r in records if r.get("rationale")], tax.name)
        drafted = [r for r in records if r.get("rationale") and r.get("model_verifier") is not None]
        block["model_verifier"] = verifier_block([{**r, "verifier": r["model_verifier"]} for r in drafted],
                                                 tax.name)  # items the LLM wrote a draft for
        sources = Counter(r.get("rationale_source") for r in records if r.get("rationale"))
        block["rationale_sources"] = {str(k): v for k, v in sources.items()}
    au_recs = [r for r in records if r.get("gold_aus")]
    if au_recs:
        gold_aus = [r["gold_aus"] for r in au_recs]
        block["au"] = {"n": len(au_recs),  # perceived: the face AUs found; cited: those the rationale names
                       "perceived_f1": M.au_f1(gold_aus, [r.get("evidence_aus") for r in au_recs]),
                       "cited_f1": M.au_f1(gold_aus, [r.get("cited_aus") for r in au_recs])}
    keys = sorted({k for r in records for k in (r.get("timings") or {})})
    block["timings_mean_s"] = {k: _mean([r["timings"][k] for r in records if k in (r.get("timings") or {})])
                               for k in keys}
    return block


# ---- a folder ---------------------------------------------------------------------------------

def prediction_files(run_dir: Path) -> tuple[dict[str, Path], dict]:
    """System name -> predictions file, and the run description (empty without run.json)."""
    run_file = run_dir / "run.json"
    run = json.loads(run_file.read_text()) if run_file.is_file() else {}
    if run.get("files"):
        files = {name: run_dir / rel for name, rel in run["files"].items()}
    else:
        files = {PRIMARY: run_dir / "predictions.jsonl"} if (run_dir / "predictions.jsonl").is_file() else {}
        files.update({p.stem: p for p in sorted((run_dir / "baselines").glob("*.jsonl"))})
    return {k: v for k, v in files.items() if v.is_file()}, run


def score(run_dir: str | Path, figures: bool = True) -> dict:
    """Score every system of ``run_dir``; write ``metrics.json``, ``report.md`` and figures there."""
    from eval.report import render_report

    run_dir = Path(run_dir)
    files, run = prediction_files(run_dir)
    if not files:
        raise FileNotFoundError(f"{run_dir}: no predictions.jsonl or baselines/*.jsonl to score")
    records = {name: load_predictions(path) for name, path in files.items()}
    taxonomy = run.get("taxonomy") or next((r["taxonomy"] for rs in records.values() for r in rs), None)
    blocks = {name: score_records(rs, taxonomy) for name, rs in records.items() if rs}
    primary = PRIMARY if PRIMARY in blocks else next(iter(blocks))
    metrics = {**blocks[primary], "primary": primary, "run": run,
               "baselines": {k: v for k, v in blocks.items() if k != primary}}
    figs = {}
    if figures:
        from eval.figures import write_figures

        figs = write_figures(run_dir, blocks, records, primary)
    metrics["figures"] = {k: str(Path(v).relative_to(run_dir)) for k, v in figs.items()}
    atomic_write_json(run_dir / "metrics.json", metrics)
    atomic_write_text(run_dir / "report.md", render_report(metrics, records))
    return metrics
