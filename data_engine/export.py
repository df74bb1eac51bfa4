"""Training-record shapes and what a build leaves behind besides them: report and datasets folder.

- :func:`sft_record` / :func:`rl_record`: one item as the SFT chat record (``messages`` = system,
  user, assistant) and the RL prompt record (``messages`` = system, user), in the format shared with
  ``train/`` and ``eval/`` (see the lead's record spec). Both also carry ``observations`` (the
  ``Observations.to_dict()`` the rationale was verified against, so anyone can re-verify offline)
  and ``meta`` (template seed, support level, generator).
- :func:`build_report` / :func:`write_report`: counts per label and split, AU frequencies, rejection
  reasons, source problems and three examples, as ``report.json`` and ``report.md``.
- :func:`save_hf`: ``sft.jsonl`` / ``rl.jsonl`` as Hugging Face ``datasets`` folders (a
  ``DatasetDict`` by split). Arrow needs one schema per column, so the dict-valued columns whose
  keys vary by item (``media``, ``features``, ``gold_aus``, ``observations``, ``meta``) are stored
  there as JSON strings; everything else is as in the JSONL files.

Deliberately not here: deciding what goes in (``build``), checking it (``verify``).
"""

from __future__ import annotations

import json
import shutil
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Mapping

from affectllm.knowledge.facs import au_key
from affectllm.io.files import atomic_dir, atomic_write_json, atomic_write_text
from affectllm.perception.observations import Observations
from affectllm.explanation.prompt import build_messages
from affectllm.io import jsonl
from data_engine.sample import Sample
from data_engine.verify import category

JSON_COLUMNS = ("media", "features", "gold_aus", "observations", "meta")
N_EXAMPLES = 3


def sft_record(sample: Sample, obs: Observations, assistant: str, *, labels: list[str], taxonomy: str,
               evidence: Mapping[str, str] | None = None, features: dict[str, str] | None = None,
               meta: dict | None = None, decided: tuple[str, float] | None = None) -> dict:
    """The SFT chat record of one item (messages from ``explanation.prompt.build_messages`` + the answer).
    ``decided``: the (label, probability) the prompt hands the model and the rationale argues for;
    the record then carries them as ``answer`` / ``probability`` (the gold labels stay in ``labels``)."""
    messages = build_messages(obs, taxonomy=taxonomy, evidence=evidence, decided=decided)
    messages.append({"role": "assistant", "content": assistant})
    extra = {"answer": decided[0], "probability": round(float(decided[1]), 4)} if decided else {}
    return {
        "id": sample.id, "source": sample.source, "split": sample.split, "label": labels[0],
        "labels": list(labels), "taxonomy": taxonomy, "messages": messages, "media": dict(sample.media),
        "features": dict(features or {}), "evidence_aus": evidence_aus(obs), "gold_aus": sample.gold_aus,
        "speaker": sample.speaker, "observations": obs.to_dict(), "meta": dict(meta or {}), **extra,
    }


def evidence_aus(obs: Observations) -> list[str] | None:
    """Active AUs of the main face; None when no face was seen (the AU-grounding reward then abstains)."""
    return obs.evidence_aus() if obs.main_face is not None else None


def rl_record(sft: dict) -> dict:
    """The RL prompt record: the SFT record whose ``messages`` stop before the answer (the prompt)."""
    out = dict(sft)
    out["messages"] = [m for m in sft["messages"] if m["role"] != "assistant"]
    return out


def with_assistant(record: dict, text: str, **meta: Any) -> dict:
    """A copy of an SFT record whose assistant turn is ``text`` (meta updated)."""
    out = dict(record)
    out["messages"] = [dict(m) for m in record["messages"][:-1]] + [{"role": "assistant", "content": text}]
    out["meta"] = {**record.get("meta", {}), **meta}
    return out


# ---- report ----------------------------------------------------------------------------------------

def build_report(out_dir: str | Path, *, config: dict, sources: list[dict]) -> dict:
    """Counts and examples of a finished (or partial) build, read from its journals."""
    out_dir = Path(out_dir)
    by_label_split: dict[str, Counter] = defaultdict(Counter)
    by_source_split: dict[str, Counter] = defaultdict(Counter)
    splits, aus, aus_by_label, levels, generators = Counter(), Counter(), defaultdict(Counter), Counter(), Counter()
    examples: list[dict] = []
    n = 0
    for r in jsonl.read(out_dir / "sft.jsonl"):
        n += 1
        split = r.get("split") or "none"
        splits[split] += 1
        by_label_split[r["label"]][split] += 1
        by_source_split[r["source"]][split] += 1
        for au in r.get("evidence_aus") or []:
            aus[au] += 1
            aus_by_label[r["label"]][au] += 1
        levels[r.get("meta", {}).get("level", "?")] += 1
        generators[r.get("meta", {}).get("generator", "?")] += 1
        if len(examples) < N_EXAMPLES and r["label"] not in {e["label"] for e in examples}:
            examples.append({"id": r["id"], "label": r["label"], "split": split,
                             "user": r["messages"][1]["content"], "assistant": r["messages"][-1]["content"]})
    stages, cats, reasons, rejected_by_source = Counter(), Counter(), Counter(), Counter()
    m = 0
    for r in jsonl.read(out_dir / "rejected.jsonl"):
        m += 1
        stages[r.get("stage", "?")] += 1
        rejected_by_source[r.get("source", "?")] += 1
        for reason in r.get("reasons", []):
            cats[f"{r.get('stage', '?')}/{category(reason)}"] += 1
            reasons[reason] += 1
    return {
        "config": config,
        "records": n, "rejected": m,
        "splits": dict(sorted(splits.items())),
        "by_label_split": {k: dict(sorted(v.items())) for k, v in sorted(by_label_split.items())},
        "by_source_split": {k: dict(sorted(v.items())) for k, v in sorted(by_source_split.items())},
        "au_frequency": dict(sorted(aus.items(), key=lambda kv: (-kv[1], au_key(kv[0])))),
        "au_frequency_by_label": {k: dict(v.most_common(5)) for k, v in sorted(aus_by_label.items())},
        "support_levels": dict(sorted(levels.items())),
        "generators": dict(sorted(generators.items())),
        "rejections": {"by_stage": dict(stages.most_common()), "by_category": dict(cats.most_common()),
                       "by_source": dict(rejected_by_source.most_common()),
                       "top_reasons": dict(reasons.most_common(30))},
        "sources": sources,
        "examples": examples,
    }


def _table(rows: list[list], head: list[str]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def report_markdown(rep: dict) -> str:
    """The report as Markdown (what a person reads after a build)."""
    splits = sorted({s for v in rep["by_label_split"].values() for s in v})
    out = ["# Data build report", "",
           f"Sources: {', '.join(rep['config'].get('sources', []))}  ",
           f"Records: **{rep['records']}** kept, **{rep['rejected']}** rejected or skipped; "
           f"seed {rep['config'].get('seed')}, limit per source {rep['config'].get('limit_per_source')}.", "",
           "## Records per label and split", "",
           _table([[lab, *(v.get(s, 0) for s in splits), sum(v.values())]
                   for lab, v in rep["by_label_split"].items()], ["label", *splits, "total"]), "",
           "## Evidence support of the gold label", "",
           _table([[k, v] for k, v in rep["support_levels"].items()], ["level", "records"]), "",
           "## Action units cited as evidence", "",
           _table([[au, c] for au, c in rep["au_frequency"].items()], ["AU", "records"]) if rep["au_frequency"]
           else "No face evidence in this build.", "",
           "## Rejections", ""]
    rej = rep["rejections"]
    if rej["by_category"]:
        out += [_table([[k, v] for k, v in rej["by_category"].items()], ["stage/category", "count"]), "",
                "Most frequent reasons:", ""]
        out += [f"- {v} x {k}" for k, v in list(rej["top_reasons"].items())[:15]]
    else:
        out.append("None.")
    out += ["", "## Sources", ""]
    for s in rep["sources"]:
        out.append(f"- **{s['spec']}**: {s.get('samples', 0)} item(s) read, stats {s.get('stats', {})}, "
                   f"{len(s.get('problems', []))} problem(s) shown of {s.get('n_problems', 0)}; "
                   f"split by {s.get('split_by')}; speaker overlap across splits: {s.get('split_overlap', 0)}")
        out += [f"  - {p['file']}:{p['line']}: {p['reason']}" for p in s.get("problems", [])[:10]]
    out += ["", "## Examples", ""]
    for e in rep["examples"]:
        out += [f"### {e['id']} ({e['label']}, {e['split']})", "", "```text", e["user"], "```", "",
                "```text", e["assistant"], "```", ""]
    return "\n".join(out) + "\n"


def write_report(out_dir: str | Path, rep: dict) -> tuple[Path, Path]:
    """``report.json`` and ``report.md``, written atomically."""
    out_dir = Path(out_dir)
    return (atomic_write_json(out_dir / "report.json", rep),
            atomic_write_text(out_dir / "report.md", report_markdown(rep)))


# ---- Hugging Face datasets --------------------------------------------------------------------

def _hf_row(r: dict) -> dict:
    return {k: (json.dumps(v, ensure_ascii=False) if k in JSON_COLUMNS else v) for k, v in r.items()}


def save_hf(out_dir: str | Path, kinds: tuple[str, ...] = ("sft", "rl")) -> dict[str, Path]:
    """``DIR/hf_{kind}``: a ``datasets.DatasetDict`` by split built from ``DIR/{kind}.jsonl``.

    Load with ``datasets.load_from_disk(DIR / "hf_sft")["train"]``. Folders are replaced whole
    (built aside, then renamed), never left half-written.
    """
    import datasets  # heavy (pyarrow): imported only when a datasets folder is wanted

    out_dir = Path(out_dir)
    paths = {}
    for kind in kinds:
        by_split: dict[str, list[dict]] = defaultdict(list)
        for r in jsonl.read(out_dir / f"{kind}.jsonl"):
            by_split[r.get("split") or "train"].append(_hf_row(r))
        final = out_dir / f"hf_{kind}"
        if final.exists():
            shutil.rmtree(final)
        with atomic_dir(final) as tmp:
            dd = datasets.DatasetDict({s: datasets.Dataset.from_list(rows) for s, rows in sorted(by_split.items())})
            dd.save_to_disk(str(tmp))
        paths[kind] = final
    return paths
