"""Checks every training record against its evidence before it is written: no record is kept on trust.

``verify(record, obs) -> list[str]`` returns the reasons a record fails (empty list: it passes).
Each reason starts with a category (``format:``, ``label:``, ``au:``, ``intensity:``, ``prosody:``,
``classifier:``, ``number:``, ``quote:``, ``record:``) so build reports can count them. The checks:

- format: the assistant turn starts with ``explanation.format.RESPONSE_PREFIX`` and the one parser
  (``affectllm.explanation.parse.parse``) reads it as well-formed with no issue flagged;
- label: the answer and the conclusion name the gold label (after synonym mapping);
- au / intensity: every AU cited (by number, as the parser sees them, or by FACS name) is active in
  the evidence when cited as active -- with the stated intensity letter or word -- and estimated
  absent when called absent ("the inner brow raiser is not active"). An absent AU must be named,
  not numbered: the parser counts every "AU<n>" as cited, so the AU-grounding reward and AU-F1
  would score "AU4 is not active" as citing AU4;
- prosody: no voice claim contradicts the perceived descriptors ("high pitch" when the pitch was
  low, "loud" when quiet) or speaks of a measure that was not taken;
- classifier: a sentence about the expression classifier names its top label first;
- number: every decimal number appears in the evidence (scores, probabilities, intensities);
- quote: every double-quoted word occurs in the text or transcript.

The claim reading is deliberately literal (phrases, negation words, clause boundaries): it is
tuned to the templates of ``cot`` and to plain rewrites of them; an AU it cannot place is read as
an assertion that the AU is active, so unusual phrasing is rejected rather than waved through.

Deliberately not here: writing or repairing records (``cot``, ``teacher``).
"""

from __future__ import annotations

import re

from affectllm.knowledge.facs import AU_NAMES, INTENSITY_WORDS, au_key
from affectllm.knowledge.emfacs import match_prototypes
from affectllm.perception.observations import Observations, observations_from_dict
from affectllm.explanation.parse import cited_aus, parse
from affectllm.explanation.format import RESPONSE_PREFIX
from affectllm.knowledge.taxonomy import get_taxonomy, label_mentions, normalize_label
from data_engine import evidence as E

_WORD_LETTER = {**{w: k for k, w in INTENSITY_WORDS.items()}, "severe": "D", "extreme": "E"}
_AU_NUM = re.compile(r"\b(?:AU|action unit)[ \t]*-?[ \t]*(\d{1,2})([A-E])?\b", re.I)
_AU_NAME = re.compile(r"\b(" + "|".join(sorted(map(re.escape, AU_NAMES.values()), key=len, reverse=True))
                      + r")\b", re.I)
_NAME_TO_AU = {v: k for k, v in AU_NAMES.items()}
_JOINER = re.compile(r"^[\s,]*(?:and|or|nor|&|\+|plus)?[\s,]*$", re.I)
_BOUNDARY = re.compile(r"[.!?;](?=\s|$)|\n|\bbut\b|\bwhereas\b|\bwhile\b", re.I)
_PRE_NEG = {"no", "not", "without", "lacks", "lacking", "absent", "none", "neither", "nor", "missing", "absence"}
_POST_NEG = re.compile(r"^[\s,()]*(?:(?:is|are|was|were|stays?|remains?)\s+)?(?:still\s+|also\s+)?"
                       r"(?:not\b|absent\b|inactive\b|missing\b|at rest\b|isn't\b|aren't\b|never\b)", re.I)
_INTENSITY_LETTER = re.compile(r"\bintensity\s+(?:of\s+)?([A-E])\b")
_LEVEL_WORD = re.compile(r"\b(" + "|".join(_WORD_LETTER) + r")\b", re.I)
_QUOTED = re.compile(r'"([^"\n]{1,200})"')
_DECIMAL = re.compile(r"(?<![\w.])(\d+\.\d+)(?!\.?\d)")

# Prosody claims: dimension -> (pattern, direction). ``perception.prosody.describe`` writes its
# descriptors in this vocabulary, so the same patterns read the evidence and the claims.
PROSODY_PATTERNS: dict[str, tuple[tuple[str, int], ...]] = {
    "pitch": ((r"\b(?:high(?:er)?|raised|elevated)(?:,\s*\w+)?\s+pitch\b|\bhigh-pitched\b", 1),
              (r"\blow(?:er)?(?:,\s*\w+)?\s+pitch\b|\blow-pitched\b|\bdeep voice\b", -1),
              (r"\bmedium(?:,\s*\w+)?\s+pitch\b|\bpitch as baseline\b", 0)),
    "melody": ((r"\bvariable\b|\bvaried\b|\blively\b", 1), (r"\bmonoton\w*|\bflat(?:ter)?\b", -1)),
    "loudness": ((r"\bloud(?:er|ly)?\b", 1), (r"\bquiet(?:er|ly)?\b|\bhushed\b", -1),
                 (r"\bmoderate loudness\b|\bloudness as baseline\b", 0)),
    "rate": ((r"\bfast(?:er)?\b|\brapid(?:ly)?\b|\bhurried\b", 1), (r"\bslow(?:er|ly)?\b", -1),
             (r"\bmoderate pace\b|\bpace as baseline\b", 0)),
    "pauses": ((r"\b(?:many|more|frequent|long)(?: or frequent)? pauses\b", 1),
               (r"\b(?:few|fewer|no) pauses\b", -1), (r"\bsome pauses\b", 0)),
    "quality": ((r"\bbright(?:er)?\b|\btense\b|\bsharp\b", 1), (r"\bdark(?:er)?\b|\bbreathy\b|\blax\b", -1)),
}
_DIM_SOURCE = {"pitch": "pitch", "melody": "pitch", "loudness": "loudness", "rate": "rate",
               "pauses": "pauses", "quality": "voice"}
_DIR_WORD = {1: "high", -1: "low", 0: "mid-range"}


# ---- prosody claims ------------------------------------------------------------------------------

def _claims(text: str, dim: str) -> list[tuple[int, int, bool, str]]:
    """(direction, position, negated, phrase) of the claims about one prosody dimension."""
    out = []
    for pattern, direction in PROSODY_PATTERNS[dim]:
        for m in re.finditer(pattern, text, re.I):
            before = re.findall(r"[a-z']+", text[max(0, m.start() - 30):m.start()].lower())[-3:]
            neg = any(w in ("not", "no", "never", "without", "hardly") or w.endswith("n't") for w in before)
            out.append((direction, m.start(), neg, m.group(0)))
    return sorted(out, key=lambda c: c[1])


def evidence_prosody(obs: Observations) -> dict[str, int | None]:
    """Direction (+1, 0, -1) per prosody dimension in the evidence; None where not measured.

    A descriptor ``describe`` leaves out because the measure was mid-range (variability within
    "medium pitch", an ordinary voice quality) reads as 0; a missing measure as None.
    """
    desc = obs.audio.descriptors if obs.audio is not None else {}
    out: dict[str, int | None] = {}
    for dim, key in _DIM_SOURCE.items():
        words = desc.get(key)
        measured = bool(desc) and (words is not None or dim == "quality" or (dim == "melody" and "pitch" in desc))
        if not measured:
            out[dim] = None
            continue
        found = _claims(words or "", dim)
        out[dim] = found[0][0] if found else 0
    return out


def _check_prosody(text: str, obs: Observations) -> list[str]:
    reasons, ev = [], evidence_prosody(obs)
    for dim in PROSODY_PATTERNS:
        for direction, _, neg, phrase in _claims(text, dim):
            have = ev[dim]
            if have is None:
                what = "no voice was perceived" if obs.audio is None else f"no {dim} measure was taken"
                reasons.append(f"prosody: states {phrase!r} but {what}")
            elif (not neg and have != direction) or (neg and have == direction):
                words = (obs.audio.descriptors.get(_DIM_SOURCE[dim]) or "ordinary") if obs.audio else "none"
                reasons.append(f"prosody: states {'not ' if neg else ''}{phrase!r} but the evidence "
                               f"{dim} is {_DIR_WORD[have]} ({words})")
    return list(dict.fromkeys(reasons))


# ---- AU claims -----------------------------------------------------------------------------------

def _mentions(text: str) -> list[tuple[int, int, str, str | None, bool]]:
    """(start, end, AU key, inline letter, by number) of AU numbers and FACS names, number+name merged."""
    found = [(m.start(), m.end(), f"AU{int(m.group(1))}", m.group(2), True) for m in _AU_NUM.finditer(text)]
    for m in _AU_NAME.finditer(text):
        au = _NAME_TO_AU[m.group(1).lower()]
        prev = next((f for f in reversed(found) if f[1] <= m.start()), None)
        if prev and prev[2] == au and re.fullmatch(r"[\s(]*", text[prev[1]:m.start()]):
            end = m.end() + (text[m.end():m.end() + 1] == ")")
            found[found.index(prev)] = (prev[0], end, au, prev[3], True)
        else:
            found.append((m.start(), m.end(), au, None, False))
    return sorted(found)


def _groups(text: str, mentions) -> list[list]:
    """Mentions joined only by "and" / "," / "or" share one predicate ("AU1 and AU2 are absent")."""
    groups: list[list] = []
    for m in mentions:
        if groups and _JOINER.match(text[groups[-1][-1][1]:m[0]]):
            groups[-1].append(m)
        else:
            groups.append([m])
    return groups


def _clause(text: str, start: int, end: int, lo: int, hi: int) -> tuple[str, str]:
    """The text before and after a mention group, cut at clause boundaries and other groups."""
    pre = text[lo:start]
    cut = list(_BOUNDARY.finditer(pre))
    pre = pre[cut[-1].end():] if cut else pre
    post = text[end:hi]
    cut2 = _BOUNDARY.search(post)
    return pre, post[:cut2.start()] if cut2 else post


def au_claims(text: str) -> list[dict]:
    """Each AU statement in ``text``: ``{"au", "absent", "letter", "word", "numbered"}``."""
    groups = _groups(text, _mentions(text))
    out = []
    for i, g in enumerate(groups):
        lo = groups[i - 1][-1][1] if i else 0
        hi = groups[i + 1][0][0] if i + 1 < len(groups) else len(text)
        pre, post = _clause(text, g[0][0], g[-1][1], lo, hi)
        pre_words = re.findall(r"[a-z']+", pre.lower())[-6:]
        absent = any(w in _PRE_NEG for w in pre_words) or bool(_POST_NEG.match(post))
        letter = word = None
        if len(g) == 1:
            m = _INTENSITY_LETTER.search(post)
            letter = g[0][3] or (m.group(1) if m else None)
            w = _LEVEL_WORD.search(post)
            if w:
                word = w.group(1).lower()
            elif pre_words and pre_words[-1] in _WORD_LETTER:  # "a marked AU12"
                word = pre_words[-1]
        for m in g:
            out.append({"au": m[2], "absent": absent, "letter": letter, "word": word, "numbered": m[4]})
    return out


def _check_aus(text: str, obs: Observations) -> list[str]:
    face = obs.main_face
    present = {a.au: a for a in face.present_aus} if face else {}
    observed = {a.au for a in face.aus} if face else set()
    reasons, seen = [], set()
    for c in au_claims(text):
        au = c["au"]
        seen.add(au)
        if c["absent"]:
            if au in present:
                reasons.append(f"au: {au} is called absent but is active (intensity {present[au].letter})")
            elif au not in observed:
                reasons.append(f"au: {au} is called absent but was not estimated")
            elif c["numbered"]:  # true, but parse() counts it as cited: rewards and AU-F1 would punish it
                reasons.append(f"au: absent {au} is cited by number; name it ({AU_NAMES.get(au, au)}) instead")
            continue
        if au not in present:
            reasons.append(f"au: {au} is cited as active but is not in the evidence")
            continue
        real = present[au].letter
        if c["letter"] and c["letter"] != real:
            reasons.append(f"intensity: {au} is stated as {c['letter']} but the evidence says {real}")
        if c["word"] and _WORD_LETTER[c["word"]] != real:
            reasons.append(f"intensity: {au} is called {c['word']} but the evidence says {real} "
                           f"({INTENSITY_WORDS[real]})")
    for au in cited_aus(text):  # the parser's reading: every AU it sees must be accounted for
        if au not in seen and au not in present:
            reasons.append(f"au: {au} is cited but is not in the evidence")
    return list(dict.fromkeys(reasons))


# ---- classifier, numbers, quotes ---------------------------------------------------------------

def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?;])\s+|\n", text) if s.strip()]


def _check_classifier(text: str, ev: E.Evidence) -> list[str]:
    reasons = []
    for s in _sentences(text):
        low = s.lower()
        i = low.find("classifier")
        if i < 0:
            continue
        voice = "voice" in low[:i]  # "Voice expression classifier", "The voice classifier"
        ranked, where = (ev.voice_classifier, "a voice") if voice else (ev.classifier, "a face")
        if not ranked:
            reasons.append(f"classifier: cites an expression classifier but none ran on {where}")
            continue
        named = [lab for _, lab in label_mentions(s[i:], ev.taxonomy)]
        if named and named[0] != ranked[0][0]:
            reasons.append(f"classifier: says the classifier favours {named[0]} but its top label is "
                           f"{ranked[0][0]}")
    return reasons


def _numbers(obs: Observations, ev: E.Evidence) -> list[float]:
    nums: list[float] = []

    def walk(x):
        if isinstance(x, bool):
            return
        if isinstance(x, (int, float)):
            nums.append(float(x))
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v)

    walk(obs.to_dict())
    nums += [s for _, s in ev.prototypes] + [p for _, p in ev.classifier] + [p for _, p in ev.voice_classifier]
    face = obs.main_face
    if face is not None and face.present_aus:  # the prompt's hint scores (present AUs only)
        nums += [s for _, s in match_prototypes({a.au: a.intensity for a in face.present_aus})]
    return nums


def _check_numbers(text: str, obs: Observations, ev: E.Evidence) -> list[str]:
    nums = _numbers(obs, ev)
    reasons = []
    for m in _DECIMAL.finditer(text):
        x, k = float(m.group(1)), len(m.group(1).split(".")[1])
        if not any(abs(v - x) <= 10 ** -k + 1e-9 for v in nums):
            reasons.append(f"number: {m.group(1)} appears nowhere in the evidence")
    return reasons


def _check_quotes(text: str, obs: Observations) -> list[str]:
    sources = " ".join(t for t in (obs.text, obs.audio.transcript if obs.audio else None) if t)
    hay = re.sub(r"\s+", " ", sources).lower()
    return [f'quote: "{q}" does not occur in the text or transcript'
            for q in _QUOTED.findall(text) if re.sub(r"\s+", " ", q).strip().lower() not in hay]


# ---- entry points --------------------------------------------------------------------------------

def verify_text(text: str, obs: Observations, labels: list[str], taxonomy=None) -> list[str]:
    """Reasons why an assistant text fails against ``obs`` and gold ``labels`` (empty: passes)."""
    tax = get_taxonomy(taxonomy)
    if not isinstance(text, str) or not text.startswith(RESPONSE_PREFIX):
        return [f"format: assistant text does not start with {RESPONSE_PREFIX!r}"]
    reasons: list[str] = []
    ex = parse(text, tax)
    if not ex.well_formed or ex.issues:
        reasons.append(f"format: not well-formed ({', '.join(ex.issues) or 'parts missing'})")
    gold = [normalize_label(lab, tax) or lab for lab in labels]
    if not gold or gold[0] not in tax.labels:
        return reasons + [f"label: gold label {labels[:1]} is not in taxonomy {tax.name}"]
    if ex.emotion != gold[0]:
        reasons.append(f"label: answer is {ex.emotion!r}, gold is {gold[0]!r}")
    if ex.conclusion_emotion != gold[0]:
        reasons.append(f"label: conclusion names {ex.conclusion_emotion!r}, gold is {gold[0]!r}")
    if tax.multi_label and set(ex.emotions) != set(gold):
        reasons.append(f"label: answer lists {ex.emotions}, gold is {gold}")
    body = text.split("</think>")[0]
    unquoted = _QUOTED.sub('""', body)  # quoted words are the speaker's, not claims
    ev = E.analyse(obs, tax)
    reasons += _check_aus(unquoted, obs)
    reasons += _check_prosody(unquoted, obs)
    reasons += _check_classifier(unquoted, ev)
    reasons += _check_numbers(unquoted, obs, ev)
    reasons += _check_quotes(body, obs)
    return reasons


def record_observations(record: dict) -> Observations:
    """The Observations stored in a record (``record["observations"]``, a ``to_dict()``)."""
    if not isinstance(record.get("observations"), dict):
        raise ValueError(f"{record.get('id')}: record carries no observations")
    return observations_from_dict(record["observations"])


def verify(record: dict, obs: Observations | None = None) -> list[str]:
    """Reasons why an SFT record fails (empty list: it passes); ``obs`` defaults to the stored ones."""
    try:
        obs = obs if obs is not None else record_observations(record)
    except (ValueError, KeyError, TypeError) as e:
        return [f"record: {e}"]
    messages = record.get("messages") or []
    if len(messages) < 3 or [m.get("role") for m in messages[:2]] != ["system", "user"] \
            or messages[-1].get("role") != "assistant":
        return ["record: messages must be system, user, ..., assistant"]
    reasons = []
    have, want = record.get("evidence_aus"), (obs.evidence_aus() if obs.main_face is not None else None)
    if (have is None) != (want is None) or sorted(have or [], key=au_key) != sorted(want or [], key=au_key):
        reasons.append(f"record: evidence_aus {have} differ from the observations {want}")
    labels = record.get("labels") or ([record["label"]] if record.get("label") else [])
    if record.get("label") and labels and labels[0] != record["label"]:
        reasons.append("record: label is not the first of labels")
    return reasons + verify_text(messages[-1].get("content", ""), obs, labels, record.get("taxonomy"))


def category(reason: str) -> str:
    """The category of a reason string ("au: ..." -> "au")."""
    return reason.split(":", 1)[0] if ":" in reason else "other"
