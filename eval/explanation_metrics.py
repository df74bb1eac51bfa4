"""Metrics of the explanations themselves: AU F1, grounding, consistency, ROUGE-L, lengths, verifier rates.

Inputs are aligned lists; explanations are :class:`affectllm.explanation.parse.Explanation` objects (made
by the one parser). AU collections may be lists/sets of AU spellings ("AU12", "au 12", 12) or
``{AU: intensity}`` dicts, where an AU counts when its intensity reaches
``affectllm.knowledge.facs.PRESENCE_THRESHOLD``. Zero denominators give 0.0 (sklearn ``zero_division=0``).

ROUGE-L is implemented here (``rouge-score`` is not installed): the LCS-based F-measure with
beta = 1 over rouge-score's default tokens (lower-cased runs of ``[a-z0-9]``, no stemming).

Whether a rationale is acceptable is decided by the one verifier (``affectllm.explanation.verify``):
:func:`verifier_block` turns its per-item verdicts (a line's ``verifier`` field) into flag rates and
adds :func:`rationale_stats` (distinct-rationale ratio, commonest sentence, mean length), so eval
counts exactly what the data engine and the rewards reject.

Deliberately not here: label metrics (``eval.metrics``), parsing (``affectllm.explanation.parse``) and the
rationale checks themselves (``affectllm.explanation.verify``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from affectllm.explanation.verify import CODES, flag_rates, rationale_stats  # noqa: F401  (re-exported)
from affectllm.knowledge.facs import AUCollection, au_key, au_set


def _div(a: float, b: float) -> float:
    return float(a) / float(b) if b else 0.0



def _pairs(gold: Sequence[AUCollection], pred: Sequence[AUCollection]) -> list[tuple[set[str], set[str]]]:
    if len(gold) != len(pred):
        raise ValueError(f"gold and predictions differ in length: {len(gold)} vs {len(pred)}")
    return [(au_set(g), au_set(p)) for g, p in zip(gold, pred)]


def au_f1(gold: Sequence[AUCollection], pred: Sequence[AUCollection], average: str = "micro",
          aus: Sequence[str] | None = None) -> float:
    """F1 between predicted and gold AU sets per item.

    ``micro`` pools true/false positives and false negatives over items and AUs; ``macro``
    averages each AU's F1 over ``aus`` (default: every AU in gold or predictions, sorted).
    When ``aus`` is given only those AUs are scored, in both modes.
    """
    pairs = _pairs(gold, pred)
    universe = ({au_key(a) for a in aus} if aus is not None
                else set().union(*(g | p for g, p in pairs)) if pairs else set())
    counts = {a: [0, 0, 0] for a in universe}  # tp, fp, fn
    for g, p in pairs:
        for a in (g | p) & universe:
            counts[a][0 if (a in g and a in p) else 1 if a in p else 2] += 1
    if average == "micro":
        tp, fp, fn = (sum(c[i] for c in counts.values()) for i in range(3))
        return _div(2 * tp, 2 * tp + fp + fn)
    if average == "macro":
        return _div(sum(_div(2 * tp, 2 * tp + fp + fn) for tp, fp, fn in counts.values()), len(counts))
    raise ValueError(f"average must be 'micro' or 'macro', not {average!r}")


def au_micro_f1(gold: Sequence[AUCollection], pred: Sequence[AUCollection], aus: Sequence[str] | None = None) -> float:
    return au_f1(gold, pred, "micro", aus)


def au_macro_f1(gold: Sequence[AUCollection], pred: Sequence[AUCollection], aus: Sequence[str] | None = None) -> float:
    return au_f1(gold, pred, "macro", aus)


def grounding(cited: Sequence[AUCollection], evidence: Sequence[AUCollection]) -> dict[str, float]:
    """Pooled over items: ``precision`` = cited AUs present in the evidence / cited AUs,
    ``hallucination_rate`` = cited AUs absent from the evidence / cited AUs (both 0 when nothing
    is cited, so they sum to 1 except then), plus the counts."""
    pairs = _pairs(evidence, cited)
    n_cited = sum(len(c) for _, c in pairs)
    n_grounded = sum(len(c & e) for e, c in pairs)
    return {"precision": _div(n_grounded, n_cited), "hallucination_rate": _div(n_cited - n_grounded, n_cited),
            "n_cited": n_cited, "n_grounded": n_grounded,
            "items_citing": sum(bool(c) for _, c in pairs), "n": len(pairs)}


def grounding_precision(cited: Sequence[AUCollection], evidence: Sequence[AUCollection]) -> float:
    return grounding(cited, evidence)["precision"]


def hallucination_rate(cited: Sequence[AUCollection], evidence: Sequence[AUCollection]) -> float:
    return grounding(cited, evidence)["hallucination_rate"]


def consistency_rate(explanations: Sequence[Any]) -> float:
    """Fraction whose conclusion names the answer-tag label (``Explanation.consistent``)."""
    return _div(sum(bool(e.consistent) for e in explanations), len(explanations))


def well_formed_rate(explanations: Sequence[Any]) -> float:
    """Fraction of ``Explanation.well_formed``."""
    return _div(sum(bool(e.well_formed) for e in explanations), len(explanations))


# ---- text overlap and length --------------------------------------------------------------------


def _tokens(text: str | None) -> list[str]:
    return re.findall(r"[a-z0-9]+", (text or "").lower())


def _lcs(a: list[str], b: list[str]) -> int:
    if len(a) < len(b):
        a, b = b, a
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(reference: str | None, candidate: str | None) -> float:
    """ROUGE-L F1 of one candidate against one reference (0 when either has no tokens)."""
    ref, cand = _tokens(reference), _tokens(candidate)
    lcs = _lcs(ref, cand) if ref and cand else 0
    p, r = _div(lcs, len(cand)), _div(lcs, len(ref))
    return _div(2 * p * r, p + r)


def rouge_l_corpus(references: Sequence[str | None], candidates: Sequence[str | None]) -> float:
    """Mean per-pair ROUGE-L F1."""
    if len(references) != len(candidates):
        raise ValueError(f"references and candidates differ in length: {len(references)} vs {len(candidates)}")
    return _div(sum(rouge_l(r, c) for r, c in zip(references, candidates)), len(references))


def length_stats(texts: Sequence[str | None], unit: str = "words") -> dict[str, float]:
    """n, mean, std (population), min, median, p95 (linear interpolation), max of text lengths.

    ``unit``: ``words`` (whitespace-separated) or ``chars``. No texts: n = 0 and zeros.
    """
    if unit not in ("words", "chars"):
        raise ValueError(f"unit must be 'words' or 'chars', not {unit!r}")
    lengths = np.array([len((t or "").split()) if unit == "words" else len(t or "") for t in texts], dtype=float)
    if lengths.size == 0:
        return {"n": 0, "mean": 0.0, "std": 0.0, "min": 0.0, "median": 0.0, "p95": 0.0, "max": 0.0}
    return {"n": int(lengths.size), "mean": float(lengths.mean()), "std": float(lengths.std()),
            "min": float(lengths.min()), "median": float(np.median(lengths)),
            "p95": float(np.percentile(lengths, 95)), "max": float(lengths.max())}


# ---- the verifier's verdicts --------------------------------------------------------------------


def verifier_block(records: Sequence[Mapping], taxonomy: str | None = None) -> dict:
    """Verifier flag rates and rationale statistics of one system's prediction lines.

    ``flag_rates`` (share of verified lines with each flag code, ``any``, ``n``) uses the lines
    that carry a ``verifier`` verdict (``Verdict.to_dict()``, written at prediction time, when the
    evidence is at hand); ``n_unverified`` counts rationale lines without one, so a run that did
    not verify shows up instead of reading as clean. ``rationale_stats`` covers every rationale.
    """
    with_rationale = [r for r in records if r.get("rationale")]
    verified = [r["verifier"] for r in with_rationale if isinstance(r.get("verifier"), Mapping)]
    return {"flag_rates": flag_rates(verified) if verified else None,
            "n_unverified": len(with_rationale) - len(verified),
            "rationale_stats": rationale_stats([r["rationale"] for r in with_rationale], taxonomy)}
