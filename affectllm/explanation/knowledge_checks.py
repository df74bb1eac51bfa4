"""The verifier's checks of what a rationale says about FACS/EMFACS knowledge and the evidence's ranking.

Claims a fluent small model makes up while every number in them is real (found by reading the
retrained mini's face rationales on the London set):

- an EMFACS prototype that does not exist, or something EMFACS does not have ("the EMFACS anxiety
  prototype", "the EMFACS neutral score", "the EMFACS happiness evaluator"): ``wrong_au_meaning``;
- an AU called the core of an emotion it is not the core of ("AU1 is also the core of joy"):
  ``wrong_au_meaning`` (:data:`~affectllm.knowledge.emfacs.AU_SIGNALS` names the two cores);
- a runner-up other than the evidence's (:func:`evidence_facts.runner_up`, what the template names),
  or the runner-up's "missing" AUs that are not in its prototype ("fear ... its nose wrinkler is not
  active"): ``interpretation_mismatch`` / ``wrong_au_meaning``;
- "no action unit is active" while the face shows one: ``invented_au``;
- "X fits the words better, which makes <answer> uncertain" while a classifier puts the answer
  first at >= 0.8 (read off GoEmotions drafts at text classifier 0.93): ``interpretation_mismatch``.

Deliberately not here: AU intensities and presence of named AUs (``explanation.claims``), numbers and
classifier claims (``explanation.checks``).
"""

from __future__ import annotations

import re

from affectllm.explanation import evidence_facts as E
from affectllm.explanation.checks import _channels
from affectllm.explanation.claims import _AU_NAME, _AU_NUM, _NAME_TO_AU
from affectllm.knowledge.emfacs import AU_SIGNALS, EMFACS_PROTOTYPES, EMFACS_VARIANTS
from affectllm.knowledge.taxonomy import normalize_label
from affectllm.perception.observations import Observations

_FER_NAMES = {"happy": "happiness", "sad": "sadness", "angry": "anger", "fearful": "fear", "surprised": "surprise",
              "disgusted": "disgust"}  # the expression classifier's own names for the prototypes' emotions
_EMFACS = re.compile(r"\bEMFACS\s+([A-Za-z-]+)(?:\s+([A-Za-z-]+))?")
_CORE = re.compile(r"\bcore of (?:the )?([A-Za-z]+)", re.I)
_RUNNER = re.compile(r"\brunner-up is (\w+)|\b(\w+) is the runner-up", re.I)
_ITS_MISSING = re.compile(r"\bits ([^.;:]{2,120}?) (?:is|are) not (?:active|present|shown)", re.I)
_NO_AU = re.compile(r"\b(?:no action units? (?:is |are )?(?:active|present|at all)|no action unit\b(?! of)|"
                    r"none of the action units (?:is|are) active)", re.I)


def _aus_in(text: str) -> list[str]:
    found = [(m.start(), f"AU{int(m.group(1))}") for m in _AU_NUM.finditer(text)]
    found += [(m.start(), _NAME_TO_AU[m.group(1).lower()]) for m in _AU_NAME.finditer(text)]
    return list(dict.fromkeys(au for _, au in sorted(found)))


def _prototype_aus(emotion: str) -> set[str]:
    return {s.au for combo in (EMFACS_PROTOTYPES[emotion], *EMFACS_VARIANTS.get(emotion, ())) for s in combo}


def _emfacs_flags(text: str, tax) -> list[tuple[str, str]]:
    """Every "EMFACS <label> prototype" must name a label EMFACS has a prototype for; "EMFACS defines
    no <label> prototype" must name one it has none for; nothing else is called EMFACS's."""
    out = []
    for m in _EMFACS.finditer(text):
        first, second = m.group(1).lower(), (m.group(2) or "").lower()
        if first in ("prototype", "prototypes"):
            continue
        if first == "defines":
            continue  # "EMFACS defines no X prototype": checked below
        # the prototype's own name or the taxonomy label standing for it, not a synonym ("anxiety")
        named = first in EMFACS_PROTOTYPES or first in _FER_NAMES or (
            first in tax.labels and E.proto_emotion(first, tax) is not None)
        if not named or second not in ("prototype", "prototypes"):
            out.append(("wrong_au_meaning", f"{m.group(0)!r}: EMFACS has prototypes for "
                                            f"{', '.join(EMFACS_PROTOTYPES)} only, and no other scores"))
    for m in re.finditer(r"\bEMFACS defines no (\w+) prototype", text, re.I):
        label = normalize_label(m.group(1), tax)
        if label is None or E.proto_emotion(label, tax) is not None:
            out.append(("wrong_au_meaning", f"{m.group(0)!r}: EMFACS does define a {m.group(1)} prototype"
                        if label else f"{m.group(0)!r}: {m.group(1)} is no label"))
    return out


def _core_flags(text: str, tax) -> list[tuple[str, str]]:
    """"<AU> ... the core of <label>": the AU must be the one AU_SIGNALS calls that emotion's core."""
    out = []
    for s in re.split(r"(?<=[.!?;])\s+|\n", text):
        for m in _CORE.finditer(s):
            aus = _aus_in(s[:m.start()])
            if not aus:
                continue
            au = aus[-1]
            label = normalize_label(m.group(1), tax)
            proto = E.proto_emotion(label, tax) if label else None
            if proto is None or f"core of {proto}" not in AU_SIGNALS.get(au, ""):
                out.append(("wrong_au_meaning", f"calls {au} the core of {m.group(1)}; "
                                                f"{au} means {AU_SIGNALS.get(au, 'something else')!r}"))
    return out


def _seconds(rankings: dict[str, list[tuple[str, float]]]) -> set[str]:
    """Each classifier's second label (a runner-up a reader can check against its scores)."""
    return {r[1][0] for r in rankings.values() if len(r) > 1}


def _runner_up_flags(interpretation: str, ev: E.Evidence, answer: str | None, tax,
                     rankings: dict) -> list[tuple[str, str]]:
    """The runner-up named must be the evidence's runner-up (:func:`evidence_facts.runner_up`, the
    template's) or some classifier's second label, and "its X is not active" must name AUs of that
    runner-up's prototype."""
    if answer is None:
        return []
    out = []
    want = E.runner_up(ev, answer)
    allowed = _seconds(rankings) | ({want[0]} if want else set())
    for s in re.split(r"(?<=[.!?;])\s+|\n", interpretation):
        m = _RUNNER.search(s)
        if not m:
            continue
        named = normalize_label(m.group(1) or m.group(2), tax)
        if named is None or named == answer:
            continue  # not a label, or the answer itself (verify._reasoning_flags says so)
        if named not in allowed:
            out.append(("interpretation_mismatch", f"names {named} as the runner-up, but the evidence's runner-up "
                                                   f"is {want[0] if want else 'none (no other label scores 0.2)'} "
                                                   f"and no classifier ranks {named} second"))
            continue
        missing = _ITS_MISSING.search(s[m.end():])
        if not missing:
            continue
        proto = E.proto_emotion(named, tax)
        allowed = _prototype_aus(proto) if proto else set()
        for au in _aus_in(missing.group(1)):
            if au not in allowed:
                out.append(("wrong_au_meaning", f"names {au} as a missing part of {named}, but it is not in "
                                                f"{named}'s EMFACS prototype"))
    return out


_BETTER_ALONE = re.compile(r"\b(\w+) fits (?:the )?[\w ,]{0,40}? better on its own\b", re.I)


def _better_alone_flags(interpretation: str, ev: E.Evidence, answer: str | None, tax) -> list[tuple[str, str]]:
    """"X fits the face better on its own, but the classifier's confidence ...": true only when the
    evidence does score X above the answer (the template says it only then)."""
    out = []
    both = E.combined(ev)
    for m in _BETTER_ALONE.finditer(interpretation):
        label = normalize_label(m.group(1), tax)
        if label is None or answer is None or label == answer:
            continue
        x, a = both.get(label, 0.0), both.get(answer, 0.0)
        if x <= a + E.MARGIN:
            out.append(("interpretation_mismatch", f"says {label} fits better on its own, but the evidence scores "
                                                   f"{label} {x:.2f} and {answer} {a:.2f}"))
    return out


_MAKES_UNCERTAIN = re.compile(r"\bwhich makes (\w+) uncertain\b", re.I)


def _sure_classifier_flags(interpretation: str, answer: str | None, tax,
                           rankings: dict) -> list[tuple[str, str]]:
    """"X fits the words better, which makes <answer> uncertain" while a classifier puts the answer
    first at >= 0.8: the template then says the classifier's confidence outweighs X; calling the
    answer uncertain misstates the evidence."""
    if answer is None:
        return []
    sure = next(((n, r[0][1]) for n, r in rankings.items() if r and r[0][0] == answer and r[0][1] >= 0.8), None)
    out = []
    for m in _MAKES_UNCERTAIN.finditer(interpretation):
        if sure and normalize_label(m.group(1), tax) == answer:
            out.append(("interpretation_mismatch", f"{m.group(0)!r}, but the {sure[0]} classifier puts {answer} "
                                                   f"first at {sure[1]:.2f}"))
    return out


def _no_au_flags(text: str, obs: Observations) -> list[tuple[str, str]]:
    face = obs.main_face
    present = [a for a in face.present_aus] if face is not None else []
    if not present:
        return []
    m = _NO_AU.search(text)
    if m is None:
        return []
    return [("invented_au", f"says {m.group(0)!r} but the face shows "
                            f"{', '.join(f'{a.au} ({a.letter})' for a in present)}")]


def knowledge_flags(text: str, interpretation: str, obs: Observations, ev: E.Evidence,
                    answer: str | None, tax, extra: dict | None = None) -> list[tuple[str, str]]:
    """All the checks above: ``text`` is the rationale's body (quotes blanked), ``interpretation`` its
    interpretation part, ``extra`` the classifier scores beyond face and voice (``verify``'s)."""
    rankings = _channels(obs, ev, extra or {})  # each classifier's scores, best first (the claims checks' own)
    return (_emfacs_flags(text, tax) + _core_flags(text, tax) + _runner_up_flags(interpretation, ev, answer, tax, rankings)
            + _better_alone_flags(interpretation, ev, answer, tax)
            + _sure_classifier_flags(interpretation, answer, tax, rankings) + _no_au_flags(text, obs))
