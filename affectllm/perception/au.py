"""Action Units estimated from face-mesh geometry (no AU model exists offline).

Each AU is a *proxy*: a distance or height on the frontalised mesh (``geometry.frontalize``:
pose removed, units of the inter-ocular distance, y up, origin between the eye centres) that
the AU's muscle changes. An intensity on the FACS-like 0-5 scale says how far the measure
departs from a *rest* level:

- **z rules** (most AUs): ``z = sign * (x - rest) / sd`` with ``rest``/``sd`` the mean and
  spread of the measure over neutral faces (``calibration.measure_stats()``; for video the
  rest is the person's own baseline, see :func:`au_intensities`). Several measures of one AU
  are averaged (weights in :data:`AU_RULES`). Intensity ``= clip((z - Z_REST) / Z_PER_UNIT, 0, 5)``:
  with ``Z_REST = 1`` and ``Z_PER_UNIT = 1`` an AU is present (0.5) from 1.5 standard
  deviations beyond the neutral population's rest, and reaches E (4.5) at 5.5 sd.
- **ratio rules** (AU25, AU26, AU43): lips apart, jaw opening and eye closure are read against
  fixed fractions (:data:`LIPS_PART`, :data:`JAW_DROP`, :data:`EYE_CLOSED`) because a neutral
  population has almost no spread there (closed lips are closed).

The table with landmark indices, formulas and the FACS definitions they stand for is
``docs/au_rules.md``. What this module deliberately does not do: run MediaPipe, classify
emotions, or claim FACS-coder accuracy (a landmark mesh sees shape, not wrinkles or bulges).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from affectllm.knowledge.facs import AU_NAMES, PRESENCE_THRESHOLD
from affectllm.perception.observations import AUObs

Z_REST = 1.0  # sd beyond rest still counted as rest (people differ at rest)
Z_PER_UNIT = 1.0  # sd per intensity unit

# Landmarks (MediaPipe 478-point mesh). "R" is the subject's right (image left).
BROW_INNER = (107, 336)  # upper edge of the brow, medial end
BROW_INNER2 = (55, 285)  # lower edge, medial end
BROW_LOWER = (55, 285, 65, 295, 52, 282)  # lower brow edge, medial half (AU4 pulls it down)
BROW_OUTER = (70, 300)
BROW_OUTER2 = (46, 276)
EYE_OUT, EYE_IN = (33, 263), (133, 362)
LID_UP, LID_LO = (159, 386), (145, 374)
LID_UP2, LID_LO2 = ((158, 160), (385, 387)), ((153, 144), (380, 373))
CHEEK = (50, 280)  # malar cheek below the eye (moves up with AU6)
CHEEK2 = (117, 346)
ALAR = (129, 358)  # nose wings
MOUTH_CORNER = (61, 291)
LIP_UP_OUT, LIP_UP_IN, LIP_LO_IN, LIP_LO_OUT = 0, 13, 14, 17
SUBNASALE, NOSE_TIP, CHIN = 2, 1, 152


def _pair_mean_y(p, pair):
    return (p[pair[0], 1] + p[pair[1], 1]) / 2


def _eye_corner_y(p):
    """Mean height of the four eye corners (the lid-independent eye line)."""
    return (p[EYE_OUT[0], 1] + p[EYE_IN[0], 1] + p[EYE_OUT[1], 1] + p[EYE_IN[1], 1]) / 4


def raw_measures(p: np.ndarray) -> dict[str, float]:
    """Shape measures of one frontalised face ``p`` [478 x 3] (reference units, y up).

    Heights are signed y differences (positive = first point above the second); all are
    symmetric averages of both sides, so one occluded side halves, not breaks, a measure.
    """
    eye_y = _eye_corner_y(p)
    up_lid = np.mean([p[[LID_UP[0], *LID_UP2[0]], 1].mean() - (p[EYE_OUT[0], 1] + p[EYE_IN[0], 1]) / 2,
                      p[[LID_UP[1], *LID_UP2[1]], 1].mean() - (p[EYE_OUT[1], 1] + p[EYE_IN[1], 1]) / 2])
    lo_lid = np.mean([p[[LID_LO[0], *LID_LO2[0]], 1].mean() - (p[EYE_OUT[0], 1] + p[EYE_IN[0], 1]) / 2,
                      p[[LID_LO[1], *LID_LO2[1]], 1].mean() - (p[EYE_OUT[1], 1] + p[EYE_IN[1], 1]) / 2])
    corner_y = _pair_mean_y(p, MOUTH_CORNER)
    lip_mid_y = (p[LIP_UP_IN, 1] + p[LIP_LO_IN, 1]) / 2
    corner_z = (p[MOUTH_CORNER[0], 2] + p[MOUTH_CORNER[1], 2]) / 2
    return {
        # Brow heights are taken in the rigid frame (origin between the eye centres), not
        # against the eye corners: lid and cheek actions (AU6/AU7) move the corners.
        "brow_inner_h": (_pair_mean_y(p, BROW_INNER) + _pair_mean_y(p, BROW_INNER2)) / 2,
        "brow_outer_h": (_pair_mean_y(p, BROW_OUTER) + _pair_mean_y(p, BROW_OUTER2)) / 2,
        "brow_low_h": float(np.mean(p[list(BROW_LOWER), 1])),
        "brow_gap": abs(p[BROW_INNER2[1], 0] - p[BROW_INNER2[0], 0]),
        "upper_lid_h": up_lid,  # upper lid above the corner line
        "lower_lid_h": lo_lid,  # lower lid relative to the corner line (negative at rest)
        "eye_open": up_lid - lo_lid,
        "cheek_h": (_pair_mean_y(p, CHEEK) + _pair_mean_y(p, CHEEK2)) / 2 - eye_y,
        "alar_h": _pair_mean_y(p, ALAR) - eye_y,
        "nose_lip": p[SUBNASALE, 1] - p[LIP_UP_OUT, 1],  # upper lip below the nose
        "corner_h": corner_y - p[SUBNASALE, 1],  # lip corners relative to the nose base
        "corner_vs_mid": corner_y - lip_mid_y,  # corners above the lip midline
        "mouth_w": abs(p[MOUTH_CORNER[1], 0] - p[MOUTH_CORNER[0], 0]),
        "corner_depth": p[LIP_UP_OUT, 2] - corner_z,  # corners behind the lip front
        "lip_thick": (p[LIP_UP_OUT, 1] - p[LIP_UP_IN, 1]) + (p[LIP_LO_IN, 1] - p[LIP_LO_OUT, 1]),
        "lip_gap": max(0.0, p[LIP_UP_IN, 1] - p[LIP_LO_IN, 1]),
        "chin_lip": p[LIP_LO_OUT, 1] - p[CHIN, 1],  # lower lip above the chin
        "jaw": p[SUBNASALE, 1] - p[CHIN, 1],  # nose base to chin
    }


MEASURE_NAMES = tuple(raw_measures(np.zeros((478, 3))).keys())


@dataclass(frozen=True)
class AURule:
    """``terms``: (measure, sign, weight); sign +1 when the AU increases the measure."""

    au: str
    terms: tuple[tuple[str, int, float], ...]


# z rules. Cross-talk is damped by pairing measures (e.g. AU12 needs corners up *and* out).
AU_RULES: tuple[AURule, ...] = (
    AURule("AU1", (("brow_inner_h", +1, 1.0),)),
    AURule("AU2", (("brow_outer_h", +1, 1.0),)),
    AURule("AU4", (("brow_low_h", -1, 0.6), ("brow_gap", -1, 0.4))),
    AURule("AU5", (("upper_lid_h", +1, 1.0),)),
    AURule("AU6", (("cheek_h", +1, 0.5), ("lower_lid_h", +1, 0.5))),
    AURule("AU7", (("lower_lid_h", +1, 0.5), ("eye_open", -1, 0.5))),
    AURule("AU9", (("alar_h", +1, 0.7), ("brow_low_h", -1, 0.3))),
    AURule("AU10", (("nose_lip", -1, 1.0),)),
    AURule("AU12", (("corner_vs_mid", +1, 0.4), ("corner_h", +1, 0.3), ("mouth_w", +1, 0.3))),
    AURule("AU14", (("corner_depth", +1, 0.6), ("corner_vs_mid", -1, 0.4))),  # back, not up (vs AU12)
    AURule("AU15", (("corner_vs_mid", -1, 0.6), ("corner_h", -1, 0.4))),
    AURule("AU17", (("chin_lip", -1, 1.0),)),
    AURule("AU20", (("mouth_w", +1, 0.6), ("corner_vs_mid", -1, 0.4))),
    AURule("AU23", (("mouth_w", -1, 0.5), ("lip_thick", -1, 0.5))),
    AURule("AU24", (("lip_thick", -1, 1.0),)),
)

# ratio rules: (measure, value at intensity 0, value at intensity 5)
LIPS_PART = ("lip_gap", 0.02, 0.40)  # inner-lip gap in inter-ocular units
JAW_DROP = ("jaw", 0.06, 0.60)  # jaw opening: increase over rest, as a fraction of rest
EYE_CLOSED = ("eye_open", 0.60, 0.95)  # eye closure: fraction of the rest opening lost

AU_ORDER = tuple(AU_NAMES)  # AU1 ... AU43, the 18 we report


def measure_directions() -> dict[str, int]:
    """Measure -> +1 / -1 when every AU reading it moves it that way, 0 when AUs disagree.

    Used to find a person's rest value in a video: the low end of a +1 measure, the high end
    of a -1 measure, the median of a measure that AUs push both ways (e.g. mouth width).
    """
    signs: dict[str, set[int]] = {m: set() for m in MEASURE_NAMES}
    for rule in AU_RULES:
        for m, s, _ in rule.terms:
            signs[m].add(s)
    for m, s in ((LIPS_PART[0], +1), (JAW_DROP[0], +1), (EYE_CLOSED[0], -1)):
        signs[m].add(s)
    return {m: (next(iter(v)) if len(v) == 1 else 0) for m, v in signs.items()}


def personal_baseline(rows: list[dict[str, float]], stats: dict[str, dict[str, float]],
                      pct: float = 10.0, clamp_sd: float = 1.5) -> dict[str, float]:
    """A person's rest measures from many frames of them (video).

    Per measure: the ``pct`` percentile on the side where no AU is acting (see
    :func:`measure_directions`), clamped to ``clamp_sd`` population sd around the neutral mean,
    so a clip that smiles throughout cannot make a smile the rest.
    """
    out = {}
    for m, d in measure_directions().items():
        v = np.array([r[m] for r in rows], dtype=np.float64)
        q = np.percentile(v, pct if d > 0 else 100 - pct) if d else np.median(v)
        mu, sd = stats[m]["mean"], stats[m]["sd"]
        out[m] = float(np.clip(q, mu - clamp_sd * sd, mu + clamp_sd * sd))
    return out


def _lin(v: float, lo: float, hi: float) -> float:
    return float(np.clip((v - lo) / (hi - lo) * 5.0, 0.0, 5.0))


def au_intensities(measures: dict[str, float], stats: dict[str, dict[str, float]],
                   baseline: dict[str, float] | None = None) -> dict[str, float]:
    """AU -> intensity 0-5 from :func:`raw_measures` output.

    ``stats``: measure -> {"mean", "sd"} of neutral faces. ``baseline``: measure -> rest value
    of this person (video); it replaces the population mean, the population sd is kept.
    """
    rest = {k: (baseline or {}).get(k, stats[k]["mean"]) for k in stats}
    out: dict[str, float] = {}
    for rule in AU_RULES:
        z = sum(w * s * (measures[m] - rest[m]) / stats[m]["sd"] for m, s, w in rule.terms)
        z /= sum(w for _, _, w in rule.terms)
        out[rule.au] = float(np.clip((z - Z_REST) / Z_PER_UNIT, 0.0, 5.0))
    m, lo, hi = LIPS_PART
    out["AU25"] = _lin(measures[m] - max(0.0, rest[m]), lo, hi)
    m, lo, hi = JAW_DROP
    out["AU26"] = _lin(measures[m] / rest[m] - 1.0, lo, hi)
    m, lo, hi = EYE_CLOSED
    out["AU43"] = _lin(1.0 - measures[m] / rest[m], lo, hi)
    # Jaw drop without parted lips is not visible as AU26 (FACS scores it with AU25).
    if out["AU25"] < PRESENCE_THRESHOLD:
        out["AU26"] = min(out["AU26"], out["AU25"])
    # Closed eyes make the lid measures meaningless.
    if out["AU43"] >= PRESENCE_THRESHOLD:
        out["AU5"] = 0.0
        out["AU7"] = 0.0
    return {au: round(out.get(au, 0.0), 3) for au in AU_ORDER}


def to_au_obs(intensities: dict[str, float]) -> list[AUObs]:
    """Intensities -> ``AUObs`` list in :data:`AU_ORDER` with the presence threshold applied."""
    return [AUObs(au=au, intensity=float(intensities.get(au, 0.0)),
                  present=bool(intensities.get(au, 0.0) >= PRESENCE_THRESHOLD)) for au in AU_ORDER]
