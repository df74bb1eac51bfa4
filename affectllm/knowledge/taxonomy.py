"""Emotion label sets, the synonym table that maps free text onto them, and valence/arousal quadrants.

Every place that turns words into a label (the parser, metrics, rewards, the data engine) goes
through :func:`normalize_label` or :func:`find_labels`, so "joyful", "Happy." and "**joy**" land on
the same label everywhere.

How a word becomes a label: the synonym table maps a word to a *concept* (an Ekman label,
``boredom``, ``contempt``, or a GoEmotions fine label such as ``amusement``); the taxonomy then
resolves the concept: the concept itself when the taxonomy has it, else its alias in that
taxonomy (``joy`` <-> ``happiness``), else its GoEmotions-Ekman group (Demszky et al. 2020,
``ekman_mapping.json``: amusement -> joy, annoyance -> anger, ...). A concept that resolves to
nothing (``boredom`` in Ekman-7) gives ``None``: unknown labels are never guessed.

Deliberately not here: per-dataset label files (``data_engine.sources``) and affect knowledge
such as AU prototypes (``affectllm.knowledge.emfacs``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from affectllm.knowledge.synonyms import GOEMOTIONS_EKMAN_MAPPING, SYNONYMS


@dataclass(frozen=True)
class Taxonomy:
    """A named, ordered label set. ``multi_label``: gold items may carry several labels."""

    name: str
    labels: tuple[str, ...]
    multi_label: bool = False
    aliases: tuple[tuple[str, str], ...] = ()  # concept -> label of this taxonomy

    def __contains__(self, label: object) -> bool:
        return label in self.labels

    def __iter__(self):
        return iter(self.labels)

    def __len__(self) -> int:
        return len(self.labels)

    def index(self, label: str) -> int:
        return self.labels.index(label)


EKMAN7 = Taxonomy("ekman7", ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"),
                  aliases=(("joy", "happiness"),))
EMODB7 = Taxonomy("emodb7", ("anger", "boredom", "disgust", "fear", "happiness", "sadness", "neutral"),
                  aliases=(("joy", "happiness"),))
# The 27 GoEmotions emotions + neutral, in the order of the dataset's emotions.txt.
GOEMOTIONS28 = Taxonomy("goemotions28", (
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion", "curiosity",
    "desire", "disappointment", "disapproval", "disgust", "embarrassment", "excitement", "fear",
    "gratitude", "grief", "joy", "love", "nervousness", "optimism", "pride", "realization", "relief",
    "remorse", "sadness", "surprise", "neutral"), multi_label=True, aliases=(("happiness", "joy"),))
# The shipped GoEmotions-Ekman set, in the order of its labels.txt (ids 0..6); "joy" is Ekman happiness.
GOEMOTIONS_EKMAN = Taxonomy("goemotions_ekman",
                            ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"),
                            multi_label=True, aliases=(("happiness", "joy"),))

TAXONOMIES: dict[str, Taxonomy] = {t.name: t for t in (EKMAN7, EMODB7, GOEMOTIONS28, GOEMOTIONS_EKMAN)}
DEFAULT_TAXONOMY = "ekman7"

# Ekman-7 names of labels from other taxonomies (for cross-dataset reports and knowledge lookups).
TO_EKMAN = {"joy": "happiness", **{fine: ("happiness" if group == "joy" else group)
                                   for fine, group in GOEMOTIONS_EKMAN_MAPPING.items()}}


def get_taxonomy(name: str | Taxonomy | None = None) -> Taxonomy:
    """The taxonomy called ``name`` (default Ekman-7); a :class:`Taxonomy` is returned unchanged."""
    if isinstance(name, Taxonomy):
        return name
    key = (name or DEFAULT_TAXONOMY).lower().replace("-", "_")
    if key not in TAXONOMIES:
        raise ValueError(f"unknown taxonomy {name!r}; choose from {sorted(TAXONOMIES)}")
    return TAXONOMIES[key]


def resolve_concept(concept: str, taxonomy: str | Taxonomy | None = None) -> str | None:
    """The label of ``taxonomy`` that a concept (see module docstring) stands for, or None."""
    tax = get_taxonomy(taxonomy)
    if concept in tax.labels:
        return concept
    aliases = dict(tax.aliases)
    if concept in aliases:
        return aliases[concept]
    group = GOEMOTIONS_EKMAN_MAPPING.get(concept)
    if group is not None:
        if group in tax.labels:
            return group
        return aliases.get(group)
    return None


def resolve_labels(labels, taxonomy: str | Taxonomy | None = None) -> list[str]:
    """Dataset labels as labels of ``taxonomy`` (unmappable ones dropped, order and uniqueness kept)."""
    out: list[str] = []
    for lab in labels or []:
        m = resolve_concept(lab, taxonomy)
        if m is not None and m not in out:
            out.append(m)
    return out


def fold_scores(scores: dict[str, float], taxonomy: str | Taxonomy | None = None) -> dict[str, float]:
    """A classifier's class scores (FER's, the voice classifier's) summed per taxonomy label.

    Class names go through :func:`normalize_label` ("happy" -> happiness); names the taxonomy
    cannot hold are dropped, so the result may sum to less than the input. Keys in first-mapped order.
    """
    out: dict[str, float] = {}
    for name, p in scores.items():
        lab = normalize_label(name, taxonomy)
        if lab is not None:
            out[lab] = out.get(lab, 0.0) + float(p)
    return out


# ---- finding label words in text -------------------------------------------------------------

# Words that negate a label mentioned within the next few words of the same clause
# ("not angry", "no sign of fear", "rather than sadness").
_NEGATORS = {"not", "no", "never", "nor", "neither", "without", "than", "instead", "unlike",
             "lacks", "lacking", "absent", "isn't", "aren't", "wasn't", "doesn't", "don't", "didn't",
             "hardly", "nothing"}
_NEGATION_WINDOW = 3  # words before the label that may negate it
_CLAUSE_BREAK = re.compile(r"[,.;:!?()\n]|\bbut\b|\bso\b|\bwhile\b|\bwhereas\b|\bhowever\b")


@lru_cache(maxsize=None)
def _phrase_pattern() -> re.Pattern:
    # Longest phrases first so "grossed out" wins over a shorter key; word boundaries keep "happy"
    # out of "unhappy".
    keys = sorted(SYNONYMS, key=len, reverse=True)
    body = "|".join(re.escape(k).replace(r"\ ", r"\s+") for k in keys)
    return re.compile(rf"(?<![a-z'-])(?:{body})(?![a-z-])")


_FIRST_LETTER = re.compile(r"[a-z]")


def _clean(text: str) -> str:
    text = text.lower().replace("\u2019", "'")
    return re.sub(r"[*_`\"]", " ", text)


def _negated(text: str, start: int) -> bool:
    before = text[max(0, start - 80):start]  # 3 words fit in 80 characters; bounded work per mention
    brk = None
    for brk in _CLAUSE_BREAK.finditer(before):
        pass
    if brk is not None:
        before = before[brk.end():]
    words = re.findall(r"[a-z']+", before)[-_NEGATION_WINDOW:]
    return any(w in _NEGATORS or w.endswith("n't") for w in words)


def label_mentions(text: str | None, taxonomy: str | Taxonomy | None = None,
                   *, keep_negated: bool = False) -> list[tuple[int, str]]:
    """(character offset, label) of every label word in ``text`` that maps into ``taxonomy``.

    Negated mentions ("not angry") are dropped unless ``keep_negated``.
    """
    if not text:
        return []
    tax = get_taxonomy(taxonomy)
    s = _clean(text)
    out = []
    for m in _phrase_pattern().finditer(s):
        label = resolve_concept(SYNONYMS[re.sub(r"\s+", " ", m.group(0))], tax)
        if label is None:
            continue
        if not keep_negated and _negated(s, m.start()):
            continue
        out.append((m.start(), label))
    return out


def find_labels(text: str | None, taxonomy: str | Taxonomy | None = None) -> list[str]:
    """Distinct non-negated labels named in ``text``, in order of first mention."""
    seen: list[str] = []
    for _, label in label_mentions(text, taxonomy):
        if label not in seen:
            seen.append(label)
    return seen


def normalize_label(text: str | None, taxonomy: str | Taxonomy | None = None) -> str | None:
    """Map free text ("Joyful.", "**happy**", "AU12 -> happiness") to one label of ``taxonomy``.

    Returns None for empty text, for text naming no label of the taxonomy (unknown labels are
    never guessed), and for text naming two or more different labels ("happy or sad").
    """
    if text is None:
        return None
    tax = get_taxonomy(taxonomy)
    s = _clean(text)
    first, last = _FIRST_LETTER.search(s), _FIRST_LETTER.search(s[::-1])
    if first is None:
        return None
    # trim non-letters at both ends (a regex "[^a-z]+$" would backtrack quadratically on long blanks)
    s = re.sub(r"\s+", " ", s[first.start():len(s) - last.start()])
    if s in tax.labels:
        return s
    if s in SYNONYMS:
        return resolve_concept(SYNONYMS[s], tax)
    labels = find_labels(s, tax)
    return labels[0] if len(labels) == 1 else None


# ---- valence / arousal -------------------------------------------------------------------------

# Coarse hand placements on Russell's (1980) circumplex: valence from the GoEmotions sentiment
# grouping (positive / negative / ambiguous), arousal high or low. Surprise, confusion, curiosity
# and realization have "ambiguous" valence, which agrees with either sign in :func:`same_quadrant`.
_VA: dict[str, tuple[str, str]] = {
    "anger": ("negative", "high"), "disgust": ("negative", "high"), "fear": ("negative", "high"),
    "happiness": ("positive", "high"), "joy": ("positive", "high"), "sadness": ("negative", "low"),
    "surprise": ("ambiguous", "high"), "neutral": ("neutral", "neutral"),
    "boredom": ("negative", "low"), "contempt": ("negative", "low"),
    "admiration": ("positive", "low"), "amusement": ("positive", "high"),
    "annoyance": ("negative", "high"), "approval": ("positive", "low"), "caring": ("positive", "low"),
    "confusion": ("ambiguous", "low"), "curiosity": ("ambiguous", "high"),
    "desire": ("positive", "high"), "disappointment": ("negative", "low"),
    "disapproval": ("negative", "low"), "embarrassment": ("negative", "high"),
    "excitement": ("positive", "high"), "gratitude": ("positive", "low"), "grief": ("negative", "low"),
    "love": ("positive", "low"), "nervousness": ("negative", "high"), "optimism": ("positive", "low"),
    "pride": ("positive", "high"), "realization": ("ambiguous", "high"), "relief": ("positive", "low"),
    "remorse": ("negative", "low"),
}


def valence_arousal(label: str) -> tuple[str, str]:
    """(valence, arousal) of a label: valence in positive/negative/ambiguous/neutral, arousal high/low/neutral."""
    if label not in _VA:
        raise ValueError(f"no valence/arousal placement for label {label!r}")
    return _VA[label]


def quadrant(label: str) -> str:
    """Circumplex quadrant name, e.g. ``"negative/high"``; ``"neutral"`` for neutral."""
    v, a = valence_arousal(label)
    return "neutral" if v == "neutral" else f"{v}/{a}"


def same_quadrant(a: str | None, b: str | None) -> bool:
    """Whether two labels share valence and arousal ("ambiguous" valence matches either sign)."""
    if a is None or b is None or a not in _VA or b not in _VA:
        return False
    (va, aa), (vb, ab) = _VA[a], _VA[b]
    if aa != ab:
        return False
    return va == vb or (va == "ambiguous" and vb != "neutral") or (vb == "ambiguous" and va != "neutral")
