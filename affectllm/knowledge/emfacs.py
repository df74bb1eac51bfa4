"""Affect knowledge, in one place: FACS Action Units, EMFACS prototypes, AU -> emotion links, prosody cues.

The data engine writes rationales from these tables, the AU-prototype baseline classifies with
:func:`match_prototypes`, and the parser checks cited AU numbers against :data:`FACS_AU_NUMBERS`.
Everything the product path needs is embedded here as constants (published facts), so nothing
depends on the shared data folder; :func:`load_au_table` optionally reads py-feat's fuller AU table
(muscles, blendshapes) from ``knowledge/facs_au_table_pyfeat_MIT.csv`` when it is present.

Deliberately not here: label sets and synonyms (``affectllm.knowledge.taxonomy``) and AU estimation
(``affectllm.perception.au``). Intensities are FACS-like 0-5 values as in ``affectllm.knowledge.facs``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from affectllm.knowledge.facs import AU_NAMES, PRESENCE_THRESHOLD, au_key

# ---- FACS Action Units ------------------------------------------------------------------------

# Adult FACS codes (Ekman, Friesen & Hager 2002): main and behavioural AUs, head and eye positions.
# The 18 AUs we estimate keep their names from affectllm.knowledge.facs; the rest follow FACS / py-feat.
FACS_AU_NAMES: dict[str, str] = {
    "AU8": "lips toward each other", "AU11": "nasolabial deepener", "AU13": "sharp lip puller",
    "AU16": "lower lip depressor", "AU18": "lip pucker", "AU19": "tongue show", "AU21": "neck tightener",
    "AU22": "lip funneler", "AU27": "mouth stretch", "AU28": "lip suck", "AU29": "jaw thrust",
    "AU30": "jaw sideways", "AU31": "jaw clencher", "AU32": "lip bite", "AU33": "cheek blow",
    "AU34": "cheek puff", "AU35": "cheek suck", "AU36": "tongue bulge", "AU37": "lip wipe",
    "AU38": "nostril dilator", "AU39": "nostril compressor", "AU40": "sniff", "AU41": "lid droop",
    "AU42": "slit", "AU44": "squint", "AU45": "blink", "AU46": "wink",
    "AU51": "head turn left", "AU52": "head turn right", "AU53": "head up", "AU54": "head down",
    "AU55": "head tilt left", "AU56": "head tilt right", "AU57": "head forward", "AU58": "head back",
    "AU61": "eyes turn left", "AU62": "eyes turn right", "AU63": "eyes up", "AU64": "eyes down",
    "AU65": "walleye", "AU66": "cross-eye",
    **AU_NAMES,
}
FACS_AU_NAMES = dict(sorted(FACS_AU_NAMES.items(), key=lambda kv: int(kv[0][2:])))
# AU numbers a rationale may cite; anything else ("AU3", "AU99") is not a FACS Action Unit.
FACS_AU_NUMBERS: frozenset[int] = frozenset(int(k[2:]) for k in FACS_AU_NAMES)

# Muscular basis of the AUs we estimate (FACS manual; as listed in py-feat's AU table).
AU_MUSCLES: dict[str, str] = {
    "AU1": "frontalis, pars medialis", "AU2": "frontalis, pars lateralis",
    "AU4": "corrugator supercilii, depressor supercilii, procerus",
    "AU5": "levator palpebrae superioris", "AU6": "orbicularis oculi, pars orbitalis",
    "AU7": "orbicularis oculi, pars palpebralis", "AU9": "levator labii superioris alaeque nasi",
    "AU10": "levator labii superioris", "AU12": "zygomaticus major", "AU14": "buccinator",
    "AU15": "depressor anguli oris", "AU17": "mentalis", "AU20": "risorius, platysma",
    "AU23": "orbicularis oris", "AU24": "orbicularis oris", "AU25": "depressor labii inferioris",
    "AU26": "masseter relaxed, temporalis", "AU43": "levator palpebrae superioris relaxed",
}

# What each AU usually signals: a short phrase a rationale can use. Common readings from the
# FACS/EMFACS literature; none is diagnostic alone, which is why rationales combine several.
AU_SIGNALS: dict[str, str] = {
    "AU1": "raised inner brows, seen in sadness, worry, fear and surprise",
    "AU2": "raised outer brows, seen in surprise and fear",
    "AU4": "lowered, drawn-together brows, seen in anger, sadness, fear and concentration",
    "AU5": "widened eyes, seen in surprise, fear and the glare of anger",
    "AU6": "raised cheeks narrowing the eyes, the mark of a felt (Duchenne) smile",
    "AU7": "tightened lids, seen in anger, fear and squinting",
    "AU9": "wrinkled nose, the core of disgust",
    "AU10": "raised upper lip, seen in disgust and contempt",
    "AU12": "pulled-up lip corners, a smile, the core of happiness",
    "AU14": "dimpled lip corners, seen in contempt or a suppressed smile",
    "AU15": "pulled-down lip corners, seen in sadness and disgust",
    "AU16": "lowered lower lip, seen in disgust",
    "AU17": "raised chin, seen in sadness, doubt and pouting",
    "AU20": "horizontally stretched lips, seen in fear",
    "AU23": "tightened lips, seen in anger and restraint",
    "AU24": "pressed lips, seen in anger or held-back emotion",
    "AU25": "parted lips, seen in speech, surprise, fear and laughter",
    "AU26": "dropped jaw, seen in surprise, fear and laughter",
    "AU43": "closed eyes, seen in blinking, fatigue or an intense squeeze",
}


def au_name(au: str | int) -> str:
    """FACS name of an AU ("AU12" -> "lip corner puller"); raises ValueError for non-FACS codes."""
    key = au_key(au)
    if key not in FACS_AU_NAMES:
        raise ValueError(f"{au!r} is not a FACS Action Unit")
    return FACS_AU_NAMES[key]


def describe_au(au: str | int) -> str:
    """One line for rationales: "AU12 lip corner puller (zygomaticus major): pulled-up lip corners, ..."."""
    key = au_key(au)
    text = f"{key} {au_name(key)}"
    if key in AU_MUSCLES:
        text += f" ({AU_MUSCLES[key]})"
    if key in AU_SIGNALS:
        text += f": {AU_SIGNALS[key]}"
    return text


def load_au_table(path: str | Path | None = None) -> dict[str, dict[str, str]]:
    """py-feat's AU table (MIT) keyed "AU1"...: name, blendshapes, muscles, category, related.

    ``path`` defaults to ``knowledge/facs_au_table_pyfeat_MIT.csv`` in the shared data folder;
    returns ``{}`` when that folder or file is absent (the embedded tables above still work).
    """
    if path is None:
        from affectllm.paths import data_root

        root = data_root()
        if root is None:
            return {}
        path = root / "knowledge" / "facs_au_table_pyfeat_MIT.csv"
    path = Path(path)
    if not path.is_file():
        return {}
    table = {}
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            table[f"AU{int(row['AU'])}"] = {
                "name": row["FACS Name"].strip().lower(), "blendshapes": row["ARKit Blendshape"].strip(),
                "muscles": row["Muscles"].strip(), "category": row["FACS Category"].strip(),
                "related": row["Related Expression"].strip()}
    return table


# ---- EMFACS prototypes --------------------------------------------------------------------------


@dataclass(frozen=True)
class AUSpec:
    """One AU of a prototype: ``intensity`` a FACS letter or None (any), ``side`` "R"/"L" or None (both)."""

    au: str
    intensity: str | None = None
    side: str | None = None

    def __str__(self) -> str:
        return f"{self.side or ''}{self.au[2:]}{self.intensity or ''}"


def _combo(code: str) -> tuple[AUSpec, ...]:
    """Parse EMFACS notation such as "1+2+5B+26" or "R12A+R14A"."""
    specs = []
    for part in code.split("+"):
        part = part.strip().upper()
        side = part[0] if part[0] in "RL" else None
        part = part[1:] if side else part
        letter = part[-1] if part[-1] in "ABCDE" else None
        num = part[:-1] if letter else part
        specs.append(AUSpec(f"AU{int(num)}", letter, side))
    return tuple(specs)


# Prototypical AU combinations of EMFACS (Ekman & Friesen 1983, EMFACS-7), as commonly tabulated
# (e.g. Matsumoto & Ekman's FACS summaries). Letters are minimum intensities, R = right side only.
EMFACS_CODES: dict[str, str] = {
    "happiness": "6+12",
    "sadness": "1+4+15",
    "surprise": "1+2+5B+26",
    "fear": "1+2+4+5+7+20+26",
    "anger": "4+5+7+23",
    "disgust": "9+15+16",
    "contempt": "R12A+R14A",
}
EMFACS_PROTOTYPES: dict[str, tuple[AUSpec, ...]] = {e: _combo(c) for e, c in EMFACS_CODES.items()}
# Published alternatives to the combinations above (some sources give 9+15+17 for disgust).
EMFACS_VARIANTS: dict[str, tuple[tuple[AUSpec, ...], ...]] = {"disgust": (_combo("9+15+17"),)}

# Emotions the default prototype matcher scores: Ekman-7 without neutral (neutral is scored apart).
PROTOTYPE_EMOTIONS = ("anger", "disgust", "fear", "happiness", "sadness", "surprise")


def prototype_aus(emotion: str) -> tuple[str, ...]:
    """AU keys of an emotion's main EMFACS prototype, e.g. ``("AU6", "AU12")``."""
    if emotion not in EMFACS_PROTOTYPES:
        raise ValueError(f"no EMFACS prototype for {emotion!r}; known: {sorted(EMFACS_PROTOTYPES)}")
    return tuple(s.au for s in EMFACS_PROTOTYPES[emotion])


# Emotions py-feat's AU table relates to each AU beyond the EMFACS prototypes (weaker evidence).
_RELATED: dict[str, tuple[str, ...]] = {
    "AU1": ("sadness", "surprise", "fear"), "AU2": ("surprise", "fear"), "AU4": ("sadness", "fear", "anger"),
    "AU5": ("surprise", "fear", "anger"), "AU6": ("happiness", "disgust", "contempt"), "AU7": ("fear", "anger"),
    "AU9": ("disgust",), "AU11": ("disgust", "fear"), "AU12": ("happiness", "contempt"),
    "AU14": ("contempt",), "AU15": ("sadness", "disgust"), "AU17": ("disgust",), "AU20": ("fear",),
    "AU23": ("anger",), "AU25": ("happiness", "surprise", "fear"), "AU26": ("fear", "surprise"),
    "AU38": ("anger",),
}


def _association_weights() -> dict[str, dict[str, float]]:
    # 1.0: the AU belongs to the emotion's EMFACS prototype (or a published variant);
    # 0.5: py-feat's table relates them; absent: no known link.
    weights: dict[str, dict[str, float]] = {}
    for au, emotions in _RELATED.items():
        for e in emotions:
            weights.setdefault(au, {})[e] = 0.5
    for e, spec in EMFACS_PROTOTYPES.items():
        for combo in (spec, *EMFACS_VARIANTS.get(e, ())):
            for s in combo:
                weights.setdefault(s.au, {})[e] = 1.0
    return {au: dict(sorted(w.items())) for au, w in sorted(weights.items(), key=lambda kv: int(kv[0][2:]))}


AU_EMOTION_WEIGHTS: dict[str, dict[str, float]] = _association_weights()


# ---- the AU-prototype rule ----------------------------------------------------------------------

# Activation of an AU from its 0-5 intensity: 0 at the presence threshold (FACS "A" lower edge),
# rising linearly to 1 at 2.5 (the lower edge of "C", marked). Trace-level noise counts for little.
ACTIVATION_FULL = 2.5
MISSING_WEIGHT = 1.0  # alpha: weight of prototype AUs that are absent
EXTRA_WEIGHT = 0.5  # beta: weight of active AUs outside the prototype (spontaneous faces add AUs)


def activation(intensity: float) -> float:
    """Map a 0-5 AU intensity to [0, 1] (see :data:`ACTIVATION_FULL`)."""
    x = (float(intensity) - PRESENCE_THRESHOLD) / (ACTIVATION_FULL - PRESENCE_THRESHOLD)
    return min(1.0, max(0.0, x))


def _tversky(acts: dict[str, float], proto: tuple[str, ...]) -> float:
    observed = [u for u in proto if u in acts]
    hit = sum(acts[u] for u in observed)
    if hit <= 0.0:
        return 0.0
    missing = sum(1.0 - acts[u] for u in observed)
    extra = sum(a for u, a in acts.items() if u not in proto)
    return hit / (hit + MISSING_WEIGHT * missing + EXTRA_WEIGHT * extra)


def match_prototypes(aus: dict[str, float], emotions: tuple[str, ...] | list[str] | None = None,
                     include_neutral: bool = True) -> list[tuple[str, float]]:
    """Score how well observed AU intensities fit each emotion's EMFACS prototype, best first.

    ``aus`` maps AU keys (any spelling :func:`affectllm.knowledge.facs.au_key` accepts) to 0-5 intensities.
    An AU missing from ``aus`` was not observed (perception does not estimate it, e.g. AU16) and
    is left out of the comparison; an AU given with intensity 0 is observed absent.

    Score of emotion e with prototype P (fuzzy Tversky similarity, in [0, 1])::

        a_u   = activation(intensity_u)              # 0..1, see ACTIVATION_FULL
        hit   = sum(a_u for u in P, observed)         # coverage of the prototype
        miss  = sum(1 - a_u for u in P, observed)     # prototype AUs that are absent
        extra = sum(a_u for u not in P)               # active AUs the prototype does not explain
        score = hit / (hit + 1.0 * miss + 0.5 * extra)    (0 when hit == 0)

    so a full prototype with nothing else scores 1, half a prototype 0.5, and unexplained activity
    lowers the score gently. For emotions with published variants (disgust 9+15+17) the best
    variant counts. ``neutral`` (when ``include_neutral``) scores ``1 - max activation``: a face
    at rest is neutral. Intensity letters and sides of the prototypes (5B, R12A) are not used:
    our AU estimates are bilateral and coarse. Ties keep the order of ``emotions``.
    """
    acts = {au_key(k): activation(v) for k, v in aus.items()}
    names = list(emotions) if emotions is not None else list(PROTOTYPE_EMOTIONS)
    scored = []
    for e in names:
        if e == "neutral":
            continue
        combos = (EMFACS_PROTOTYPES[e] if e in EMFACS_PROTOTYPES else prototype_aus(e),
                  *EMFACS_VARIANTS.get(e, ()))
        scored.append((e, max(_tversky(acts, tuple(s.au for s in c)) for c in combos)))
    if include_neutral:
        scored.append(("neutral", 1.0 - max(acts.values(), default=0.0)))
    order = {e: i for i, (e, _) in enumerate(scored)}
    return sorted(scored, key=lambda es: (-es[1], order[es[0]]))


def prototype_rule(aus: dict[str, float]) -> str:
    """The AU-prototype baseline: the Ekman-7 label whose prototype fits best (neutral at rest)."""
    return match_prototypes(aus)[0][0]


# ---- prosody -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProsodyCue:
    """What one prosodic observation suggests: arousal/valence direction (+1, 0, -1) and emotions."""

    phrase: str
    arousal: int
    valence: int
    emotions: tuple[str, ...]


# Vocal cue patterns from the reviews of Scherer (2003, Speech Communication 40) and Juslin &
# Laukka (2003, Psychological Bulletin 129), with boredom from Banse & Scherer (1996). Prosody
# mostly carries arousal; its valence cues are weak, hence valence 0 for most entries.
PROSODY_CUES: dict[str, ProsodyCue] = {
    "pitch_high": ProsodyCue("a raised pitch", +1, 0, ("anger", "fear", "happiness", "surprise")),
    "pitch_low": ProsodyCue("a low pitch", -1, 0, ("sadness", "boredom")),
    "pitch_variable": ProsodyCue("a lively, varied melody", +1, +1, ("happiness", "anger", "surprise")),
    "pitch_flat": ProsodyCue("a flat, monotonous melody", -1, -1, ("sadness", "boredom")),
    "loud": ProsodyCue("a loud voice", +1, 0, ("anger", "happiness")),
    "soft": ProsodyCue("a soft, quiet voice", -1, 0, ("sadness", "boredom", "neutral")),
    "fast": ProsodyCue("fast speech", +1, 0, ("anger", "fear", "happiness")),
    "slow": ProsodyCue("slow speech", -1, -1, ("sadness", "boredom")),
    "pauses": ProsodyCue("long or frequent pauses", -1, -1, ("sadness", "boredom")),
    "sharp": ProsodyCue("a sharp, tense voice quality", +1, -1, ("anger", "fear")),
    "breathy": ProsodyCue("a breathy, lax voice quality", -1, 0, ("sadness", "neutral")),
}
