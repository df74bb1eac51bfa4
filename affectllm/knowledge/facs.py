"""FACS vocabulary that the product path needs without the shared data folder.

The full tables (muscles, EMFACS prototypes) are read by ``affectllm.knowledge.emfacs`` (with
``../shared/data/knowledge``); here are only the standard FACS names of the Action Units that
``perception.au`` estimates, and the FACS intensity letters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

# Standard FACS names (Ekman, Friesen & Hager 2002) of the AUs we estimate from landmarks.
AU_NAMES: dict[str, str] = {
    "AU1": "inner brow raiser",
    "AU2": "outer brow raiser",
    "AU4": "brow lowerer",
    "AU5": "upper lid raiser",
    "AU6": "cheek raiser",
    "AU7": "lid tightener",
    "AU9": "nose wrinkler",
    "AU10": "upper lip raiser",
    "AU12": "lip corner puller",
    "AU14": "dimpler",
    "AU15": "lip corner depressor",
    "AU17": "chin raiser",
    "AU20": "lip stretcher",
    "AU23": "lip tightener",
    "AU24": "lip pressor",
    "AU25": "lips part",
    "AU26": "jaw drop",
    "AU43": "eyes closed",
}

# FACS intensity letters: 0 = absent, A trace, B slight, C marked, D severe, E maximum.
INTENSITY_LETTERS = "ABCDE"
INTENSITY_WORDS = {"A": "trace", "B": "slight", "C": "marked", "D": "pronounced", "E": "maximum"}

# An AU counts as present from this intensity (0-5 scale) on: the lower edge of "A".
PRESENCE_THRESHOLD = 0.5


def au_key(au: str | int) -> str:
    """Normalise ``12``, ``"12"``, ``"au12"``, ``"AU 12"`` to ``"AU12"``."""
    s = str(au).upper().replace(" ", "")
    if not s.startswith("AU"):
        s = "AU" + s
    num = s[2:]
    if not num.isdigit():
        raise ValueError(f"not an Action Unit: {au!r}")
    return f"AU{int(num)}"


def intensity_letter(intensity: float) -> str | None:
    """FACS letter for a 0-5 intensity, or None below :data:`PRESENCE_THRESHOLD`.

    Bins: [0.5,1.5) A, [1.5,2.5) B, [2.5,3.5) C, [3.5,4.5) D, [4.5,5] E.
    """
    if intensity < PRESENCE_THRESHOLD:
        return None
    idx = min(int(intensity - PRESENCE_THRESHOLD), 4)
    return INTENSITY_LETTERS[idx]


# A set of AUs as callers hold them: spellings ("AU12", "au 12", 12), a comma/space separated
# string, or {AU: intensity} where an AU counts when its intensity reaches PRESENCE_THRESHOLD.
AUCollection = Iterable[str | int] | Mapping[str, float] | str | None


def au_set(aus: AUCollection) -> set[str]:
    """Normalised AU keys of a collection (spellings, a separated string, or {AU: intensity} above PRESENCE_THRESHOLD); None is the empty set."""
    if aus is None:
        return set()
    if isinstance(aus, str):
        aus = [a for a in re.split(r"[,;\s]+", aus) if a]
    if isinstance(aus, Mapping):
        return {au_key(k) for k, v in aus.items() if v is not None and float(v) >= PRESENCE_THRESHOLD}
    return {au_key(a) for a in aus}
