"""Templated chain-of-thought: the three-part rationale for one labelled item and its Observations.

:func:`write_rationale` states what was perceived (Observations: each active AU with its FACS name,
intensity letter and word, and what it usually signals; for a video, when the AUs that matter set
in and peak; the expression classifier; prosody descriptors; salient words), reads it
(Interpretation: for a video, that the face described is its apex frame; the EMFACS prototype the
AUs match and how well, conflicts, agreement across modalities, the runner-up emotion and why it loses) and ends on
the gold label (Conclusion). Every slot has several phrasings, picked by a RNG seeded with
``"{seed}:{sample id}"``, so the model does not learn one sentence and a rebuild is identical.

Honesty rules: only evidence present in the Observations is cited (an AU is named as active only
when it is, as absent only when it was estimated and found absent -- and then by its FACS name,
not its number, since every "AU<n>" counts as cited for the parser, rewards and metrics); when the evidence does not
back the label the text says so ("the face shows few cues", "the words carry it"). ``verify``
checks every record against these rules.

Deliberately not here: choosing the label (the dataset's), the answer format (``explanation.format``, ``explanation.parse``), the
checks (``verify``) and the evidence arithmetic (``evidence``).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from affectllm.knowledge.facs import AU_NAMES, INTENSITY_WORDS
from affectllm.knowledge.emfacs import AU_SIGNALS, PROSODY_CUES
from affectllm.perception.observations import Observations
from affectllm.explanation.parse import format_explanation
from affectllm.knowledge.taxonomy import Taxonomy, fold_scores, get_taxonomy, valence_arousal
from affectllm.explanation.checks import HIGH_P
from affectllm.explanation import evidence_facts as E

MAX_AUS = 6  # AUs listed one by one; weaker ones are summarised (small LLMs lose track of long lists)
MAX_WORDS = 3

_AU_LINE = (
    "{au} {name}, intensity {letter} ({word}): {signal}",
    "{au} {name} at intensity {letter} ({word}); it shows {signal}",
    "{au} ({name}), intensity {letter} ({word}), meaning {signal}",
    "{au} {name}, intensity {letter} ({word}), i.e. {signal}",
)
_NO_AU = ("Face: no action unit is clearly active", "The face shows no clearly active action unit",
          "Face at rest: no action unit rises above the presence threshold")
# A video's timing line: (the line, one AU's onset and apex). Times print with 2 decimals, the
# duration with 1; the verifier matches each time to the video's to its printed precision.
MAX_TIMED_AUS = 3
_TIMING = (("Over the {dur:.1f} s video, {items}", "sets in at {on:.2f} s and peaks at {apex:.2f} s"),
           ("Timing over the {dur:.1f} s video: {items}", "from {on:.2f} s, peaking at {apex:.2f} s"),
           ("In the {dur:.1f} s clip, {items}", "starts at {on:.2f} s and is strongest at {apex:.2f} s"))
_APEX = ("The face described is the video's apex frame, at {t:.2f} s.",
         "The action units above are read at {t:.2f} s, the frame with the most action-unit activity.",
         "The face is described at its apex frame ({t:.2f} s), where the action units are strongest overall.")
_KEY_NAMES = {"pitch": "Pitch", "loudness": "Loudness", "rate": "Speaking rate", "pauses": "Pauses",
              "voice": "Voice quality"}
_CONCLUDE = ("The {who} most likely expresses {L}.", "Taken together, the evidence points to {L}.",
             "So the most likely emotion is {L}.", "Overall, this reads as {L}.")
# Weak or conflicting evidence: the conclusion still names the gold label, but says how shaky it is.
_CONCLUDE_WEAK = ("The evidence is weak, so this is a low-confidence call: {L}.",
                  "With only weak cues, the answer is {L}, with low confidence.")
# The answer's probability is low although the cues fit it (channels split): the conclusion hedges.
_CONCLUDE_UNSURE = ("The cues lean to {L}, but this is an uncertain call.",
                    "The most likely reading is {L}, though not a confident one.")
UNSURE_P = 0.5  # below this decided probability the conclusion hedges whatever the cues say
CONFIDENT_P = HIGH_P  # at or above the verifier's HIGH_P nothing may sound unsure


@dataclass
class Rationale:
    """The three parts, the answer, and how well the evidence backs it (for reports and filters)."""

    observations: list[str]
    interpretation: str
    conclusion: str
    labels: list[str]  # answer labels, primary first
    support: dict[str, str] = field(default_factory=dict)  # channel -> supports/partial/conflicts
    level: str = "unsupported"  # supported / mixed / weak / unsupported (evidence.overall)
    runner_up: str | None = None

    def render(self) -> str:
        """The assistant text, rendered by the one renderer (starts with RESPONSE_PREFIX)."""
        label = self.labels[0] if len(self.labels) == 1 else self.labels
        return format_explanation(self.observations, self.interpretation, self.conclusion, label)


def _join(items: list[str]) -> str:
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _names(aus: list[str]) -> str:
    # Absent AUs are named, never numbered: the one parser counts every "AU<n>" as cited, and the
    # AU-grounding reward and metric would read "AU4 is not active" as citing AU4.
    return _join([AU_NAMES.get(au, au) for au in aus])


def _quote(word: str) -> str:
    return '"' + re.sub(r"\s+", " ", word).strip().replace('"', "") + '"'


class _Writer:
    def __init__(self, ev: E.Evidence, obs: Observations, labels: list[str], rng: random.Random,
                 media: tuple[str, ...], probability: float | None = None):
        self.ev, self.obs, self.labels, self.rng, self.media = ev, obs, labels, rng, media
        self.L = labels[0]
        self.p = probability  # the decided answer's probability (inference and decided records)

    def pick(self, options) -> str:
        return self.rng.choice(tuple(options))

    # ---- Observations ---------------------------------------------------------------------
    def observations(self) -> list[str]:
        ev, out = self.ev, []
        if ev.has_face:
            for a in ev.aus[:MAX_AUS]:
                signal = AU_SIGNALS.get(a.au, "an action of the " + a.name)
                out.append(self.pick(_AU_LINE).format(au=a.au, name=a.name, letter=a.letter,
                                                      word=INTENSITY_WORDS[a.letter], signal=signal))
            if len(ev.aus) > MAX_AUS:
                out.append(f"{len(ev.aus) - MAX_AUS} weaker action unit(s) are also active")
            if not ev.aus:
                out.append(self.pick(_NO_AU))
            out += self._timing_line()
            face = self.obs.main_face
            if face.flags:
                out.append("Face caveat: " + ", ".join(f.replace("_", " ") for f in face.flags))
            if ev.classifier_raw:
                top = ev.classifier_raw[:2]
                scores = ", ".join(f"{k} {v:.2f}" for k, v in top)
                out.append(self.pick(("Expression classifier: " + scores,
                                      "The expression classifier gives " + scores)))
        elif "image" in self.media or "video" in self.media:
            out.append(self.pick(("No face was found", "No face could be analysed")))
        audio = self.obs.audio
        if audio is not None:
            for key, words in ev.prosody:
                name = _KEY_NAMES.get(key, key.capitalize())
                forms = ((f"{name}: {words}",) if key == "voice"
                         else (f"{name}: {words}", f"Voice, {name.lower()}: {words}"))
                out.append(self.pick(forms))
            if not ev.prosody:
                out.append("Voice: no usable prosody measures")
            if ev.voice_classifier_raw:
                scores = ", ".join(f"{k} {v:.2f}" for k, v in ev.voice_classifier_raw[:2])
                out.append(self.pick(("Voice expression classifier: " + scores,
                                      "The voice classifier gives " + scores)))
            if audio.flags:
                out.append("Audio caveat: " + ", ".join(f.replace("_", " ") for f in audio.flags))
        out += self._word_lines()
        return out

    def _timing_line(self) -> list[str]:
        """When the AUs that matter start and peak over a video (the answer's prototype AUs first,
        then the strongest; at most :data:`MAX_TIMED_AUS`), or [] for a still or an untimed video."""
        video = self.obs.video
        if video is None or not video.au_summary:
            return []
        order = E.matched_prototype_aus(self.ev, self.L) + [a.au for a in self.ev.aus]
        # Only AUs active on the described face: the verifier checks AU claims against that face.
        aus = [au for au in dict.fromkeys(order) if au in video.au_summary][:MAX_TIMED_AUS]
        if not aus:
            return []
        form, each = self.pick(_TIMING)
        first = (video.timeline.get("t") or [0.0])[0]  # the first analysed frame's time
        parts = []
        for au in aus:
            v = video.au_summary[au]
            on, apex = v["onset_s"], v["apex_s"]
            if f"{on:.2f}" == f"{first:.2f}":  # active when the video (or webcam window) begins: no onset seen
                what = (f"is strongest right at the start ({apex:.2f} s)" if f"{on:.2f}" == f"{apex:.2f}"
                        else f"is already active at the start ({on:.2f} s) and peaks at {apex:.2f} s")
            elif f"{on:.2f}" == f"{apex:.2f}":
                what = f"sets in and peaks at {apex:.2f} s"
            else:
                what = each.format(on=on, apex=apex)
            parts.append(f"{au} ({AU_NAMES.get(au, au)}) {what}")
        return [form.format(dur=video.duration_s, items="; ".join(parts))]

    def _word_lines(self) -> list[str]:
        ev, out = self.ev, []
        if not ev.has_text:
            return out
        src = "transcript" if not (self.obs.text or "").strip() else "text"
        shown = [w for w in ev.words if w.label is not None][:MAX_WORDS]
        for w in shown:
            q = _quote(w.word)
            if w.negated:
                out.append(f"The word {q} appears negated, so it does not signal {w.label}")
            else:
                out.append(self.pick((f"The word {q} points to {w.label}",
                                      f"Salient word: {q}, suggesting {w.label}",
                                      f"{q} in the {w.source} signals {w.label}")))
        ranked = self._text_ranked()
        if ranked:
            (top, p), rest = ranked[0], ranked[1:2]
            scores = f"{top} {p:.2f}" + "".join(f", {lab} {q:.2f}" for lab, q in rest)
            drivers = [w for w in self.obs.text_drivers if w and w in (self.obs.text or "")]
            out.append(self.pick((f"The text classifier gives {scores}", f"Text classifier: {scores}")))
            if drivers:
                out.append(self.pick(("The words that move it most: ", "Its driving words: "))
                           + ", ".join(_quote(w) for w in drivers))
        elif not shown:
            out.append(self.pick((f"No emotion word is recognised in the {src}",
                                  f"The {src} contains no recognised emotion word")))
        n = ev.emphasis.get("exclamations", 0)
        if n:
            out.append(f"{n} exclamation mark{'s add' if n > 1 else ' adds'} emphasis")
        for w in ev.emphasis.get("caps", [])[:1]:
            out.append(f"Capitalised {_quote(w)} adds emphasis")
        return out

    # ---- Interpretation -------------------------------------------------------------------
    def interpretation(self) -> str:
        parts = [self._apex_frame(), self._face(), self._classifier(), self._voice(), self._voice_classifier(),
                 self._text_classifier(), self._words(), self._agreement(), self._runner_up()]
        return " ".join(p for p in parts if p)

    def _apex_frame(self) -> str:
        """For a video: the face described is its apex frame (said only when that time is known)."""
        video = self.obs.video
        if video is None or video.face_frame_s is None or not self.ev.has_face or not video.au_summary:
            return ""
        return self.pick(_APEX).format(t=video.face_frame_s)

    def _face(self) -> str:
        ev, L = self.ev, self.L
        if not ev.has_face:
            return ""
        if not ev.aus:
            if L == "neutral":
                return self.pick(("With no action unit clearly active, the face is at rest, as in a "
                                  "neutral expression.",
                                  "A face at rest, with no active action unit, fits a neutral state."))
            return self.pick(("The face shows few cues: no action unit is clearly active.",
                              "The face itself gives little away, with no action unit clearly active."))
        s = ev.proto_score(L)
        out = []
        if E.proto_emotion(L, ev.taxonomy) is not None:
            matched, missing = E.matched_prototype_aus(ev, L), E.missing_prototype_aus(ev, L)
            if matched and s:
                quality = "closely" if s >= 0.75 else "partly" if s >= 0.45 else "loosely"
                verb = "matches" if len(matched) == 1 else "match"
                text = self.pick((f"{_join(matched)} {verb} the EMFACS {L} prototype {quality} (score {s:.2f})",
                                  f"The EMFACS {L} prototype is matched {quality} by {_join(matched)} "
                                  f"(score {s:.2f})"))
                if missing:
                    verb = "is" if len(missing) == 1 else "are"
                    text += f", but the {_names(missing[:3])} {verb} not active"
                out.append(text + ".")
            else:
                text = f"None of the action units of the EMFACS {L} prototype is active"
                if missing:
                    verb = "is" if len(missing) == 1 else "are"
                    text += f" (the {_names(missing[:3])} {verb} absent)"
                out.append(text + ", so the face alone does not show it.")
        elif L == "neutral":
            s = s if s is not None else 0.0
            strongest = ev.aus[0]
            if s >= 0.5:
                out.append(f"The active units are weak, which fits a neutral face (neutral score {s:.2f}).")
            else:
                out.append(f"{strongest.au} at intensity {strongest.letter} argues against a neutral face "
                           f"(neutral score {s:.2f}).")
        else:
            out.append(f"EMFACS defines no {L} prototype, so the action units can only hint at it.")
        if ev.prototypes:
            top, ts = ev.prototypes[0]
            if top != L and ts > (s or 0.0) + E.MARGIN:
                out.append(self.pick((f"On the action units alone, {top} fits better ({ts:.2f}).",
                                      f"Taken alone, the action units fit {top} better ({ts:.2f}).")))
        return " ".join(out)

    def _classifier(self) -> str:
        return self._ranking_sentence("expression", self.ev.classifier)

    def _ranking_sentence(self, name: str, ranked: list[tuple[str, float]]) -> str:
        """What the ``name`` classifier's ranking says about the answer (one sentence, or "")."""
        L = self.L
        if not ranked:
            return ""
        top, p = ranked[0]
        if top == L:
            # Not "agrees": after "the action units fit X better" that reads as agreeing with X.
            return self.pick((f"The {name} classifier rates {L} highest ({p:.2f}).",
                              f"The {name} classifier also puts {L} first ({p:.2f})."))
        pl = dict(ranked).get(L, 0.0)
        return self.pick((f"The {name} classifier leans to {top} ({p:.2f}), with {L} at {pl:.2f}.",
                          f"The {name} classifier favours {top} ({p:.2f}) over {L} ({pl:.2f})."))

    def _text_ranked(self) -> list[tuple[str, float]]:
        """The text classifier's scores folded into the taxonomy, best first ([] without any)."""
        scores = fold_scores(self.obs.text_expression or {}, self.ev.taxonomy)
        return sorted(scores.items(), key=lambda kv: -kv[1])

    def _text_classifier(self) -> str:
        return self._ranking_sentence("text", self._text_ranked())

    def _voice_classifier(self) -> str:
        return self._ranking_sentence("voice", self.ev.voice_classifier)

    def _voice(self) -> str:
        ev, L = self.ev, self.L
        if not ev.cues:
            return ""
        if ev.cues == ["moderate"]:
            if L == "neutral":
                return "The even, mid-range voice fits a calm, neutral delivery."
            return "The voice is mid-range on every measure, so it carries little of the emotion."
        cues = [c for c in ev.cues if c != "moderate"]
        phrases = _join([PROSODY_CUES[c].phrase for c in cues[:3]])
        phrases = phrases[0].upper() + phrases[1:]
        arousal = sum(PROSODY_CUES[c].arousal for c in cues)
        want = {"high": 1, "low": -1}.get(_arousal(L), 0)
        word = "high" if arousal > 0 else "low"
        one = len(cues[:3]) == 1  # verb agreement: "Slow speech signals", "A and B signal"
        give, point, signal, suggest = (("gives", "points", "signals", "suggests") if one
                                        else ("give", "point", "signal", "suggest"))
        if arousal == 0:
            return f"{phrases} {give} mixed arousal cues."
        if arousal * want > 0:
            return self.pick((f"{phrases} {point} to {word} arousal, which fits {L}.",
                              f"{phrases} {signal} {word} arousal, in line with {L}."))
        return self.pick((f"{phrases} {suggest} {word} arousal, which is unusual for {L}.",
                          f"{phrases} {point} to {word} arousal, which does not fit {L} well."))

    def _words(self) -> str:
        ev, L = self.ev, self.L
        if not ev.has_text:
            return ""
        mine = [w for w in ev.words if w.label == L and not w.negated]
        other = [w for w in ev.words if w.label not in (None, L) and not w.negated]
        if mine:
            w = mine[0]
            if w.kind == "name":
                return self.pick((f"The words name it directly ({_quote(w.word)}).",
                                  f"The {w.source} itself says {_quote(w.word)}, which names {L}."))
            return self.pick((f"The words point to it ({_quote(w.word)}).",
                              f"The {w.source} says {_quote(w.word)}, which usually signals {L}."))
        if other:
            return f"The words point elsewhere: {_quote(other[0].word)} suggests {other[0].label}."
        carriers = [self._modality(c) for c, v in E.support(ev, L).items() if v == E.SUPPORTS]
        if "voice" in carriers:
            return "The words themselves carry no emotion, so the voice carries it."
        if "face" in carriers:
            return "The words themselves carry no emotion, so the face carries it."
        if not ev.has_face and self.obs.audio is None:
            if L == "neutral" and ev.scores.get("words", {}).get("neutral"):
                return self.pick(("No emotion word and no emphasis: the text reads as matter-of-fact.",
                                  "The text is plain, with no emotion word or emphasis, as neutral statements are."))
            return self.pick((f"The text names no emotion outright, so {L} has to be read from what it says.",
                              f"No emotion is named; {L} comes from the content of the text as a whole."))
        return "The words themselves carry no emotion."

    @staticmethod
    def _modality(channel: str) -> str:
        return {"face": "face", "classifier": "face", "voice": "voice", "voice_classifier": "voice",
                "words": "words"}[channel]

    def _agreement(self) -> str:
        ev, L = self.ev, self.L
        sup = E.support(ev, L)
        mods: dict[str, str] = {}
        for c, v in sup.items():  # a modality supports when any of its channels does
            m = self._modality(c)
            mods[m] = E.SUPPORTS if v == E.SUPPORTS or mods.get(m) == E.SUPPORTS else v
        yes = [m for m, v in mods.items() if v == E.SUPPORTS]
        no = [m for m, v in mods.items() if v != E.SUPPORTS]
        if len(mods) == 1 and yes:
            return f"Only the {yes[0]} {'carry' if yes[0] == 'words' else 'carries'} evidence here."
        if len(yes) >= 2:
            return self.pick((f"{_join(['the ' + m for m in yes]).capitalize()} agree on {L}.",
                              f"The {_join(yes)} point the same way."))
        if yes and no:
            verb = "carry" if yes[0] == "words" else "carries"
            neg = "does" if len(no) == 1 and no[0] != "words" else "do"
            return f"The {yes[0]} {verb} the emotion; the {_join(no)} {neg} not."
        if not yes and mods:
            sure = self._confident_classifier()  # a sure classifier is evidence: not "weak" (read off p 0.96)
            if sure:
                return f"Apart from the {sure} classifier, no cue singles out {L}."
            return f"No cue singles out {L} clearly; the evidence is weak."
        return ""

    def _confident_classifier(self) -> str | None:
        """The name of a classifier (text, voice, expression) that puts the answer first with p >= 0.8,
        or, when the decided answer is confident (p >= CONFIDENT_P), one that puts it first at all
        (the calibrated decision is sure of what that classifier ranks first)."""
        floor = 0.0 if self.p is not None and self.p >= CONFIDENT_P else 0.8
        for name, r in (("text", self._text_ranked()), ("voice", self.ev.voice_classifier),
                        ("expression", self.ev.classifier)):
            if r and r[0][0] == self.L and r[0][1] >= floor:
                return name
        return None

    def _runner_up(self) -> str:
        ev, L = self.ev, self.L
        ru = E.runner_up(ev, L)
        if ru is None:
            return ""
        R, sr = ru
        sl = E.combined(ev).get(L, 0.0)
        fits = [self._modality(c) for c in ev.channels if ev.scores[c].get(R, 0) >= 0.15]
        fits = list(dict.fromkeys(fits))
        where = f"it fits the {_join(fits)}" if fits else "it is also possible"
        if sl > sr + E.MARGIN:
            missing = E.missing_prototype_aus(ev, R)
            why = f"its {_names(missing[:1])} is not active" if missing else f"{L} fits more of the evidence"
            return self.pick((f"{R.capitalize()} is the runner-up: {where}, but {why}.",
                              f"The runner-up is {R}: {where}, but {why}."))
        sure = self._confident_classifier()
        if sr > sl + E.MARGIN and sure:  # the cues differ, but a sure classifier decides
            return (f"{R.capitalize()} fits the {_join(fits) or 'cues'} better on its own, but the "
                    f"{sure} classifier's confidence in {L} outweighs it.")
        if sr > sl + E.MARGIN:  # the evidence favours another label: say so
            return f"{R.capitalize()} fits the {_join(fits) or 'cues'} better, which makes {L} uncertain here."
        return f"{R.capitalize()} is a close alternative: {where}, and the cues do not rule it out."

    # ---- Conclusion -----------------------------------------------------------------------
    def conclusion(self, level: str, probability: float | None = None) -> str:
        L = self.L
        who = "speaker" if self.obs.audio is not None else "face" if self.ev.has_face else "text"
        if self._confident_classifier():  # a sure, agreeing classifier is evidence: not a "weak" call
            level = "supported"
        if probability is not None and probability < UNSURE_P and level in ("supported", "mixed") \
                and len(self.labels) == 1:
            return self.pick(_CONCLUDE_UNSURE).format(L=L)
        text = self.pick(_CONCLUDE if level in ("supported", "mixed") else _CONCLUDE_WEAK)
        text = text.format(who=who, L=L)
        if len(self.labels) > 1:
            text = f"Alongside {_join(self.labels[1:])}, the main emotion is {L}."
            if level not in ("supported", "mixed"):
                text = "The cues are weak; a" + text[1:]
        return text


def _arousal(label: str) -> str | None:
    try:
        return valence_arousal(label)[1]
    except ValueError:
        return None


def write_rationale(sample_id: str, obs: Observations, labels: list[str], *,
                    taxonomy: str | Taxonomy | None = None, seed: int = 0,
                    media: tuple[str, ...] = (), probability: float | None = None) -> Rationale:
    """The templated rationale for one item.

    ``labels`` are labels of ``taxonomy`` (primary first); ``media`` the item's modalities
    (``Sample.modalities``), so an image without a face can say so; ``probability``: the decided
    answer's probability, when there is one (inference): below :data:`UNSURE_P` the conclusion
    hedges even when the cues fit the label. Raises ValueError when the
    primary label is not in the taxonomy (the caller maps dataset labels first).
    """
    tax = get_taxonomy(taxonomy)
    if not labels or labels[0] not in tax.labels:
        raise ValueError(f"{sample_id}: label {labels[:1]} is not in taxonomy {tax.name}")
    if not tax.multi_label:
        labels = labels[:1]  # a single-label taxonomy answers with one label (parse reads one)
    ev = E.analyse(obs, tax)
    rng = random.Random(f"{seed}:{sample_id}")  # str seeds hash with SHA-512: stable across runs
    w = _Writer(ev, obs, list(labels), rng, tuple(media), probability)
    obs_lines = w.observations()
    if not obs_lines:
        raise ValueError(f"{sample_id}: no evidence to describe")
    level = E.overall(ev, labels[0])
    interp = w.interpretation() or "The evidence is sparse."
    ru = E.runner_up(ev, labels[0])
    return Rationale(observations=obs_lines, interpretation=interp, conclusion=w.conclusion(level, probability),
                     labels=list(labels), support=E.support(ev, labels[0]), level=level,
                     runner_up=ru[0] if ru else None)
