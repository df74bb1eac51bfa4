"""One evaluation run: a source's items through the chosen model and the baselines, then scores.

    >>> from eval.runner import evaluate
    >>> evaluate("emodb", "runs/eval/emodb-dev", split="dev", model="base")
    # same as: affectllm eval run --source emodb --split dev --model base --out runs/eval/emodb-dev

Steps: read the source (``data_engine.sources.open_source``), keep ``split`` (none: the whole
source) and an optional deterministic ``limit`` subset, pick the taxonomy of its labels, perceive
every item once (the observations are shared by all systems), then write

- ``predictions.jsonl``: the chosen model (``--model``, default ``default_model_name()``);
- ``baselines/<name>.jsonl``: ``majority``, ``fer`` and ``prototype`` (faces only), ``base`` (the
  untrained LLM with textual evidence; skipped when it *is* the chosen model) and the
  ``drop-<modality>`` ablations (the chosen model with one modality removed from its evidence);
- ``run.json`` (what ran, the exact command, which file holds which system), then
  ``metrics.json``, ``report.md`` and ``figures/`` via ``eval.score``.

Rerunning the same command resumes (finished lines are kept, the rest is done); a run.json for
different settings is refused unless ``restart``.

Deliberately not here: the per-item work (``eval.generate``, ``eval.baselines``) and scoring.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from affectllm.errors import InputError
from affectllm.io.files import atomic_write_json
from eval.baselines import FACE_BASELINES, TEXT_BASELINES, VOICE_BASELINES, label_prior, run_baseline
from eval.generate import DROPPABLE, drop_modality, generate, gold_labels, perceive

log = logging.getLogger(__name__)

DEFAULT_BASELINES = ("majority", "fer", "prototype", "voice", "text", "experts", "base")
KNOWN_BASELINES = ("majority", *FACE_BASELINES, *VOICE_BASELINES, *TEXT_BASELINES, "experts", "base")
INSTANT = ("majority", *FACE_BASELINES, *VOICE_BASELINES, *TEXT_BASELINES, "experts")  # no LLM: from perception
RESUME_KEYS = ("source", "split", "limit", "seed", "model", "taxonomy", "cpu_weights", "ids")  # must match to resume a folder


def load_samples(source: str, split: str | None = None, limit: int | None = None,
                 seed: int = 0, ids: str | None = None) -> tuple[list, list, int]:
    """(items to evaluate, the source's train items, items available before ``limit``).

    ``split`` keeps the items of that split (``dev``, ``train``, ...); None keeps them all.
    ``limit`` keeps a seeded-hash subset, in source order (``data_engine.build.subset``).
    ``ids``: a file of item ids, one a line (the source's own ids or without its ``source/``
    prefix), to keep only those, e.g. the decision slice a classifier never trained on.
    """
    from data_engine.build import subset
    from data_engine.sources import open_source
    from data_engine.sources.base import normalize_split

    samples = open_source(source).load(require=True)  # all rows skipped: say why (file:line), exit 2
    if split is not None:
        want = normalize_split(split)
        chosen = [s for s in samples if s.split == want]
        if not chosen:
            have = sorted({s.split or "none" for s in samples})
            raise InputError(source, f"no items in split {split!r}; its splits: {', '.join(have)} "
                             "(leave --split out to evaluate the whole source)")
    else:
        chosen = samples
    if ids is not None:
        wanted = {line.strip() for line in Path(ids).read_text().splitlines() if line.strip()}
        chosen = [s for s in chosen if s.id in wanted or s.id.split("/", 1)[-1] in wanted]
        if not chosen:
            raise InputError(ids, "none of its ids is an item of the chosen source and split")
    chosen_ids = {s.id for s in chosen}
    train = [s for s in samples if s.split == "train" and s.id not in chosen_ids]
    return subset(chosen, limit, seed), train, len(chosen)


def choose_taxonomy(samples: Sequence, override: str | None = None) -> str:
    """The taxonomy of the samples' labels (``data_engine.build.taxonomy_for``), or ``override``."""
    from affectllm.knowledge.taxonomy import get_taxonomy
    from data_engine.build import taxonomy_for

    if override:
        return get_taxonomy(override).name
    found = Counter(taxonomy_for(s) for s in samples if s.labels)
    found.pop(None, None)
    if not found:
        return get_taxonomy(None).name
    if len(found) > 1:
        raise InputError("--source", f"items need different taxonomies {dict(found)}; pass --taxonomy")
    return next(iter(found))


def _default_factory(batch_size: int, max_new_tokens: int | None, cpu_weights: str | None = None) -> Callable:
    def make(name: str, taxonomy: str, perception):
        from affectllm.inference import Explainer

        return Explainer.from_name(name, perception=perception, taxonomy=taxonomy, batch_size=batch_size,
                                   max_new_tokens=max_new_tokens, cpu_weights=cpu_weights)
    return make


def _perceiver(perception, text_expert=None) -> Callable:
    """Perceive one item; with ``text_expert``, also score its typed text (the text channel)."""
    def run(item):
        t0 = time.perf_counter()
        obs = perception.perceive(item)
        if text_expert is not None:
            from affectllm.perception.text_expression import annotate

            skipped = annotate(obs, text_expert)  # letterless text: no text channel for this item
            if skipped:
                obs.errors.append(f"{item.id}: {skipped}")
        return obs, time.perf_counter() - t0
    return run


def _check_resume(out: Path, run: dict, restart: bool) -> dict:
    """The earlier run.json of ``out`` when this run may resume it ({} when none or restart)."""
    import json

    old_file = out / "run.json"
    if restart or not old_file.is_file():
        return {}
    old = json.loads(old_file.read_text())
    diff = {k: (old.get(k), run.get(k)) for k in RESUME_KEYS if old.get(k) != run.get(k)}
    if diff:
        raise InputError(out, f"holds a run with other settings {diff}; use another --out or --restart")
    return old


def evaluate(source: str, out_dir: str | Path, *, split: str | None = None, model: str | None = None,
             limit: int | None = None, baselines: Sequence[str] = DEFAULT_BASELINES,
             drop: Sequence[str] = (), taxonomy: str | None = None, seed: int = 0, restart: bool = False,
             progress: bool = True, command: str | None = None, batch_size: int = 8, max_new_tokens: int | None = None,
             cpu_weights: str | None = None, perception=None, explainer_factory: Callable | None = None,
             text_expert_factory: Callable | None = None, ids: str | None = None) -> dict:
    """Run everything described in the module docstring; returns the metrics dict.

    ``explainer_factory(name, taxonomy, perception) -> Explainer`` builds the LLM systems
    (default ``Explainer.from_name``); ``perception`` (default ``Perception()``) perceives items.
    """
    from affectllm.model.builder import BASE_ALIASES, default_model_name
    from eval.score import score

    unknown = sorted(set(baselines) - set(KNOWN_BASELINES))
    if unknown:
        raise ValueError(f"unknown baseline(s) {unknown}; choose from {KNOWN_BASELINES}")
    bad = sorted(set(drop) - set(DROPPABLE))
    if bad:
        raise ValueError(f"cannot drop {bad}; choose from {DROPPABLE}")
    model = model or default_model_name()
    samples, train, n_available = load_samples(source, split, limit, seed, ids)
    tax = choose_taxonomy(samples, taxonomy)
    out = Path(out_dir)
    run = {"source": source, "split": split, "limit": limit, "seed": seed, "model": model, "taxonomy": tax, "ids": ids,
           "cpu_weights": cpu_weights, "command": command, "n_items": len(samples), "n_available": n_available,
           "n_labelled": sum(bool(gold_labels(s, tax)) for s in samples), "skipped": {}, "files": {}}
    old = _check_resume(out, run, restart)
    out.mkdir(parents=True, exist_ok=True)

    # Which systems run, and why others do not.
    has_face = any(m in s.media for s in samples for m in ("image", "video"))
    has_voice = any(m in s.media for s in samples for m in ("audio", "video"))
    has_text = any(getattr(s, "text", None) for s in samples)
    systems = ["model"]
    for name in baselines:
        if name in FACE_BASELINES and not has_face:
            run["skipped"][name] = "no item has an image or video"
        elif name in VOICE_BASELINES and not has_voice:
            run["skipped"][name] = "no item has audio or video"
        elif name in TEXT_BASELINES and not has_text:
            run["skipped"][name] = "no item has typed text"
        elif name == "base" and (model in BASE_ALIASES):
            run["skipped"][name] = f"the chosen model {model!r} is the base LLM"
        else:
            systems.append(name)
    systems += [f"drop-{m}" for m in drop]
    prior = {}
    if "majority" in systems:
        prior_from, ref = ("the train split of the source", train) if label_prior(train, tax) else \
            ("the evaluated items (the source has no train split)", samples)
        prior = label_prior(ref, tax)
        n_ref = sum(bool(gold_labels(s, tax)) for s in ref)
        run.update(prior_from=f"{prior_from} ({n_ref} labelled items)", majority_label=max(prior, key=prior.get))
    run["files"] = {name: "predictions.jsonl" if name == "model" else f"baselines/{name}.jsonl" for name in systems}
    # Wall seconds per phase, summed over the invocations that built this folder (resumes add up).
    seconds = run["seconds"] = {k: float(v) for k, v in (old.get("seconds") or {}).items()}

    def spent(phase: str, since: float) -> None:
        seconds[phase] = round(seconds.get(phase, 0.0) + time.perf_counter() - since, 1)

    atomic_write_json(out / "run.json", run)

    if perception is None:
        from affectllm.perception.pipeline import Perception

        perception = Perception()
    store: dict = {}
    t0 = time.perf_counter()
    text_expert = None
    if has_text:
        from affectllm.perception.text_expression import shipped

        text_expert = text_expert_factory() if text_expert_factory else shipped()
    perceive(samples, _perceiver(perception, text_expert), store, progress=progress)
    spent("perceive", t0)
    factory = explainer_factory or _default_factory(batch_size, max_new_tokens, cpu_weights)
    explainers: dict[str, object] = {}

    def explainer(name):  # one model in memory at a time: the chosen one is reused by ablations
        if name not in explainers:
            explainers.clear()
            explainers[name] = factory(name, tax, perception)
        return explainers[name]

    # Instant baselines first, then the chosen model and its ablations (one load), then base.
    order = sorted(systems, key=lambda n: (0 if n in INSTANT else 2 if n == "base" else 1))
    for name in order:
        t0 = time.perf_counter()
        path = out / run["files"][name]
        path.parent.mkdir(parents=True, exist_ok=True)
        if name in INSTANT:
            info = run_baseline(name, samples, path, tax, store, prior=prior, prior_from=run.get("prior_from", ""),
                                resume=not restart)
        elif name == "base":
            info = generate(samples, explainer("base"), path, tax, not restart, system="base", model="base",
                            observations=store, progress=progress)
        else:
            transform = None
            if name.startswith("drop-"):
                m = name[len("drop-"):]
                transform = lambda obs, m=m: drop_modality(obs, m)  # noqa: E731
            info = generate(samples, explainer(model), path, tax, not restart, system=name, model=model,
                            observations=store, transform=transform, progress=progress)
        if name not in INSTANT:  # how the LLM's weights were stored (cpu_weights None: the model's default)
            ex = explainer("base" if name == "base" else model)  # the one just used (kept in explainers)
            run.setdefault("llm_weights", {})[name] = getattr(getattr(ex, "model", None), "cpu_weights", None)
        log.info("%s: %s", name, info)
        spent(name, t0)
        atomic_write_json(out / "run.json", run)
    return score(out)
