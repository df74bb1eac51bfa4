"""Run an :class:`~affectllm.inference.Explainer` over dataset samples into a predictions JSONL.

    >>> from eval.generate import generate
    >>> generate(samples, Explainer.from_name("base", taxonomy="emodb7"), "runs/eval/predictions.jsonl", "emodb7")

One line per item (see :func:`explain_record`): ``id``, ``gold`` (the sample's labels mapped into
the taxonomy), ``pred``, ``probabilities``, the parsed rationale parts, ``cited_aus``,
``evidence_aus``, ``timings`` and ``error`` (an item that fails gets an error line and the run goes
on). The same record shape, minus the rationale, is written by the non-LLM baselines
(``eval.baselines``), so ``eval.score`` reads them all alike.

Resuming: lines are appended durably (``affectllm.io.jsonl.Journal``: write, flush, fsync), a torn
last line left by a killed run is cut on reopen, and ids already written are skipped, so a rerun
finishes the file without losing or repeating an item. A file written by another model or
taxonomy is refused rather than mixed.

Perception: pass ``observations`` (a dict shared by several calls) to perceive each item once
and reuse it across systems; ``transform`` rewrites observations first (modality ablations).

Deliberately not here: choosing samples (``eval.runner``), scoring (``eval.score``).
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from affectllm.decision.channels import expert_scores
from affectllm.errors import InputError
from affectllm.perception.observations import Observations
from affectllm.knowledge.taxonomy import get_taxonomy, resolve_labels
from affectllm.io import jsonl

log = logging.getLogger(__name__)

Perceived = tuple[Observations | None, float, str | None]  # observations, seconds, error
DROPPABLE = ("face", "audio", "text")


# ---- samples ---------------------------------------------------------------------------------------

def gold_labels(sample, taxonomy: str) -> list[str]:
    """A sample's labels as labels of ``taxonomy`` (unmappable ones dropped, order kept)."""
    return resolve_labels(getattr(sample, "labels", None), taxonomy)


def to_item(sample):
    """The perception :class:`Item` of a data_engine ``Sample`` (an Item is returned unchanged)."""
    from affectllm.io.item import Item

    return sample if isinstance(sample, Item) else sample.to_item()


def perceive(samples: Sequence, perceiver: Callable, store: dict[str, Perceived] | None = None,
             progress: bool = False, desc: str = "perceive") -> dict[str, Perceived]:
    """Perceive every sample not yet in ``store`` (``perceiver(item) -> (obs, seconds)``).

    A perceiver that raises gives the item an error instead of stopping the run.
    """
    store = {} if store is None else store
    todo = [s for s in samples if s.id not in store]
    bar = _bar(len(todo), desc, progress)
    for s in todo:
        t0 = time.perf_counter()
        try:
            obs, seconds = perceiver(to_item(s))
            store[s.id] = (obs, seconds, None)
        except Exception as e:  # noqa: BLE001 - one item's failure is that item's error line
            store[s.id] = (None, time.perf_counter() - t0, f"{s.id}: perception failed: {type(e).__name__}: {e}")
        bar.update(1)
    bar.close()
    return store


def drop_modality(obs: Observations, modality: str) -> Observations:
    """A shallow copy of ``obs`` without one modality (``face``, ``audio`` or ``text``)."""
    if modality not in DROPPABLE:
        raise ValueError(f"cannot drop {modality!r}; choose from {DROPPABLE}")
    out = copy.copy(obs)
    out.errors = list(obs.errors)
    if modality == "face":
        out.faces, out.video = [], None
    elif modality == "audio":
        out.audio = None
    else:
        out.text = None
    return out


# ---- records ---------------------------------------------------------------------------------------

def base_record(sample, system: str, model: str | None, taxonomy: str) -> dict:
    """The fields every prediction line starts with."""
    rec = {"id": sample.id, "system": system, "model": model, "taxonomy": taxonomy,
           "gold": gold_labels(sample, taxonomy)}
    if getattr(sample, "gold_aus", None):
        rec["gold_aus"] = sample.gold_aus
    reference = (getattr(sample, "meta", None) or {}).get("rationale")
    if reference:
        rec["reference"] = reference
    return rec


def explain_record(sample, result, system: str, model: str | None, taxonomy: str,
                   perception_s: float = 0.0) -> dict:
    """One prediction line from an :class:`ExplainResult` (see module docstring)."""
    d = result.to_dict()
    rec = base_record(sample, system, model, taxonomy)
    rec.update(pred=d["emotion"], probabilities=d["probabilities"], rationale=d["rationale"],
               observations=d["observations_part"], interpretation=d["interpretation"],
               conclusion=d["conclusion"], cited_aus=d["cited_aus"], evidence_aus=d["evidence_aus"],
               well_formed=d["well_formed"], consistent=d["consistent"],
               # perception_s: the first (uncached) perception, not the reuse inside explain
               timings={**d["timings"], "perception_s": round(perception_s, 3)},
               warnings=d["warnings"], error=d["error"],
               # The decision and the verifier (issues 15/16): what the LLM itself said, what each
               # expert said (the decision's fitting rows), and the shown rationale's flags.
               llm_emotion=d["llm_emotion"], llm_probabilities=d["llm_probabilities"],
               channels=expert_scores(result.observations), decision=d["decision"],
               rationale_source=d["rationale_source"],
               verifier={"ok": not d["rationale_flags"], "flags": d["rationale_flags"]},
               model_verifier=_model_verdict(d))
    return rec


def _model_verdict(d: dict) -> dict | None:
    """The verdict on the LLM's own rationale: rejected (its flags) or shown (the shown flags);
    None when the LLM wrote none (a template shown without drafts: ``prompting.template_modalities``)."""
    if d.get("rationale_source") is None:
        return None
    rejected = [r for r in d.get("rejected_rationales") or [] if r.get("source") == "model"]
    if d["rationale_source"] == "template" and not rejected:
        return None
    flags = rejected[0]["flags"] if rejected else d["rationale_flags"]
    return {"ok": not flags, "flags": flags}


def error_record(sample, system: str, model: str | None, taxonomy: str, error: str,
                 evidence_aus: list[str] | None = None, timings: dict | None = None) -> dict:
    rec = base_record(sample, system, model, taxonomy)
    rec.update(pred=None, probabilities={}, cited_aus=[], evidence_aus=evidence_aus or [],
               well_formed=False, consistent=False, timings=timings or {}, error=error)
    return rec


# ---- the journal ----------------------------------------------------------------------------------

def open_predictions(out_path: str | Path, system: str, model: str | None, taxonomy: str,
                     resume: bool = True) -> jsonl.Journal:
    """The predictions journal at ``out_path``: torn last line cut, done ids loaded.

    ``resume=False`` starts the file over. Raises :class:`InputError` when resuming a file whose
    lines came from another system, model or taxonomy (mixing them would corrupt the scores).
    """
    out_path = Path(out_path)
    if not resume and out_path.exists():
        out_path.unlink()
    journal = jsonl.Journal(out_path)
    if journal.ids:
        first = next(jsonl.read(out_path))
        have = (first.get("system"), first.get("model"), first.get("taxonomy"))
        if have != (system, model, taxonomy):
            journal.close()
            raise InputError(out_path, f"holds predictions of system/model/taxonomy {have}, not "
                             f"{(system, model, taxonomy)}; use another output or restart")
    return journal


def _bar(total: int, desc: str, progress: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="item", disable=not progress, dynamic_ncols=True)


def generate(samples: Iterable, explainer, out_path: str | Path, taxonomy: str, resume: bool = True, *,
             system: str = "model", model: str | None = None,
             observations: dict[str, Perceived] | None = None,
             transform: Callable[[Observations], Observations] | None = None,
             progress: bool = True) -> dict:
    """Explain every sample not yet in ``out_path`` and append one line each (module docstring).

    ``explainer.batch_size`` items share one generate call. ``model`` names the model in the
    lines (checked on resume). Returns ``{"path", "written", "skipped", "errors", "seconds"}``.
    """
    taxonomy = get_taxonomy(taxonomy).name
    if get_taxonomy(explainer.taxonomy).name != taxonomy:
        raise ValueError(f"explainer answers in {explainer.taxonomy!r}, not {taxonomy!r}")
    samples = list(samples)
    store = {} if observations is None else observations
    t_start = time.perf_counter()
    written = errors = 0
    with open_predictions(out_path, system, model, taxonomy, resume) as journal:
        todo = [s for s in samples if s.id not in journal]
        skipped = len(samples) - len(todo)
        bar = _bar(len(samples), system, progress)
        bar.update(skipped)
        step = max(1, int(getattr(explainer, "batch_size", 8)))
        for start in range(0, len(todo), step):
            chunk = todo[start:start + step]
            perceive(chunk, explainer.perceive, store)
            ready, lines = [], {}
            for s in chunk:
                obs, seconds, err = store[s.id]
                if err is None and transform is not None:
                    obs = transform(obs)
                if err is not None:
                    lines[s.id] = error_record(s, system, model, taxonomy, err, timings={"perception_s": seconds})
                else:
                    ready.append((s, obs, seconds))
            try:
                results = explainer.explain_many([obs for _, obs, _ in ready]) if ready else []
            except Exception as e:  # noqa: BLE001 - the chunk's items get error lines, the run goes on
                log.exception("explainer failed on a chunk")
                results = [e] * len(ready)
            for (s, obs, seconds), res in zip(ready, results):
                if isinstance(res, Exception):
                    lines[s.id] = error_record(s, system, model, taxonomy,
                                               f"{s.id}: explain failed: {type(res).__name__}: {res}",
                                               evidence_aus=obs.evidence_aus())
                else:
                    lines[s.id] = explain_record(s, res, system, model, taxonomy, seconds)
            for s in chunk:  # source order, one durable line each
                journal.append(lines[s.id])
                written += 1
                errors += lines[s.id]["error"] is not None
            bar.update(len(chunk))
        bar.close()
    return {"path": str(out_path), "written": written, "skipped": skipped, "errors": errors,
            "seconds": round(time.perf_counter() - t_start, 2)}
