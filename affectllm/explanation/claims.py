"""Literal readers of the claims a rationale makes about face AUs and voice prosody.

``au_claims(text)`` lists each AU statement (active or absent, with any intensity letter or word);
``prosody_claims(text, dim)`` each statement about one prosody dimension; ``check_aus`` and
``check_prosody`` compare them with the Observations and return ``(kind, detail)`` pairs. The
reading is deliberately literal (phrases, negation words, clause boundaries), tuned to the
templates of ``affectllm.explanation.template`` and plain rewrites of them: an AU it cannot place is read as an
assertion that the AU is active, so unusual phrasing is rejected rather than waved through.

Deliberately not here: the verdict, flag codes and every other check (``explanation.verify``).
"""

from __future__ import annotations

import re

from affectllm.knowledge.facs import AU_NAMES, INTENSITY_WORDS
from affectllm.perception.observations import Observations
from affectllm.explanation.parse import cited_aus

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
# A decimal with a seconds unit ("1.80 s", "1.8s", "1.8 seconds") is a time, not a score or intensity.
_TIME = re.compile(r"(?<![\w.])(\d+\.\d+)[ \t\u00a0]?(?:s|secs?|seconds?)\b")

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
            window = re.split(r"[.!?;\n]", text[max(0, m.start() - 30):m.start()])[-1]  # this sentence only
            before = re.findall(r"[a-z']+", window.lower())[-3:]
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


def check_prosody(text: str, obs: Observations) -> list[tuple[str, str]]:
    """(code, detail) per prosody claim the evidence contradicts or cannot back."""
    reasons, ev = [], evidence_prosody(obs)
    for dim in PROSODY_PATTERNS:
        for direction, _, neg, phrase in _claims(text, dim):
            have = ev[dim]
            if have is None:
                what = "no voice was perceived" if obs.audio is None else f"no {dim} measure was taken"
                reasons.append(("wrong_modality" if obs.audio is None else "false_prosody",
                                f"states {phrase!r} but {what}"))
            elif (not neg and have != direction) or (neg and have == direction):
                words = (obs.audio.descriptors.get(_DIM_SOURCE[dim]) or "ordinary") if obs.audio else "none"
                reasons.append(("false_prosody", f"states {'not ' if neg else ''}{phrase!r} but the evidence "
                                                 f"{dim} is {_DIR_WORD[have]} ({words})"))
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


def check_aus(text: str, obs: Observations) -> list[tuple[str, str]]:
    """(code, detail) per AU claim not backed by the main face: invented_au / wrong_intensity."""
    face = obs.main_face
    present = {a.au: a for a in face.present_aus} if face else {}
    observed = {a.au for a in face.aus} if face else set()
    reasons, seen = [], set()
    for c in au_claims(text):
        au = c["au"]
        seen.add(au)
        if c["absent"]:
            if au in present:
                reasons.append(("invented_au", f"{au} is called absent but is active (intensity {present[au].letter})"))
            elif au not in observed:
                reasons.append(("invented_au", f"{au} is called absent but was not estimated"))
            elif c["numbered"]:  # true, but parse() counts it as cited: rewards and AU-F1 would punish it
                reasons.append(("invented_au",
                                f"absent {au} is cited by number; name it ({AU_NAMES.get(au, au)}) instead"))
            continue
        if au not in present:
            reasons.append(("invented_au", f"{au} is cited as active but is not in the evidence"))
            continue
        real = present[au].letter
        if c["letter"] and c["letter"] != real:
            reasons.append(("wrong_intensity", f"{au} is stated as {c['letter']} but the evidence says {real}"))
        if c["word"] and _WORD_LETTER[c["word"]] != real:
            reasons.append(("wrong_intensity", f"{au} is called {c['word']} but the evidence says {real} "
                                                   f"({INTENSITY_WORDS[real]})"))
    for au in cited_aus(text):  # the parser's reading: every AU it sees must be accounted for
        if au not in seen and au not in present:
            reasons.append(("invented_au", f"{au} is cited but is not in the evidence"))
    return list(dict.fromkeys(reasons))




# An Observations bullet about one AU: "AU6 cheek raiser, intensity C (marked): <gloss>" and the
# template's other joints ("; it shows", ", meaning", ", i.e."); the gloss is what the AU means.
_AU_BULLET = re.compile(r"^\s*[-*]?\s*(AU\d{1,2})\b.*?\)\s*(?::|; it shows|, meaning|, i\.e\.)\s*(?P<gloss>.+?)\s*$",
                        re.I)


def _seen_in(gloss: str) -> tuple[list[str], set[str]]:
    """(words before "seen in", the emotions listed after it) of an AU gloss."""
    head, _, tail = gloss.partition("seen in")
    return re.findall(r"[a-z0-9]+", head), set(re.findall(r"[a-z]+", tail)) - {"and", "or", "the", "of"}


def _lists_fewer(want: str, have: str) -> bool:
    """A gloss that says what the AU looks like and lists some of the emotions it is seen in (a
    shorter list is no error: "raised inner brows, seen in sadness and worry")."""
    if "seen in" not in have or "seen in" not in want:
        return False
    (wh, wl), (hh, hl) = _seen_in(want), _seen_in(have)
    return bool(hh) and wh[:len(hh)] == hh and bool(hl) and hl <= wl


def check_au_meanings(observations: str) -> list[tuple[str, str]]:
    """wrong_au_meaning: an AU bullet whose description is not that AU's (``knowledge.emfacs.AU_SIGNALS``;
    a description may stop early, but not say something else)."""
    from affectllm.knowledge.emfacs import AU_SIGNALS

    out = []
    for line in observations.splitlines():
        m = _AU_BULLET.match(line)
        if not m:
            continue
        au = "AU" + str(int(m.group(1)[2:]))
        want = AU_SIGNALS.get(au, f"an action of the {AU_NAMES.get(au, '')}").lower()
        have = re.sub(r"[^a-z0-9() ,.-]+", " ", m.group("gloss").lower()).strip(" .,")
        if _lists_fewer(want, have):
            continue
        w, h = re.findall(r"[a-z0-9]+", want), re.findall(r"[a-z0-9]+", have)
        if h and w[:len(h)] != h:
            out.append(("wrong_au_meaning", f"{au} is described as {m.group('gloss').strip()!r}; it means {want!r}"))
    return out
