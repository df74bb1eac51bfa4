"""Build AU-grounded chain-of-thought training data from dataset sources, resumably.

    >>> from data_engine.build import build
    >>> build(["emodb", "faces_london"], "runs/data", limit_per_source=50)   # or: affectllm data build ...

For every Sample of every source: map its labels into a taxonomy, perceive it (``perceive`` callable,
default the perception pipeline), write the templated rationale (``cot``), verify it (``verify``),
optionally let a teacher rewrite it (``teacher``), and append the record. Outputs in ``out_dir``:
``sft.jsonl``, ``rl.jsonl``, ``rejected.jsonl`` (every item not kept, with stage and reasons),
``report.json`` / ``report.md``, ``hf_sft/`` / ``hf_rl/`` (``datasets`` folders) and ``build.json``
(the configuration, checked on resume).

Resuming: each record is appended as one durable line (``jsonl.Journal``); a rerun with the same
configuration cuts a torn last line, skips every id already in ``sft.jsonl`` or ``rejected.jsonl``
and goes on, so an interrupted build ends with the same files as an uninterrupted one -- nothing
lost, nothing twice. ``rl.jsonl`` is derived from ``sft.jsonl`` and caught up if the kill fell
between the two appends. A lock file stops two builds writing one folder.

Splits: a source's own splits are kept (EmoDB's documented speaker split, GoEmotions' files);
otherwise splits are assigned disjoint by speaker/subject when the source has them, else by item,
with ``data_engine.sources.assign_splits``. Held-back test items are never moved.

Deliberately not here: the rationale wording (``cot``), the checks (``verify``), record shapes and
reports (``export``), perception itself.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
from pathlib import Path
from typing import Callable, Mapping

from affectllm.errors import InputError
from affectllm.io.files import atomic_write_json, atomic_write_text
from affectllm.perception.observations import Observations
from affectllm.knowledge.taxonomy import get_taxonomy, resolve_concept, resolve_labels
from affectllm.io import jsonl
from data_engine import export
from affectllm.explanation.template import write_rationale
from data_engine.sample import Sample
from data_engine.verify import verify

log = logging.getLogger(__name__)

BUILD_VERSION = 1  # bump when record contents change, so resuming an old folder is refused
DEFAULT_EVIDENCE = {"face": "both", "audio": "both", "image": "soft"}
# Taxonomy of a source's labels; other sources use Ekman-7 (EmoDB-7 when a label is boredom).
SOURCE_TAXONOMY = {"emodb": "emodb7", "goemotions": "goemotions_ekman"}
OUTPUTS = ("sft.jsonl", "rl.jsonl", "rejected.jsonl", "report.json", "report.md", "hf_sft", "hf_rl")

Perceive = Callable[[Sample], Observations]


# ---- perception ------------------------------------------------------------------------------------

def default_perceive(voice_scores: dict[str, dict[str, float]] | None = None, text_classifier: bool = True,
                     **options) -> Perceive:
    """The product perceiver: ``affectllm.perception.pipeline.Perception`` over a Sample's media.

    ``options`` go to ``Perception`` (``modalities``, ``whisper_name``, ...). ``voice_scores``
    (sample id -> label -> probability) replaces the voice classifier's scores of those samples:
    the out-of-fold scores of the clips it was fitted on (``scripts/train_voice_expression.py
    --oof``), so training records show it as fallible as it is on unheard voices.
    ``text_classifier``: a sample's text is scored by the shipped text expression classifier, with
    its driving words, as inference does (``perception.text_expression.annotate``). The returned
    callable carries ``feature_tag``, which names the encoders in feature-cache keys.
    """
    from affectllm.perception.pipeline import PIPELINE_VERSION, Perception

    perception = Perception(**options)
    voice_scores = voice_scores or {}
    def perceive(sample: Sample) -> Observations:
        obs = perception.perceive(sample.to_item())
        if sample.id in voice_scores and obs.audio is not None and obs.audio.expression:
            obs.audio.expression = dict(voice_scores[sample.id])
        if text_classifier and obs.text and not obs.text_expression:
            from affectllm.perception.text_expression import annotate, shipped

            annotate(obs, shipped())  # shipped() loads the classifier once per process
        return obs

    perceive.feature_tag = (f"{'+'.join(sorted(perception.modalities))}_{perception.whisper_name}_"
                            f"{perception.vision_name}_p{PIPELINE_VERSION}")
    return perceive


def save_features(sample: Sample, obs: Observations, modalities: list[str], tag: str,
                  cache=None) -> dict[str, str]:
    """Store the soft-token features of ``obs`` in the FeatureCache; modality -> cache key.

    Tensors are saved under the modality's name: ``face`` [1 x d], ``audio`` [frames x d],
    ``image`` [tokens x d]. Keys hash the media file's bytes with ``{modality}-{tag}``.
    """
    if not modalities:
        return {}
    from affectllm.perception.cache import FeatureCache, cache_key

    cache = cache or FeatureCache()
    tensors = {"face": obs.main_face.embedding if obs.main_face is not None else None,
               "audio": obs.audio.features if obs.audio is not None else None,
               "image": obs.image.features if obs.image is not None else None}
    files = {"face": sample.media.get("image") or sample.media.get("video"),
             "audio": sample.media.get("audio") or sample.media.get("video"),
             "image": sample.media.get("image") or sample.media.get("video")}
    keys = {}
    for m in modalities:
        t, path = tensors[m], files[m]
        if t is None or path is None:
            continue
        key = cache_key(path, f"{m}-{tag}")
        if key not in cache:
            cache.save(key, {m: t.reshape(1, -1) if t.dim() == 1 else t})
        keys[m] = key
    return keys


# ---- samples ---------------------------------------------------------------------------------------

def taxonomy_for(sample: Sample, override: str | None = None) -> str | None:
    """The taxonomy a sample's labels are expressed in (None: no taxonomy holds its primary label)."""
    if override:
        return get_taxonomy(override).name
    if sample.source in SOURCE_TAXONOMY:
        return SOURCE_TAXONOMY[sample.source]
    for name in ("ekman7", "emodb7"):
        if sample.labels and all(resolve_concept(lab, name) for lab in sample.labels):
            return name
    return None


def assign(samples: list[Sample], seed: int) -> tuple[list[Sample], str]:
    """Samples with splits set, and what they were split by (see module docstring)."""
    from data_engine.sources import assign_splits

    if samples and all(s.split for s in samples):
        return samples, "source"
    key = "speaker" if any(s.speaker for s in samples) else "id"
    return assign_splits(samples, key, seed=seed), key


def subset(samples: list[Sample], limit: int | None, seed: int) -> list[Sample]:
    """``limit`` samples chosen by seeded hash of their ids (spread over speakers and labels), in source order."""
    if limit is None or limit >= len(samples):
        return samples
    keep = set(sorted(range(len(samples)),
                      key=lambda i: hashlib.sha256(f"{seed}:{samples[i].id}".encode()).digest())[:max(limit, 0)])
    return [s for i, s in enumerate(samples) if i in keep]


# ---- one item --------------------------------------------------------------------------------------

class Rejected(Exception):
    """An item that yields no record: ``stage`` says where, ``reasons`` why."""

    def __init__(self, stage: str, reasons: list[str]):
        super().__init__(f"{stage}: {'; '.join(reasons)}")
        self.stage, self.reasons = stage, reasons


def _has_evidence(obs: Observations) -> bool:
    return bool(obs.faces or (obs.audio is not None and (obs.audio.descriptors or obs.audio.transcript.strip()))
                or (obs.text and obs.text.strip()))


def make_record(sample: Sample, perceive: Perceive, *, seed: int, taxonomy: str | None,
                evidence: Mapping[str, str], feature_tag: str, cache=None, teacher=None, decided: bool = False) -> dict:
    """The verified SFT record of one sample, or :class:`Rejected`.

    ``decided``: the record is written as inference runs: the channel experts' calibrated decision
    (``explanation.answer.decide``) is made first, the prompt carries it, and the rationale argues
    for it (hedged where it is uncertain or the cues disagree), whatever the gold label; the gold
    labels stay in the record for evaluation. Otherwise the rationale argues for the gold label."""
    from affectllm.explanation.prompt import soft_modalities

    if not sample.labels:
        raise Rejected("label", ["label: unlabelled item"])
    tax = taxonomy_for(sample, taxonomy)
    labels = resolve_labels(sample.labels, tax) if tax else []
    if not labels or labels[0] != resolve_concept(sample.labels[0], tax):
        raise Rejected("label", [f"label: {sample.labels[0]!r} is in no taxonomy used here"
                                 + (f" ({tax})" if tax else "")])
    try:
        obs = perceive(sample)
    except InputError as e:
        raise Rejected("perception", [f"perception: {e}"])
    except Exception as e:  # noqa: BLE001 - one item's failure must not end the build
        log.exception("perception failed on %s", sample.id)
        raise Rejected("perception", [f"perception: {type(e).__name__}: {e}"])
    if not _has_evidence(obs):
        raise Rejected("perception", [f"perception: {e}" for e in obs.errors] or ["evidence: nothing perceived"])
    answer = None
    if decided:
        from affectllm.explanation.answer import decide

        d = decide(obs, None, tax)
        obs, answer = d.obs, (d.label, d.probability)
    try:
        rationale = write_rationale(sample.id, obs, [answer[0]] if answer else labels, taxonomy=tax, seed=seed,
                                    media=sample.modalities, probability=answer[1] if answer else None)
        text = rationale.render()
    except ValueError as e:
        raise Rejected("cot", [f"format: {e}"])
    features = save_features(sample, obs, soft_modalities(obs, evidence), feature_tag, cache)
    meta = {"seed": seed, "level": rationale.level, "support": rationale.support,
            "runner_up": rationale.runner_up, "generator": "template"}
    if obs.errors:
        meta["perception_errors"] = list(obs.errors)
    record = export.sft_record(sample, obs, text, labels=labels, taxonomy=tax, evidence=evidence,
                               features=features, meta=meta, decided=answer)
    reasons = verify(record, obs)
    if reasons:
        raise Rejected("verify", reasons)
    if teacher is not None:
        result = teacher(record, obs)
        if result.record is None:
            raise Rejected("teacher", result.reasons or ["teacher: no rewrite passed"])
        record = result.record
    return record


# ---- the build -------------------------------------------------------------------------------------

def _lock(out_dir: Path):
    f = open(out_dir / ".lock", "w")
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise InputError(out_dir, "another build is writing to this folder")
    return f


def _check_config(out_dir: Path, config: dict, restart: bool) -> None:
    import json

    path = out_dir / "build.json"
    if restart:
        for name in OUTPUTS:
            p = out_dir / name
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    elif path.exists():
        old = json.loads(path.read_text())
        if old != config:
            diff = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
            raise InputError(out_dir, f"holds a build with other settings ({', '.join(diff)}); "
                             "use another folder or restart=True (--restart) to start over")
    atomic_write_json(path, config)


RETRYABLE = ("perception",)  # stages whose failures may be transient (a missing model, a crash)


def _drop_retryable(path: Path) -> int:
    """Remove retryable rejections from ``rejected.jsonl`` so those items are tried again."""
    if not path.exists():
        return 0
    jsonl.repair(path)
    keep, dropped = [], 0
    for r in jsonl.read(path):
        if r.get("stage") in RETRYABLE:
            dropped += 1
        else:
            keep.append(r)
    if dropped:
        atomic_write_text(path, "".join(jsonl.dumps(r) + "\n" for r in keep))
    return dropped


def _catch_up_rl(sft: jsonl.Journal, rl: jsonl.Journal) -> None:
    # rl lines are written right after their sft line: rl ids are a prefix of sft ids.
    if sft.ids[:len(rl.ids)] != rl.ids:
        raise InputError(rl.path, "rl.jsonl does not follow sft.jsonl; rebuild with --restart")
    missing = sft.ids[len(rl.ids):]
    if missing:
        for r in jsonl.read(sft.path):
            if r["id"] in missing:
                rl.append(export.rl_record(r))


def build(sources: list[str], out_dir: str | os.PathLike, perceive: Perceive | None = None,
          limit_per_source: int | None = None, seed: int = 0, *, taxonomy: str | None = None,
          evidence: Mapping[str, str] | None = None, teacher=None, hf: bool = True, restart: bool = False,
          feature_cache=None, progress: bool = True, source_options: dict | None = None,
          retry_failed: bool = False, decided: bool = False, ids: set[str] | None = None) -> dict:
    """Build (or resume building) the training data of ``sources`` into ``out_dir``; returns the report.

    ``sources`` are ``open_source`` specs (``"emodb"``, ``"manifest:my.csv"``); ``perceive`` maps a
    Sample to Observations (default: :func:`default_perceive`); ``teacher`` an optional
    ``teacher.Rewriter``; ``hf=False`` skips the ``datasets`` folders. ``retry_failed`` tries again
    the items an earlier run rejected at perception (e.g. a model that was missing then).
    ``decided``: records argue for the experts' decision (see :func:`make_record`); ``ids``: only
    these sample ids (e.g. the text classifier's held-out slice, whose scores are honest).
    """
    from tqdm.auto import tqdm

    from data_engine.sources import open_source, split_overlap

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    evidence = dict(evidence or DEFAULT_EVIDENCE)
    config = {"version": BUILD_VERSION, "sources": list(sources), "seed": seed,
              "limit_per_source": limit_per_source, "taxonomy": taxonomy, "evidence": evidence,
              "teacher": getattr(teacher, "name", None) if teacher is not None else None,
              **({"decided": True} if decided else {}),
              **({"ids": sorted(ids)[:3] + [f"... {len(ids)} ids"]} if ids is not None else {})}
    lock = _lock(out_dir)
    try:
        _check_config(out_dir, config, restart)
        perceive = perceive or default_perceive()
        tag = getattr(perceive, "feature_tag", "custom")
        if retry_failed:
            n = _drop_retryable(out_dir / "rejected.jsonl")
            log.info("retrying %d item(s) rejected at perception", n)
        sft, rl, rej = (jsonl.Journal(out_dir / n) for n in ("sft.jsonl", "rl.jsonl", "rejected.jsonl"))
        source_info = []
        try:
            _catch_up_rl(sft, rl)
            for spec in sources:
                src = open_source(spec, **(source_options or {}).get(spec, {}))
                samples, split_by = assign(src.load(), seed)
                if ids is not None:
                    samples = [s for s in samples if s.id in ids]
                samples = subset(samples, limit_per_source, seed)
                overlap = split_overlap(samples, "speaker") if split_by in ("speaker", "source") and \
                    any(s.speaker for s in samples) else {}
                source_info.append({"spec": spec, "kind": src.kind, "samples": len(samples), "stats": dict(src.stats),
                                    "n_problems": len(src.problems), "problems": src.problems[:50],
                                    "split_by": split_by, "split_overlap": len(overlap)})
                todo = [s for s in samples if s.id not in sft and s.id not in rej]
                bar = tqdm(total=len(samples), initial=len(samples) - len(todo), desc=src.kind, unit="item",
                           disable=not progress, dynamic_ncols=True)
                for s in todo:
                    try:
                        record = make_record(s, perceive, seed=seed, taxonomy=taxonomy, evidence=evidence,
                                             feature_tag=tag, cache=feature_cache, teacher=teacher,
                                             decided=decided)
                    except Rejected as r:
                        rej.append({"id": s.id, "source": s.source, "split": s.split, "stage": r.stage,
                                    "reasons": r.reasons})
                    else:
                        sft.append(record)
                        rl.append(export.rl_record(record))
                    bar.update(1)
                    bar.set_postfix(kept=len(sft.ids), rejected=len(rej.ids), refresh=False)
                bar.close()
        finally:
            for j in (sft, rl, rej):
                j.close()
        report = export.build_report(out_dir, config=config, sources=source_info)
        export.write_report(out_dir, report)
        if hf:
            try:
                export.save_hf(out_dir)
            except ImportError as e:  # the JSONL files are the product; the folder is a convenience
                log.warning("datasets folder not written: %s", e)
                report["hf_error"] = f"{type(e).__name__}: {e}"
                export.write_report(out_dir, report)
        return report
    finally:
        lock.close()
