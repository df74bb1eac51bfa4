"""``report.md`` of an eval folder: the exact command, tables of every system, figures, examples.

Deliberately not here: the numbers themselves (``eval.score``) and the plots (``eval.figures``).
"""

from __future__ import annotations


def _f(x, digits: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _systems_table(blocks: dict[str, dict]) -> list[str]:
    multi = any("multilabel" in b for b in blocks.values())
    head = ["system", "n", "accuracy", "UAR", "macro F1", "weighted F1", "ECE (10 bins)", "share p>=0.99",
            "acc. at p>=0.99", "unmapped", "errors"]
    if multi:
        head += ["hit rate (all)", "micro F1 (all)", "macro F1 (all)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, b in blocks.items():
        cal = b.get("calibration") or {}
        row = [name, b["n"], b["accuracy"], b["uar"], b["macro_f1"], b["weighted_f1"], b["ece"],
               cal.get("share_p_ge_0.99"), cal.get("acc_p_ge_0.99"), b["unmapped"], b["n_errors"]]
        if multi:
            ml = b.get("multilabel", {})
            row += [ml.get("hit_rate"), ml.get("micro_f1"), ml.get("macro_f1")]
        lines.append("| " + " | ".join(_f(x) for x in row) + " |")
    return lines


def _per_class_table(blocks: dict[str, dict], primary: str) -> list[str]:
    labels = blocks[primary]["labels"]
    names = list(blocks)
    head = ["class", "support", *[f"F1 {n}" for n in names], f"P {primary}", f"R {primary}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for lab in labels:
        pc = blocks[primary]["per_class"][lab]
        row = [lab, pc["support"], *[blocks[n]["per_class"][lab]["f1"] for n in names], pc["precision"], pc["recall"]]
        lines.append("| " + " | ".join(_f(x) for x in row) + " |")
    return lines


def _explanation_lines(blocks: dict[str, dict]) -> list[str]:
    rows = [(n, b["explanation"]) for n, b in blocks.items() if "explanation" in b]
    if not rows:
        return []
    head = ["system", "well-formed", "consistent", "AUs cited", "grounding precision", "hallucination rate",
            "items citing AUs", "words (mean)"]
    lines = ["## Explanations", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n, e in rows:
        g = e["grounding"]
        cited = g["n_cited"] > 0  # with nothing cited, precision and hallucination rate are undefined
        lines.append("| " + " | ".join(_f(x) for x in (n, e["well_formed_rate"], e["consistency_rate"], g["n_cited"],
                                                       g["precision"] if cited else None,
                                                       g["hallucination_rate"] if cited else None,
                                                       e["items_citing_aus"], e["length_words"]["mean"])) + " |")
    lines += ["", "Grounding: a cited AU is grounded when the perceived face shows it (present on the main face); "
              "hallucination rate = cited AUs not shown / cited AUs. Rates are over every line, failed items included."]
    if any("rouge_l" in e for _, e in rows):
        lines.append("ROUGE-L against reference rationales: " + ", ".join(
            f"{n} {_f(e['rouge_l'])} (n={e['n_rouge']})" for n, e in rows if "rouge_l" in e) + ".")
    return lines + [""]


def _verifier_lines(blocks: dict[str, dict]) -> list[str]:
    """Rationale verifier rates (explanation.verify) per LLM system: the shown rationale, and the
    LLM's own before any template fallback."""
    rows = []
    for name, b in blocks.items():
        for which, key in (("shown", "verifier"), ("LLM's own", "model_verifier")):
            v = b.get(key) or {}
            rates, stats = v.get("flag_rates"), v.get("rationale_stats") or {}
            if not rates:
                continue
            src = b.get("rationale_sources") or {}
            rows.append([f"{name} ({which})", rates.get("n"), rates.get("any"), rates.get("wrong_modality"),
                         rates.get("conclusion_mismatch"), rates.get("false_agreement"),
                         rates.get("invented_number"), rates.get("invented_time"), rates.get("invented_au"),
                         rates.get("cut_section"), rates.get("confidence_mismatch"), stats.get("distinct_ratio"),
                         stats.get("mean_length_words"),
                         f"{src.get('model', 0)}/{src.get('template', 0)}" if which == "shown" else "-"])
    if not rows:
        return []
    head = ["rationales", "n", "any flag", "wrong modality", "conclusion != answer", "false agreement",
            "invented number", "invented time", "invented AU", "cut section", "confidence mismatch", "distinct",
            "mean words", "model/template"]
    return (["## Rationale verifier", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            + ["| " + " | ".join(_f(x) for x in r) + " |" for r in rows] + [""])


def _examples(records: list[dict], k: int = 3) -> list[str]:
    shown = [r for r in records if r.get("rationale") and r.get("gold")][:k]
    if not shown:
        return []
    lines = ["## Examples (first items of the chosen model)", ""]
    for r in shown:
        lines += [f"**{r['id']}** gold {', '.join(r['gold'])}, predicted {r.get('pred')}", "", "```text",
                  r["rationale"].strip(), "```", ""]
    return lines


def render_report(metrics: dict, records: dict[str, list[dict]]) -> str:
    """Markdown report of ``metrics`` as written by ``eval.score.score``."""
    run = metrics.get("run") or {}
    primary = metrics["primary"]
    blocks = {primary: {k: v for k, v in metrics.items() if k not in ("baselines", "run", "figures", "primary")},
              **metrics["baselines"]}
    title = f"{run.get('source', '?')}" + (f" ({run['split']} split)" if run.get("split") else "")
    out = [f"# Evaluation: {title}", ""]
    if run.get("command"):
        out += ["Command:", "", "```bash", run["command"], "```", ""]
    facts = [f"- model: `{metrics.get('model') or run.get('model')}`; taxonomy `{metrics['taxonomy']}`",
             f"- items scored: {metrics['n']} (lines {metrics['n_records']}, unlabelled left out "
             f"{metrics['n_unlabelled']}, failed {metrics['n_errors']} -- failed items count as wrong)"]
    if run.get("limit"):
        facts.append(f"- `--limit {run['limit']}`: a deterministic subset (smallest seeded hashes of the ids, "
                     f"seed {run.get('seed', 0)}) of {run.get('n_available', '?')} items, kept to finish in time")
    if run.get("prior_from"):
        facts.append(f"- majority baseline: most frequent label of {run['prior_from']} "
                     f"(`{run.get('majority_label')}`)")
    for name, why in (run.get("skipped") or {}).items():
        facts.append(f"- not run: `{name}` ({why})")
    if metrics.get("single_label_subset"):
        facts.append("- multi-label taxonomy: accuracy, UAR, F1s and ECE are over the items with exactly one "
                     "gold label; the '(all)' columns score every item with the prediction as a one-label set")
    facts.append(f"- UAR / macro F1 / weighted F1 average the classes present in gold "
                 f"({len(metrics['classes_scored'])} of {len(metrics['labels'])}); unmapped = answers outside the "
                 "taxonomy and failed items")
    for name, b in blocks.items():
        if b.get("predicted_counts"):
            facts.append(f"- `{name}` answered: " + ", ".join(f"{k} {v}" for k, v in b["predicted_counts"].items()))
    if run.get("seconds"):
        facts.append("- wall time (s, summed over resumed invocations): "
                     + ", ".join(f"{k} {v}" for k, v in run["seconds"].items()))
    if metrics.get("timings_mean_s"):
        facts.append("- mean seconds per item: " + ", ".join(
            f"{k} {_f(v, 2)}" for k, v in metrics["timings_mean_s"].items() if k != "batch_llm_s"))
    out += facts + ["", "## Label metrics", ""] + _systems_table(blocks) + [""]
    out += ["## Per class", ""] + _per_class_table(blocks, primary) + [""]
    out += _explanation_lines(blocks)
    out += _verifier_lines(blocks)
    figs = metrics.get("figures") or {}
    if figs:
        out += ["## Figures", ""] + [f"![{name}]({rel})" for name, rel in figs.items()] + [""]
    errs = metrics.get("error_examples") or []
    if errs:
        out += ["## Failures (first ones)", ""] + [f"- {e}" for e in errs] + [""]
    out += _examples(records.get(primary, []))
    return "\n".join(out).rstrip() + "\n"
