"""Dataset label names and AU annotations -> affectllm vocabulary, for the dataset readers.

Each reader keeps its own explicit code table (``{1: "surprise", ...}``): label *codes* are
dataset knowledge and belong next to the parser of that dataset. This module holds only what
they share: the canonical names, the synonyms that label *words* use across sets ("angry",
"happy", "joy"), and the flags a Sample carries when a label lies outside Ekman-7.

What it deliberately does not do: parse free text (model answers) -- that is
``affectllm.explanation.parse`` / ``affectllm.knowledge.taxonomy``. Dataset labels are closed vocabularies, so an
exact lookup is the honest behaviour; anything not in the table is kept verbatim and flagged.
"""

from __future__ import annotations

import math
import re

from affectllm.knowledge.facs import INTENSITY_LETTERS, au_key

EKMAN7 = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
# Outside Ekman-7 but kept under their own names: EmoDB has boredom, AffectNet has contempt.
EXTRA = ("boredom", "contempt")
CANONICAL = EKMAN7 + EXTRA

# Label words seen in public sets (adjective, noun, abbreviation forms) -> canonical name.
SYNONYMS: dict[str, str] = {
    "anger": "anger", "angry": "anger", "ang": "anger", "mad": "anger",
    "disgust": "disgust", "disgusted": "disgust", "dis": "disgust",
    "fear": "fear", "fearful": "fear", "afraid": "fear", "scared": "fear", "fea": "fear",
    "happiness": "happiness", "happy": "happiness", "joy": "happiness", "hap": "happiness",
    "sadness": "sadness", "sad": "sadness",
    "surprise": "surprise", "surprised": "surprise", "sur": "surprise",
    "neutral": "neutral", "neu": "neutral",  # not "calm": RAVDESS keeps calm apart from neutral
    "boredom": "boredom", "bored": "boredom",
    "contempt": "contempt", "contemptuous": "contempt",
}


def canonical_label(raw: object) -> str | None:
    """Canonical taxonomy name of a dataset label word, or None when it has no mapping."""
    if raw is None:
        return None
    key = str(raw).strip().lower().replace("_", " ")
    return SYNONYMS.get(key)


def map_labels(raws: list[str]) -> tuple[list[str], dict]:
    """Map label words for a generic reader; unknown words are kept (lower-cased) and flagged.

    Returns ``(labels, meta_flags)``: ``meta_flags`` has ``unmapped_labels`` for words with no
    mapping and ``outside_ekman7`` when any label is not one of the Ekman-7 names.
    """
    labels: list[str] = []
    unmapped: list[str] = []
    for raw in raws:
        word = str(raw).strip()
        if not word:
            continue
        name = canonical_label(word)
        if name is None:
            name = word.lower()
            unmapped.append(word)
        if name not in labels:  # a label listed twice is one label
            labels.append(name)
    return labels, label_flags(labels, unmapped)


def label_flags(labels: list[str], unmapped: list[str] | None = None) -> dict:
    """Meta flags for labels: ``outside_ekman7`` (contempt, boredom, ...) and ``unmapped_labels``."""
    flags: dict = {}
    if any(lab not in EKMAN7 for lab in labels):
        flags["outside_ekman7"] = True
    if unmapped:
        flags["unmapped_labels"] = list(unmapped)
    return flags


_AU_TOKEN = re.compile(r"^(?:AU)?\s*(\d+)\s*([A-E])?\s*(?:[:=]\s*(\S+))?$", re.IGNORECASE)


def _intensity(value: object, token: object) -> float:
    if isinstance(value, str) and value.strip().upper() in tuple(INTENSITY_LETTERS):
        return float(INTENSITY_LETTERS.index(value.strip().upper()) + 1)  # FACS A..E = 1..5
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"AU intensity {value!r} in {token!r} is not a number or FACS letter")
    if not math.isfinite(x) or not 0 <= x <= 5:
        raise ValueError(f"AU intensity {value!r} in {token!r} outside 0-5")
    return x


def parse_aus(value: object) -> dict[str, float | None] | None:
    """Gold AUs from an annotation field, as ``{"AU6": 3.0, "AU12": None}``.

    Accepts ``"AU6:3,AU12:4"`` (also ``;`` or ``|`` separated, ``=`` for ``:``, ``"AU12C"`` with
    a FACS letter, bare ``"12"``), a list of such tokens, or a dict ``{AU: intensity}``.
    Intensity None means "present, intensity not given". Empty string / None -> None (the
    item has no AU annotation); an empty list -> ``{}`` (annotated: no AU active).
    Raises ValueError naming the bad token.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, dict):
        out: dict[str, float | None] = {}
        for k, v in value.items():
            try:
                key = au_key(k)
            except ValueError:
                raise ValueError(f"not an Action Unit: {k!r}")
            out[key] = None if v is None else _intensity(v, k)
        return out
    if isinstance(value, str):
        if not value.strip():
            return None
        tokens: list[object] = [t for t in re.split(r"[,;|]", value) if t.strip()]
    elif isinstance(value, (list, tuple)):
        tokens = list(value)
    else:
        raise ValueError(f"AU annotation of type {type(value).__name__} not understood")
    out = {}
    for tok in tokens:
        m = _AU_TOKEN.match(str(tok).strip())
        if not m:
            raise ValueError(f"not an AU token: {tok!r} (expected like 'AU12:3' or 'AU12')")
        num, letter, val = m.groups()
        if letter and val:
            raise ValueError(f"AU token {tok!r} gives both a letter and a value")
        out[f"AU{int(num)}"] = _intensity(letter or val, tok) if (letter or val) else None
    return out
