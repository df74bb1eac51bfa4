"""The verifier's per-claim checks: sections, modality talk, classifier claims, numbers, times, confidence words.

Each ``*_flags`` function returns ``(code, detail)`` pairs; ``explanation.verify`` gathers them into
a Verdict. Text arrives with quoted words blanked out (they are the speaker's, not claims).

Deliberately not here: the AU and prosody claim readers (``explanation.claims``), label
agreement of the parts (``explanation.verify``) and anything that changes the text.
"""

from __future__ import annotations

import re

from affectllm.explanation import evidence_facts as E
from affectllm.explanation.claims import _AU_NAME, _AU_NUM, _DECIMAL, _NAME_TO_AU, _TIME
from affectllm.knowledge.emfacs import AU_SIGNALS, match_prototypes
from affectllm.perception.observations import Observations
from affectllm.knowledge.taxonomy import label_mentions, normalize_label

# ---- sections ----------------------------------------------------------------------------------

_DANGLING = re.compile(r"(?:[,:;(\-\u2013/&+]|\b(?:and|or|but|the|a|an|of|to|with|at|is|are|was|which|that|"
                       r"because|so|than|as|by|for|in|on|from|its|their|while|whereas))\s*$", re.I)
_BULLET = re.compile(r"^\s*(?:[-*\u2022\u2013]|\d+[.)])\s+")
_END = re.compile(r"[.!?][)\"'\]]*\s*$")


def section_flags(ex) -> list[tuple[str, str]]:
    """empty_section for a missing or empty part; cut_section for a part that stops mid-sentence.

    A line is cut when it ends on a dangling word or mark ("and", ",", "(") or leaves a bracket or
    double quote open ("highest (0"); a prose interpretation or conclusion must also end with a
    full stop, "!" or "?" (bullet lists need not).
    """
    out = []
    for name in ("observations", "interpretation", "conclusion"):
        part = getattr(ex, name)
        if not part.strip():
            out.append(("empty_section", f"the {name} part is missing or empty"))
            continue
        lines = [ln.strip() for ln in part.splitlines() if ln.strip()]
        for ln in lines:
            if ln.count("(") > ln.count(")") or ln.count('"') % 2 or _DANGLING.search(ln):
                out.append(("cut_section", f"the {name} part stops mid-sentence: {ln[-40:]!r}"))
                break
        else:
            if name != "observations" and not _BULLET.match(lines[-1]) and not _END.search(lines[-1]):
                out.append(("cut_section", f"the {name} part does not end a sentence: {lines[-1][-40:]!r}"))
    return out


# ---- talk about a modality the input lacks -------------------------------------------------------

_VOICE = re.compile(r"\b(voices?|voiced|vocal\w*|prosod\w*|pitch\w*|loudness|intonation|speech|speaking|spoken|"
                    r"speaker'?s?|audio|acoustic\w*|heard|utterance)\b", re.I)
_WORDS = re.compile(r"\b(words?|transcripts?|text|wording|written|wrote)\b", re.I)
_FACE = re.compile(r"\b(faces?|facial|action units?|brows?|eyebrows?|smil\w*|frown\w*|cheeks?|lips?|mouth|"
                   r"jaw|eyes?|eyelids?|nose)\b", re.I)


def modality_flags(text: str, obs: Observations) -> list[tuple[str, str]]:
    """wrong_modality: a photo has no voice or words, text alone no face or voice, audio no face."""
    for signal in AU_SIGNALS.values():  # FACS knowledge quoted with an AU ("seen in speech") is not voice talk
        text = text.replace(signal, "")
    has_face_input = obs.main_face is not None or obs.image is not None or obs.video is not None
    has_text = bool((obs.text or "").strip() or (obs.audio is not None and obs.audio.transcript.strip()))
    out = []
    for ok, pattern, what in ((obs.audio is not None, _VOICE, "a voice"), (has_text, _WORDS, "words"),
                              (has_face_input, _FACE, "a face")):
        m = None if ok else pattern.search(text)
        if m:
            out.append(("wrong_modality", f"speaks of {m.group(0)!r} but the input has no {what[2:]}"
                        if what != "words" else f"speaks of {m.group(0)!r} but the input has no text or speech"))
    return out


# ---- classifier claims ---------------------------------------------------------------------------

_AGREE = re.compile(r"\bagree[sd]?\b|\balso puts\b|\bconfirms?\b|\bin line with\b|\bbacks? (?:this|it)\b", re.I)
_DISAGREE = re.compile(r"\bdisagree[sd]?\b|\b(?:does not|doesn't|do not|don't) agree\b|\bcontradicts?\b", re.I)


def _channels(obs: Observations, ev: E.Evidence, extra: dict) -> dict[str, list[tuple[str, float]]]:
    """Classifier channel -> its scores as (taxonomy label, p), best first."""
    out = {"face": ev.classifier, "voice": ev.voice_classifier}
    for name, scores in extra.items():
        out[name] = E._ranked(scores, ev.taxonomy)[0]
    return out


def _which(before: str, extra: dict) -> str:
    words = re.findall(r"[a-z]+", before.lower())[-3:]
    for name in extra:
        if name.lower() in words:
            return name
    if "voice" in words or "audio" in words or "speech" in words:
        return "voice"
    return "face"


_RANKS = re.compile(r"\b(?:puts|ranks) \w+ (?:first|highest|on top)\b|\brates \w+ highest\b", re.I)
# where a classifier's own clause ends: what follows is about other evidence ("..., and AU12 matches")
_CLAUSE_END = re.compile(r",\s*(?:and|but|while|whereas)\b|\bbut\b|\bwhile\b|\bwhereas\b|\bprototype\b|"
                         r"\bEMFACS\b|\baction units?\b|\bAU\d", re.I)


def _score_flags(name: str, seg: str, ranked: list[tuple[str, float]], ev: E.Evidence,
                 label_scores: dict[str, list[float]]) -> list[tuple[str, str]]:
    """wrong_label_score: a number in a classifier's own clause ("puts neutral first (0.42)") must be
    that classifier's score of the label it follows, to its printed precision. Only numbers that are
    the label's score from another source (a prototype's) are flagged here; :func:`number_flags`
    flags the rest, once."""
    cut = _CLAUSE_END.search(seg)
    seg = seg[:cut.start()] if cut else seg
    raw = {"face": ev.classifier_raw, "voice": ev.voice_classifier_raw}.get(name, [])
    tax, out, start = ev.taxonomy, [], 0
    for m in _DECIMAL.finditer(seg):
        labels = label_mentions(seg[start:m.start()], tax, keep_negated=True)
        start = m.end()
        if not labels:
            continue
        label = labels[-1][1]
        x, k = float(m.group(1)), len(m.group(1).split(".")[1])
        own = [v for lab, v in ranked if lab == label] or [0.0]
        own += [v for n, v in raw if normalize_label(n, tax) == label]
        def near(vs, x=x, k=k):
            return any(abs(v - x) <= 10 ** -k + 1e-9 for v in vs)

        if not near(own) and near(label_scores.get(label, [])):
            out.append(("wrong_label_score", f"gives the {name} classifier's {label} as {m.group(1)}, but it "
                                             f"scores {label} {max(own):.2f}"))
    return out


def classifier_flags(text: str, obs: Observations, ev: E.Evidence, answer: str | None,
                     extra: dict) -> list[tuple[str, str]]:
    """false_agreement: a classifier named as favouring, agreeing or disagreeing when its scores say otherwise."""
    channels, out, label_scores = _channels(obs, ev, extra), [], _label_scores(obs, ev, extra)
    for s in re.split(r"(?<=[.!?;])\s+|\n", text):
        for r in _RANKS.finditer(s):
            if not re.search(r"\bclassifiers?\b", s[:r.start()], re.I):
                out.append(("false_agreement", f"{s[:r.end()].strip()!r}: only a classifier of the evidence "
                                               f"ranks labels, and none is named"))
        hits = list(re.finditer(r"\bclassifiers?\b", s, re.I))
        for i, m in enumerate(hits):
            name = _which(s[max(0, m.start() - 40):m.start()], extra)
            seg = s[m.end():hits[i + 1].start() if i + 1 < len(hits) else len(s)]
            ranked = channels.get(name) or []
            if not ranked:
                missing = (name == "face" and obs.main_face is None) or (name == "voice" and obs.audio is None)
                out.append(("wrong_modality" if missing else "false_agreement",
                            f"cites the {name} classifier but none ran on "
                            + {"face": "a face", "voice": "a voice"}.get(name, "this input")))
                continue
            top, p = ranked[0]
            out += _score_flags(name, seg, ranked, ev, label_scores)
            named = [lab for _, lab in label_mentions(seg, ev.taxonomy)]
            if named and named[0] != top:
                out.append(("false_agreement", f"says the {name} classifier favours {named[0]} but its top "
                                               f"label is {top} ({p:.2f})"))
            elif _DISAGREE.search(seg):
                if answer == top:
                    out.append(("false_agreement", f"says the {name} classifier disagrees but it ranks the "
                                                   f"answer {answer} first ({p:.2f})"))
            elif _AGREE.search(seg) and answer is not None and answer != top:
                out.append(("false_agreement", f"says the {name} classifier agrees but it ranks {top} first "
                                               f"({p:.2f}), not the answer {answer}"))
    return out


# ---- numbers -------------------------------------------------------------------------------------

def _label_scores(obs: Observations, ev: E.Evidence, extra: dict) -> dict[str, list[float]]:
    """Taxonomy label -> every score the evidence gives it (classifiers, prototypes, hint scores)."""
    tax, out = ev.taxonomy, {}

    def add(name: str, v: float) -> None:
        lab = normalize_label(name, tax)
        if lab is not None:
            out.setdefault(lab, []).append(float(v))

    for pairs in (ev.classifier, ev.classifier_raw, ev.voice_classifier, ev.voice_classifier_raw, ev.prototypes):
        for name, v in pairs:
            add(name, v)
        if pairs:  # a label a ranking leaves out scored 0 there ("with anger at 0.00")
            for lab in tax.labels:
                if lab not in {normalize_label(n, tax) for n, _ in pairs}:
                    out.setdefault(lab, []).append(0.0)
    face = obs.main_face
    if face is not None and face.aus:  # the prompt's hint (all AUs) and the older present-only hint
        for aus in ({a.au: a.intensity for a in face.aus}, {a.au: a.intensity for a in face.present_aus}):
            for name, v in (match_prototypes(aus) if aus else []):
                add(name, v)
    for scores in extra.values():
        for name, v in scores.items():
            add(name, v)
    return out


def _au_values(obs: Observations) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for a in (obs.main_face.aus if obs.main_face else []):
        out.setdefault(a.au, []).append(float(a.intensity))
    for au, v in (obs.video.au_summary.items() if obs.video else []):
        out.setdefault(au, []).extend(float(x) for k, x in v.items() if k in ("peak", "mean"))
    return out


def _anchor(clause: str, tax) -> tuple[str, str] | None:
    """The last label or AU named in ``clause``: ("label", label) or ("au", "AU12"), or None."""
    best: tuple[int, str, str] | None = None
    for pos, lab in label_mentions(clause, tax, keep_negated=True):
        best = max(best or (-1, "", ""), (pos, "label", lab))
    if best:  # a label outranks an AU: "matched by AU1 (score 0.02)" scores the label's prototype
        return best[1], best[2]
    for m in _AU_NUM.finditer(clause):
        best = max(best or (-1, "", ""), (m.start(), "au", f"AU{int(m.group(1))}"))
    for m in _AU_NAME.finditer(clause):
        best = max(best or (-1, "", ""), (m.start(), "au", _NAME_TO_AU[m.group(1).lower()]))
    return (best[1], best[2]) if best else None


def number_flags(text: str, obs: Observations, ev: E.Evidence, extra: dict) -> list[tuple[str, str]]:
    """invented_number / wrong_label_score: each decimal must be a score or intensity of what it is attached to.

    A decimal belongs to the last label or AU named before it in its clause (after the previous
    number): "happy 0.70" must be a score of happiness, "AU12 ... 3.6" AU12's intensity. A number
    attached to nothing must still appear somewhere in the evidence. Times ("1.80 s") are left to
    :func:`time_flags`, and do not end the clause: in "AU12 from 0.60 s, peaking at 3.1" the 3.1 is AU12's.
    """
    scores, au_vals = _label_scores(obs, ev, extra), _au_values(obs)
    anywhere = ([v for vs in scores.values() for v in vs] + [v for vs in au_vals.values() for v in vs]
                + [v for _, v in ev.classifier_raw + ev.voice_classifier_raw])  # names outside the taxonomy too
    times = {t.start(1) for t in _TIME.finditer(text)}
    out = []
    prev = 0
    for m in _DECIMAL.finditer(text):
        if m.start(1) in times:
            continue
        x, k = float(m.group(1)), len(m.group(1).split(".")[1])

        def near(vs, x=x, k=k):
            return any(abs(v - x) <= 10 ** -k + 1e-9 for v in vs)

        start = max(prev, max((b.end() for b in re.finditer(r"[.!?;](?=\s)|\n", text[:m.start()])), default=0))
        prev = m.end()
        anchor = _anchor(text[start:m.start()], ev.taxonomy)
        if anchor and anchor[0] == "label":
            if near(scores.get(anchor[1], [])):
                continue
            owner = next((lab for lab, vs in scores.items() if near(vs)), None)
            if owner is not None:
                out.append(("wrong_label_score", f"{m.group(1)} is given to {anchor[1]} but is the score of {owner}"))
            else:
                out.append(("invented_number", f"{m.group(1)} for {anchor[1]} appears nowhere in the evidence"))
        elif anchor and anchor[0] == "au":
            if not near(au_vals.get(anchor[1], [])):
                have = ", ".join(f"{v:.2f}" for v in au_vals.get(anchor[1], [])) or "none"
                out.append(("invented_number", f"{m.group(1)} is given to {anchor[1]} whose intensity is {have}"))
        elif not near(anywhere):
            out.append(("invented_number", f"{m.group(1)} appears nowhere in the evidence"))
    return out


# ---- times ---------------------------------------------------------------------------------------

def time_flags(text: str, obs: Observations) -> list[tuple[str, str]]:
    """invented_time: each time ("1.80 s") must be an onset, apex, the duration or the face frame's
    time of the item's video (``VideoObs.times``), to its printed precision; any time is invented
    when the input has no video. Any of the video's times will do: which AU a time is said of is
    not checked (rewordings place it too freely to read reliably)."""
    allowed = obs.video.times() if obs.video is not None else []
    out = []
    for m in _TIME.finditer(text):
        x, k = float(m.group(1)), len(m.group(1).split(".")[1])
        if obs.video is None:
            out.append(("invented_time", f"{m.group(0)!r} is a time, but the input has no video"))
        elif not any(abs(v - x) <= 0.5 * 10 ** -k + 1e-9 for v in allowed):
            out.append(("invented_time", f"{m.group(0)!r} is no onset, apex, duration or face-frame time of the "
                                         f"video ({', '.join(f'{v:g}' for v in sorted(set(allowed)))} s)"))
    return out


# ---- confidence words ----------------------------------------------------------------------------

HIGH_P = 0.9  # at or above: "low confidence", "weak evidence", "uncertain" contradict the answer
LOW_P = 0.4  # below: "clearly", "certainly", "high confidence" contradict it
_LOW = re.compile(r"\blow[- ]confidence\b|\bweak (?:evidence|cues?)\b|\bevidence is weak\b|\buncertain\w*\b|"
                  r"\bunsure\b|\bnot (?:sure|certain)\b|\btentative\w*\b|\bhard to (?:say|tell)\b|\bunclear\b|"
                  r"\bnot (?:a |very )?confident\b", re.I)
_HIGH = re.compile(r"\bhigh[- ]confidence\b|\bcertainly\b|\bdefinitely\b|\bclearly (?:shows?|expresses|indicates|"
                   r"is|a)\b|\bunmistakabl\w*|\bwithout (?:a )?doubt\b|\bno doubt\b|\bconfident(?:ly)?\b|"
                   r"\bobviously\b", re.I)


def confidence_flags(text: str, probability: float | None) -> list[tuple[str, str]]:
    """confidence_mismatch: hedging next to p >= HIGH_P, or certainty next to p < LOW_P."""
    if probability is None:
        return []
    low, high = _LOW.search(text), _HIGH.search(text)
    if low and probability >= HIGH_P:
        return [("confidence_mismatch", f"says {low.group(0)!r} but gives the answer p={probability:.2f}")]
    if high and probability < LOW_P and not re.search(r"\b(?:not|no|never)\s+\S*\s*$", text[:high.start()], re.I):
        return [("confidence_mismatch", f"says {high.group(0)!r} but gives the answer p={probability:.2f}")]
    return []
