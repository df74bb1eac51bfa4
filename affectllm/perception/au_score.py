"""Continuous, unclipped AU scores for ranking frames and faces.

``au.au_intensities`` clips every AU to the FACS-like 0-5 scale, so everything below the rest
threshold is 0.0: a subtle closed-mouth smile and a neutral face tie at AU12 = 0. For ranking
(which frame smiles more, which photo of a pair is the smiling one) the same rules are read
without the clip:

- z rules: ``score = (z - Z_REST) / Z_PER_UNIT`` (negative below rest, no upper cap);
- ratio rules (AU25, AU26, AU43): the same linear map as ``au._lin`` without the clip.

So ``clip(score, 0, 5) == intensity`` for every AU except where ``au_intensities`` applies an
interlock (AU26 capped by AU25, AU5/AU7 zeroed by closed eyes); those interlocks are presence
decisions and stay in the intensity (``_r``/``_c``), not in the score (``_s``).

Deliberately not here: new rules or thresholds (``au``), presence decisions (``_c`` comes from
the intensity and ``knowledge.facs.PRESENCE_THRESHOLD``).
"""

from __future__ import annotations

from affectllm.perception import au as au_rules


def _lin(v: float, lo: float, hi: float) -> float:
    return float((v - lo) / (hi - lo) * 5.0)


def au_scores(measures: dict[str, float], stats: dict[str, dict[str, float]],
              baseline: dict[str, float] | None = None) -> dict[str, float]:
    """AU -> unclipped score (same units as the 0-5 intensity) from ``au.raw_measures`` output.

    ``stats`` and ``baseline`` as in ``au.au_intensities``.
    """
    rest = {k: (baseline or {}).get(k, stats[k]["mean"]) for k in stats}
    out: dict[str, float] = {}
    for rule in au_rules.AU_RULES:
        z = sum(w * s * (measures[m] - rest[m]) / stats[m]["sd"] for m, s, w in rule.terms)
        z /= sum(w for _, _, w in rule.terms)
        out[rule.au] = float((z - au_rules.Z_REST) / au_rules.Z_PER_UNIT)
    m, lo, hi = au_rules.LIPS_PART
    out["AU25"] = _lin(measures[m] - max(0.0, rest[m]), lo, hi)
    m, lo, hi = au_rules.JAW_DROP
    out["AU26"] = _lin(measures[m] / rest[m] - 1.0, lo, hi)
    m, lo, hi = au_rules.EYE_CLOSED
    out["AU43"] = _lin(1.0 - measures[m] / rest[m], lo, hi)
    return {au: round(out[au], 4) for au in au_rules.AU_ORDER}
