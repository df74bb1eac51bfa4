"""Non-LLM baselines scored beside the model, on the same items and the same perception.

- ``majority``: always the most frequent label of a reference set (the source's train split
  when it has one, else the evaluated items -- the caller says which); its probabilities are
  that set's label frequencies, so its ECE is the calibration of the class prior.
- ``fer``: the face expression classifier alone (FER2013 mini-Xception scores on the main
  face), each class mapped into the taxonomy with :func:`affectllm.knowledge.taxonomy.normalize_label`;
  mass on classes the taxonomy lacks is dropped and the rest renormalised.
- ``voice``: the voice expression classifier alone (``perception.voice_expression``: a linear
  read-out of the Whisper features fitted on EmoDB train speakers), mapped like ``fer``.
- ``prototype``: the EMFACS AU-prototype rule alone (:func:`affectllm.knowledge.emfacs.prototype_rule`
  over the main face's AU intensities), its Ekman label mapped into the taxonomy (a label the
  taxonomy lacks, e.g. surprise in EmoDB-7, is an unmapped prediction). Its match scores are
  recorded under ``scores``; they are not probabilities, so it has no ECE.

- ``text``: the text expression classifier alone (``perception.text_expression``: MiniLM + TF-IDF
  read-out fitted on GoEmotions train), on typed text, mapped like ``fer``.
- ``experts``: the decision layer over the channel experts alone, without the LLM's label scores
  (``decision.pool.pool_for``): what the product would answer if the LLM had no say.

The face baselines give an error line for an item without a face, ``voice`` one without scored speech. Records have the shape of
``eval.generate`` lines, so ``eval.score`` treats every system alike.

Deliberately not here: the LLM systems (``eval.generate``) and choosing which baselines run
(``eval.runner``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from affectllm.decision.channels import expert_scores
from affectllm.decision.pool import pool_for
from affectllm.knowledge.emfacs import match_prototypes
from affectllm.knowledge.taxonomy import fold_scores, get_taxonomy, resolve_concept
from eval.generate import Perceived, base_record, error_record, gold_labels, open_predictions

FACE_BASELINES = ("fer", "prototype")
VOICE_BASELINES = ("voice",)
TEXT_BASELINES = ("text",)
POOLED_BASELINES = ("experts",)
BASELINES = ("majority", *FACE_BASELINES, *VOICE_BASELINES, *TEXT_BASELINES, *POOLED_BASELINES)


def label_prior(samples: Sequence, taxonomy: str) -> dict[str, float]:
    """Frequency of each taxonomy label among the gold labels of ``samples`` (every label of a
    multi-label item counts); all labels listed, in taxonomy order. Empty when nothing is labelled."""
    tax = get_taxonomy(taxonomy)
    counts = Counter(lab for s in samples for lab in gold_labels(s, tax.name))
    total = sum(counts.values())
    return {lab: counts[lab] / total for lab in tax.labels} if total else {}


def _top(probs: dict[str, float]) -> str | None:
    return max(probs, key=probs.get) if probs else None  # max keeps the first of equal values


def majority_record(sample, taxonomy: str, prior: dict[str, float], prior_from: str) -> dict:
    rec = base_record(sample, "majority", None, taxonomy)
    rec.update(pred=_top(prior), probabilities={k: round(v, 4) for k, v in prior.items()},
               prior_from=prior_from, cited_aus=[], evidence_aus=[], timings={}, error=None)
    return rec


def classifier_probabilities(expression: dict[str, float], taxonomy: str) -> dict[str, float]:
    """A classifier's class scores (FER's, the voice classifier's) summed per taxonomy label and
    renormalised over the mapped mass."""
    out = fold_scores(expression, taxonomy)
    total = sum(out.values())
    if total <= 0:
        return {}
    tax = get_taxonomy(taxonomy)
    return {lab: out.get(lab, 0.0) / total for lab in tax.labels}


def face_record(name: str, sample, perceived: Perceived, taxonomy: str) -> dict:
    """The ``fer`` or ``prototype`` line of one item."""
    obs, seconds, err = perceived
    timings = {"perception_s": round(seconds, 3)}
    if err is not None:
        return error_record(sample, name, None, taxonomy, err, timings=timings)
    face = obs.main_face
    evidence = obs.evidence_aus()
    if face is None:
        why = "; ".join(obs.errors) or "no face detected"
        return error_record(sample, name, None, taxonomy, f"{sample.id}: {name} needs a face: {why}",
                            timings=timings)
    rec = base_record(sample, name, None, taxonomy)
    if name == "fer":
        probs = classifier_probabilities(face.expression, taxonomy)
        if not probs:
            return error_record(sample, name, None, taxonomy, f"{sample.id}: no expression scores in the "
                                f"taxonomy ({sorted(face.expression)})", evidence, timings)
        rec.update(pred=_top(probs), probabilities={k: round(v, 4) for k, v in probs.items()},
                   raw={k: round(float(v), 4) for k, v in face.expression.items()})
    elif name == "prototype":
        scores = match_prototypes({a.au: a.intensity for a in face.aus})
        rule = scores[0][0]
        rec.update(pred=resolve_concept(rule, taxonomy), rule_label=rule, probabilities={},
                   scores={e: round(s, 4) for e, s in scores})
    else:
        raise ValueError(f"unknown face baseline {name!r}; choose from {FACE_BASELINES}")
    rec.update(cited_aus=[], evidence_aus=evidence, timings=timings, error=None)
    return rec


def _classifier_record(system: str, sample, perceived: Perceived, taxonomy: str, scores, missing: str) -> dict:
    """One classifier-alone line: ``scores(obs)`` (raw class scores or {}) mapped into the taxonomy;
    ``missing`` says what the item lacked when there are none."""
    obs, seconds, err = perceived
    timings = {"perception_s": round(seconds, 3)}
    if err is not None:
        return error_record(sample, system, None, taxonomy, err, timings=timings)
    raw = scores(obs) or {}
    probs = classifier_probabilities(raw, taxonomy) if raw else {}
    if not probs:
        return error_record(sample, system, None, taxonomy, f"{sample.id}: {system} needs {missing}", timings=timings)
    rec = base_record(sample, system, None, taxonomy)
    rec.update(pred=_top(probs), probabilities={k: round(v, 4) for k, v in probs.items()},
               raw={k: round(float(v), 4) for k, v in raw.items()},
               cited_aus=[], evidence_aus=obs.evidence_aus(), timings=timings, error=None)
    return rec


def voice_record(sample, perceived: Perceived, taxonomy: str) -> dict:
    """The ``voice`` line of one item: the voice classifier's scores mapped into the taxonomy."""
    obs = perceived[0]
    audio = obs.audio if obs is not None else None
    why = ("no speech perceived" if audio is None else
           f"no voice classifier scores in the taxonomy ({', '.join(audio.flags) or sorted(audio.expression)})")
    return _classifier_record("voice", sample, perceived, taxonomy,
                              lambda o: o.audio.expression if o.audio is not None else {}, f"scored speech: {why}")


def text_record(sample, perceived: Perceived, taxonomy: str) -> dict:
    """The ``text`` line of one item: the text classifier's scores mapped into the taxonomy."""
    return _classifier_record("text", sample, perceived, taxonomy, lambda o: o.text_expression,
                              "typed words with letters (none, or the classifier was skipped)")


def experts_record(sample, perceived: Perceived, taxonomy: str) -> dict:
    """The ``experts`` line: the shipped decision pool over the item's experts, no LLM scores."""
    obs, seconds, err = perceived
    timings = {"perception_s": round(seconds, 3)}
    if err is not None:
        return error_record(sample, "experts", None, taxonomy, err, timings=timings)
    pool = pool_for(taxonomy)
    channels = expert_scores(obs, keep=pool.weights)
    if not channels:
        return error_record(sample, "experts", None, taxonomy, f"{sample.id}: no channel expert scored "
                            "this item", timings=timings)
    d = pool.decide(channels)
    rec = base_record(sample, "experts", None, taxonomy)
    rec.update(pred=d.emotion, probabilities={k: round(v, 4) for k, v in d.probabilities.items()},
               channels=channels, cited_aus=[], evidence_aus=obs.evidence_aus(), timings=timings, error=None)
    return rec


def run_baseline(name: str, samples: Sequence, out_path: str | Path, taxonomy: str,
                 store: dict[str, Perceived] | None = None, *, prior: dict[str, float] | None = None,
                 prior_from: str = "", resume: bool = True) -> dict:
    """Write the ``name`` baseline's lines for the samples not yet in ``out_path``.

    ``store`` holds each item's perception (``eval.generate.perceive``) for the face and voice baselines;
    ``prior`` (:func:`label_prior`) is the majority baseline's reference distribution.
    """
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose from {BASELINES}")
    taxonomy = get_taxonomy(taxonomy).name
    if name == "majority" and not prior:
        raise ValueError("the majority baseline needs a non-empty prior (no labelled reference items?)")
    written = 0
    with open_predictions(out_path, name, None, taxonomy, resume) as journal:
        for s in samples:
            if s.id in journal:
                continue
            if name == "majority":
                rec = majority_record(s, taxonomy, prior, prior_from)
            elif name == "voice":
                rec = voice_record(s, store[s.id], taxonomy)
            elif name == "text":
                rec = text_record(s, store[s.id], taxonomy)
            elif name == "experts":
                rec = experts_record(s, store[s.id], taxonomy)
            else:
                rec = face_record(name, s, store[s.id], taxonomy)
            journal.append(rec)
            written += 1
    return {"path": str(out_path), "written": written, "skipped": len(samples) - written}
