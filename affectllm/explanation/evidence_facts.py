"""What the perceived evidence says about each emotion label: the facts a rationale is written from.

:func:`analyse` turns one :class:`~affectllm.perception.observations.Observations` into an :class:`Evidence`:
the active AUs, EMFACS prototype scores, the expression classifier's ranking, prosody cues (from the
perception descriptors, via ``affectllm.knowledge.emfacs.PROSODY_CUES``), and salient words of the text or
transcript, each scored per label of one taxonomy. :func:`support` then says, per modality, whether
the evidence supports a given label, is silent, or points elsewhere; :func:`runner_up` names the best
competing label. ``affectllm.explanation.template`` writes sentences from these facts;
``affectllm.explanation.verify`` checks any rationale (templated, teacher-written or generated)
against the same facts. It lives in the core so the verifier never imports ``data_engine``.

Deliberately not here: any wording (``affectllm.explanation.template``) and any label decision -- the gold label comes from
the dataset; this module only measures how well the evidence backs it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from affectllm.knowledge.emfacs import EMFACS_PROTOTYPES, PROSODY_CUES, match_prototypes, prototype_aus
from affectllm.perception.observations import AUObs, Observations
from affectllm.knowledge.taxonomy import (Taxonomy, fold_scores, get_taxonomy, label_mentions, normalize_label,
                                         resolve_concept)

# Affect-laden words that are not emotion *names* (so ``affectllm.knowledge.synonyms`` leaves them out on
# purpose) but that rationales may cite as salient: the concept each usually signals. Small and
# conservative; a word's presence is a cue, never the answer.
CUE_WORDS: dict[str, str] = {
    "hate": "anger", "hated": "anger", "hates": "anger", "damn": "anger", "wtf": "anger",
    "stupid": "annoyance", "ugh": "annoyance", "sucks": "disappointment",
    "gross": "disgust", "yuck": "disgust", "ew": "disgust", "eww": "disgust",
    "lol": "amusement", "haha": "amusement", "hahaha": "amusement", "lmao": "amusement",
    "funny": "amusement", "hilarious": "amusement", "yay": "excitement", "awesome": "admiration",
    "great": "admiration", "amazing": "admiration", "thanks": "gratitude", "thank": "gratitude",
    "cry": "sadness", "crying": "sadness", "cried": "sadness", "tears": "sadness", "sorry": "remorse",
    "miss": "sadness", "wow": "surprise", "omg": "surprise", "whoa": "surprise",
    "scary": "fear", "creepy": "fear", "fuck off": "anger", "shut up": "anger", "screw you": "anger",
}
_CUE_RE = re.compile(r"(?<![a-z'])(" + "|".join(sorted(map(re.escape, CUE_WORDS), key=len, reverse=True))
                     + r")(?![a-z'])")
_NEGATORS = ("not", "no", "never", "without", "nor", "hardly")

# Descriptor words (``affectllm.perception.prosody.describe``) -> PROSODY_CUES keys. Keys are
# matched as whole phrases in the descriptor value of the named measure.
_DESCRIPTOR_CUES: dict[str, tuple[tuple[str, str], ...]] = {
    "pitch": (("higher pitch", "pitch_high"), ("high", "pitch_high"), ("lower pitch", "pitch_low"),
              ("low", "pitch_low"), ("variable", "pitch_variable"), ("monotone", "pitch_flat"),
              ("flatter", "pitch_flat")),
    "loudness": (("louder", "loud"), ("loud", "loud"), ("quieter", "soft"), ("quiet", "soft")),
    "rate": (("faster", "fast"), ("fast", "fast"), ("slower", "slow"), ("slow", "slow")),
    "pauses": (("many pauses", "pauses"), ("more pauses", "pauses")),
    "voice": (("brighter", "sharp"), ("bright, tense", "sharp"), ("darker", "breathy"),
              ("soft, dark", "breathy"), ("breathy", "breathy")),
}
MIDDLE_WORDS = ("medium pitch", "moderate loudness", "moderate pace", "as baseline")


@dataclass
class Word:
    """A salient word found in the text or transcript."""

    word: str  # as written in the text
    label: str | None  # the taxonomy label it points to (None: outside the taxonomy)
    negated: bool  # "not happy"
    source: str  # "text" or "transcript"
    kind: str = "name"  # "name": an emotion word; "cue": an affect-laden word (CUE_WORDS)


@dataclass
class Evidence:
    """Facts of one item, scored per label of ``taxonomy`` (scores in [0, 1], per channel)."""

    taxonomy: Taxonomy
    has_face: bool = False
    aus: list[AUObs] = field(default_factory=list)  # present AUs, strongest first
    observed: dict[str, float] = field(default_factory=dict)  # every estimated AU -> intensity
    prototypes: list[tuple[str, float]] = field(default_factory=list)  # taxonomy label -> score, best first
    classifier: list[tuple[str, float]] = field(default_factory=list)  # taxonomy label -> prob, best first
    classifier_raw: list[tuple[str, float]] = field(default_factory=list)  # the classifier's own names
    voice_classifier: list[tuple[str, float]] = field(default_factory=list)  # taxonomy label -> prob, best first
    voice_classifier_raw: list[tuple[str, float]] = field(default_factory=list)  # its own names
    prosody: list[tuple[str, str]] = field(default_factory=list)  # (descriptor key, descriptor words)
    cues: list[str] = field(default_factory=list)  # PROSODY_CUES keys found (+ "moderate")
    words: list[Word] = field(default_factory=list)
    emphasis: dict[str, object] = field(default_factory=dict)  # exclamations, questions, caps words
    has_text: bool = False
    scores: dict[str, dict[str, float]] = field(default_factory=dict)  # channel -> label -> score

    @property
    def channels(self) -> list[str]:
        """Channels that carry any information: face, classifier, voice, voice_classifier, words."""
        return [c for c, s in self.scores.items() if s and max(s.values()) > 0]

    def proto_score(self, label: str) -> float | None:
        return dict(self.prototypes).get(label)


def _label(concept: str | None, tax: Taxonomy) -> str | None:
    if concept is None:
        return None
    return resolve_concept(concept, tax) or normalize_label(concept, tax)


def _face(ev: Evidence, obs: Observations) -> None:
    face = obs.main_face
    if face is None:
        return
    ev.has_face = True
    ev.aus = sorted(face.present_aus, key=lambda a: (-a.intensity, int(a.au[2:])))
    ev.observed = {a.au: float(a.intensity) for a in face.aus}
    tax = ev.taxonomy
    if ev.observed:
        # Every estimated AU goes in, absent ones too: an absent prototype AU must count as
        # missing, not as unobserved (match_prototypes leaves out only AUs it is not given).
        ranked = match_prototypes(ev.observed)
        seen: dict[str, float] = {}
        for emo, score in ranked:
            lab = _label(emo, tax)
            if lab is not None and lab not in seen:
                seen[lab] = float(score)
        ev.prototypes = sorted(seen.items(), key=lambda kv: -kv[1])
    ev.classifier, ev.classifier_raw = _ranked(face.expression, tax)


def _ranked(expression: dict[str, float], tax: Taxonomy) -> tuple[list, list]:
    """A classifier's scores as (taxonomy label, prob) and (its own name, prob), best first."""
    probs = fold_scores(expression, tax)
    return (sorted(probs.items(), key=lambda kv: -kv[1]),
            sorted(((k, float(v)) for k, v in expression.items()), key=lambda kv: -kv[1]))


def descriptor_cues(key: str, words: str) -> list[str]:
    """PROSODY_CUES keys that one descriptor value states ("high, variable pitch" -> two)."""
    found, text = [], words.lower()
    for phrase, cue in _DESCRIPTOR_CUES.get(key, ()):
        if re.search(rf"(?<![a-z]){re.escape(phrase)}(?![a-z])", text) and cue not in found:
            if phrase in ("high", "low") and not re.search(rf"\b{phrase}\b(?!er)", text):
                continue
            found.append(cue)
    return found


def _voice(ev: Evidence, obs: Observations) -> None:
    audio = obs.audio
    if audio is None:
        return
    ev.voice_classifier, ev.voice_classifier_raw = _ranked(audio.expression, ev.taxonomy)
    for key, words in audio.descriptors.items():
        if not words:
            continue
        ev.prosody.append((key, words))
        for cue in descriptor_cues(key, words):
            if cue not in ev.cues:
                ev.cues.append(cue)
    if not ev.cues and any(any(m in w for m in MIDDLE_WORDS) for _, w in ev.prosody):
        ev.cues.append("moderate")  # everything mid-range: an even, unremarkable voice


def _synonym_at(low: str, start: int) -> int:
    """Length of the longest emotion word of the synonym table that starts at ``start``."""
    best = 0
    for key in _synonym_keys():
        m = re.match(re.escape(key).replace(r"\ ", r"\s+") + r"(?![a-z-])", low[start:])
        if m and m.end() > best:
            best = m.end()
    return best


def _synonym_keys() -> tuple[str, ...]:
    from affectllm.knowledge.synonyms import SYNONYMS

    return tuple(SYNONYMS)


def _text_words(ev: Evidence, text: str, source: str) -> None:
    tax = ev.taxonomy
    low = text.lower().replace("\u2019", "'")
    kept = {s for s, _ in label_mentions(text, tax)}
    for start, label in label_mentions(text, tax, keep_negated=True):
        n = _synonym_at(low, start) or len(label)
        ev.words.append(Word(word=text[start:start + n], label=label, negated=start not in kept,
                             source=source))
    for m in _CUE_RE.finditer(low):
        if any(w.word.lower() == m.group(1) for w in ev.words):
            continue
        before = re.findall(r"[a-z']+", low[max(0, m.start() - 25):m.start()])[-2:]
        negated = any(b in _NEGATORS or b.endswith("n't") for b in before)
        ev.words.append(Word(word=text[m.start():m.end()], label=_label(CUE_WORDS[m.group(1)], tax),
                             negated=negated, source=source, kind="cue"))
    if source == "transcript" and ev.emphasis:
        return  # the written text's punctuation counts; ASR punctuation only when there is no text
    ev.emphasis = {"exclamations": text.count("!"), "questions": text.count("?"),
                   # [NAME]-style anonymisation placeholders are not the writer's shouting
                   "caps": re.findall(r"(?<![\[\w])[A-Z]{3,}(?![\]\w])", text)[:3]}


def _score_voice(ev: Evidence) -> dict[str, float]:
    counts: dict[str, float] = {}
    for cue in ev.cues:
        emotions = ("neutral",) if cue == "moderate" else PROSODY_CUES[cue].emotions
        for e in emotions:
            lab = _label(e, ev.taxonomy)
            if lab is not None:
                counts[lab] = counts.get(lab, 0.0) + 1.0
    n = max(len(ev.cues), 1)
    return {k: v / n for k, v in counts.items()}


TEXT_ONLY_NEUTRAL = 0.5  # score of "neutral" for a text-only item with no emotion word or emphasis


def _score_words(ev: Evidence, text_only: bool) -> dict[str, float]:
    counts: dict[str, float] = {}
    for w in ev.words:
        if w.label is not None and not w.negated:
            counts[w.label] = counts.get(w.label, 0.0) + 1.0
    top = max(counts.values(), default=0.0)
    if top:
        return {k: v / top for k, v in counts.items()}
    # A text that is all there is, with no emotion word and no emphasis, leans neutral. Only then:
    # beside a voice or face the words may simply not be English (EmoDB's German sentences).
    if text_only and "neutral" in ev.taxonomy.labels and not ev.emphasis.get("exclamations") \
            and not ev.emphasis.get("caps"):
        return {"neutral": TEXT_ONLY_NEUTRAL}
    return {}


def analyse(obs: Observations, taxonomy: str | Taxonomy | None = None) -> Evidence:
    """Collect and score the evidence of ``obs`` against the labels of ``taxonomy``."""
    ev = Evidence(taxonomy=get_taxonomy(taxonomy))
    _face(ev, obs)
    _voice(ev, obs)
    if obs.text and obs.text.strip():
        ev.has_text = True
        _text_words(ev, obs.text, "text")
    transcript = obs.audio.transcript.strip() if obs.audio is not None else ""
    if transcript and transcript != (obs.text or "").strip():
        ev.has_text = True
        _text_words(ev, obs.audio.transcript, "transcript")
    ev.scores = {
        "face": {k: v for k, v in ev.prototypes} if ev.aus or ev.observed else {},
        "classifier": dict(ev.classifier),
        "voice": _score_voice(ev),
        "voice_classifier": dict(ev.voice_classifier),
        "words": _score_words(ev, text_only=ev.has_text and not ev.has_face and obs.audio is None),
    }
    return ev


# ---- how well the evidence backs one label ---------------------------------------------------

SUPPORTS, PARTIAL, CONFLICTS, SILENT = "supports", "partial", "conflicts", "silent"
MARGIN = 0.05  # a label within this of the best score counts as (tied) best


def channel_support(ev: Evidence, channel: str, label: str) -> str:
    """supports (label is best or tied), partial (some score, not best), conflicts (another label
    scores and this one does not), silent (the channel carries nothing)."""
    scores = ev.scores.get(channel) or {}
    top = max(scores.values(), default=0.0)
    if top <= 0:
        return SILENT
    mine = scores.get(label, 0.0)
    if mine >= top - MARGIN:
        return SUPPORTS
    return PARTIAL if mine > 0 else CONFLICTS


def support(ev: Evidence, label: str) -> dict[str, str]:
    """Per-channel support of ``label`` (channels with no information are left out)."""
    return {c: channel_support(ev, c, label) for c in ev.channels}


def overall(ev: Evidence, label: str) -> str:
    """One word for the record: supported / mixed / weak / unsupported."""
    s = support(ev, label)
    if not s:
        return "unsupported"
    if all(v == SUPPORTS for v in s.values()):
        return "supported"
    if any(v == SUPPORTS for v in s.values()):
        return "mixed"
    return "weak" if any(v == PARTIAL for v in s.values()) else "unsupported"


def combined(ev: Evidence) -> dict[str, float]:
    """Sum of the channel scores per label (each channel already in [0, 1])."""
    out: dict[str, float] = {}
    for scores in ev.scores.values():
        for k, v in scores.items():
            out[k] = out.get(k, 0.0) + v
    return out


RUNNER_UP_MIN = 0.2  # a competitor needs this much combined score to be worth a sentence


def runner_up(ev: Evidence, label: str) -> tuple[str, float] | None:
    """The best-scoring label other than ``label``, when it scores at least :data:`RUNNER_UP_MIN`."""
    scores = {k: v for k, v in combined(ev).items()
              if k != label and v >= RUNNER_UP_MIN and k in ev.taxonomy.labels}
    if not scores:
        return None
    best = max(scores.items(), key=lambda kv: (kv[1], -ev.taxonomy.labels.index(kv[0])))
    return best


def proto_emotion(label: str, taxonomy: str | Taxonomy | None = None) -> str | None:
    """The EMFACS prototype emotion a taxonomy label stands for ("joy" -> "happiness"), or None."""
    tax = get_taxonomy(taxonomy)
    for emotion in EMFACS_PROTOTYPES:
        if emotion == label or _label(emotion, tax) == label:
            return emotion
    return None


def missing_prototype_aus(ev: Evidence, label: str) -> list[str]:
    """Prototype AUs of ``label`` that were estimated and found absent (citable as absent)."""
    emotion = proto_emotion(label, ev.taxonomy)
    if emotion is None:
        return []
    present = {a.au for a in ev.aus}
    return [au for au in prototype_aus(emotion) if au in ev.observed and au not in present]


def matched_prototype_aus(ev: Evidence, label: str) -> list[str]:
    """Prototype AUs of ``label`` that are present, strongest first."""
    emotion = proto_emotion(label, ev.taxonomy)
    if emotion is None:
        return []
    proto = set(prototype_aus(emotion))
    return [a.au for a in ev.aus if a.au in proto]
