"""The one verifier of rationales: what a generated or written explanation claims, checked against its evidence.

``verify(text, obs, answer, probability) -> Verdict`` returns one :class:`Flag` per problem found,
each with a stable code (:data:`CODES`) and a detail naming the offending words or number. The data
engine's record checks, the training rewards (:func:`verifier_reward`), eval (:func:`flag_rates`,
:func:`rationale_stats`) and inference all call this module, so "acceptable" means one thing.

The checks are deliberately literal and conservative, like the templates they were tuned on
(``affectllm.explanation.template``): unusual phrasing is flagged rather than waved through, while the templates'
own output for real-looking evidence passes with no flag (the tests hold both sides).

Deliberately not here: parsing (``affectllm.explanation.parse``, the one parser), the evidence arithmetic
(``explanation.evidence_facts``), the AU/prosody claim readers (``explanation.claims``), gold-label
checks of training records (``data_engine.verify``) and any repair of a rationale.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from affectllm.explanation import evidence_facts as E
from affectllm.explanation.claims import _QUOTED, check_au_meanings, check_aus, check_prosody
from affectllm.explanation.checks import (classifier_flags, confidence_flags, modality_flags, number_flags,
                                          section_flags, time_flags)
from affectllm.explanation.knowledge_checks import knowledge_flags
from affectllm.perception.observations import Observations
from affectllm.explanation.parse import parse
from affectllm.knowledge.taxonomy import get_taxonomy, label_mentions, normalize_label

CODES = ("wrong_modality", "conclusion_mismatch", "interpretation_mismatch", "false_agreement",
         "invented_number", "invented_time", "invented_au", "wrong_au_meaning", "wrong_label_score", "wrong_intensity",
         "false_prosody", "cut_section", "empty_section", "misquoted_text", "confidence_mismatch", "malformed")

# Parser issues that have their own code (missing parts are empty sections; a conclusion that
# disagrees is a conclusion mismatch); every other issue is "malformed".
_OWN_CODE = {"missing_observations", "missing_interpretation", "missing_conclusion", "conclusion_disagrees"}
# "X fits better" / "X is more likely" said of a label other than the answer, with the claim not
# limited to one channel ("on the action units alone") and the answer not weighed in the sentence.
_BETTER = re.compile(r"\bfits?\b[^.;]{0,30}\bbetter\b|\bbetter fit\b|\bmore likely\b|\bmost likely\b|"
                     r"\bbest fit\b|\bfavou?rs?\b|\bpoints? (?:more )?(?:clearly )?to\b", re.I)
_HEDGE = re.compile(r"\balternative\b|\brunner-up\b|\balone\b|\buncertain\b|\belsewhere\b|\bno emotion\b", re.I)
_LIMITED = re.compile(r"\balone\b|\bon its own\b|\brunner-up\b|\bclassifier\b", re.I)


@dataclass(frozen=True)
class Flag:
    """One problem: ``code`` from :data:`CODES`, ``detail`` naming the words or number at fault."""

    code: str
    detail: str

    def to_dict(self) -> dict:
        return {"code": self.code, "detail": self.detail}


@dataclass
class Verdict:
    """All flags of one rationale (empty: it passes)."""

    flags: list[Flag] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.flags

    @property
    def codes(self) -> list[str]:
        """Distinct flag codes, in the order first raised."""
        return list(dict.fromkeys(f.code for f in self.flags))

    def to_dict(self) -> dict:
        return {"ok": self.ok, "flags": [f.to_dict() for f in self.flags]}


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?;])\s+|\n", text) if s.strip()]


def _label_flags(ex, answer: str | None, tax, ev: E.Evidence) -> list[tuple[str, str]]:
    out = []
    if ex.conclusion:
        if ex.conclusion_emotion is None:
            out.append(("conclusion_mismatch", f"the conclusion names no emotion: {ex.conclusion[:80]!r}"))
        elif answer is not None and ex.conclusion_emotion != answer:
            out.append(("conclusion_mismatch", f"the conclusion settles on {ex.conclusion_emotion}, "
                                               f"the answer is {answer}"))
    if ex.interpretation and answer is not None:
        # Sentences that weigh an alternative ("X is a close alternative", "on the AUs alone X fits
        # better") or say the words carry "no emotion" do not state the interpretation's verdict.
        named = [lab for s in _sentences(ex.interpretation) if not _HEDGE.search(s)
                 for _, lab in label_mentions(s, tax)]
        if named and answer not in named:
            out.append(("interpretation_mismatch", f"the interpretation names {', '.join(dict.fromkeys(named))} "
                                                   f"but never the answer {answer}"))
        for s in _sentences(ex.interpretation):
            if not _BETTER.search(s) or _LIMITED.search(s):
                continue
            here = [lab for _, lab in label_mentions(s, tax)]
            if here and answer not in here:
                out.append(("interpretation_mismatch", f"{s.strip()!r} favours {here[0]}, the answer is {answer}"))
            elif here and here[0] != answer and re.search(r"\bbetter\b", s, re.I):
                # "X fits the cues better, which makes <answer> uncertain": honest only when the
                # evidence does score X above the answer (the templates say it only then).
                both = E.combined(ev)
                x, a = both.get(here[0], 0.0), both.get(answer, 0.0)
                if x <= a + E.MARGIN:
                    out.append(("interpretation_mismatch", f"{s.strip()!r} says {here[0]} fits better, but the "
                                                           f"evidence scores {here[0]} {x:.2f} and {answer} {a:.2f}"))
        out += _reasoning_flags(ex.interpretation, answer, tax)
    return out


_RUNNER_UP = re.compile(r"\brunner-up is (\w+)|\b(\w+) is the runner-up", re.I)
_AROUSAL = re.compile(r"\b(high|low) arousal,? (which fits|in line with|which is unusual for|which does not fit) (\w+)",
                      re.I)


def _reasoning_flags(interpretation: str, answer: str, tax) -> list[tuple[str, str]]:
    """Reasoning that contradicts itself: the answer named as its own runner-up, or an arousal
    level said to fit (or not to fit) a label whose arousal is the other way round."""
    from affectllm.knowledge.taxonomy import valence_arousal

    out = []
    for m in _RUNNER_UP.finditer(interpretation):
        if normalize_label(m.group(1) or m.group(2), tax) == answer:
            out.append(("interpretation_mismatch", f"names the answer {answer} as its own runner-up"))
    for m in _AROUSAL.finditer(interpretation):
        label = normalize_label(m.group(3), tax)
        try:
            want = valence_arousal(label)[1] if label else None
        except ValueError:
            want = None
        if want not in ("high", "low"):
            continue
        fits = m.group(2).lower() in ("which fits", "in line with")
        if fits != (m.group(1).lower() == want):
            out.append(("interpretation_mismatch", f"{m.group(0)!r}: {label} is a {want}-arousal emotion"))
    return out


def _quote_flags(body: str, obs: Observations) -> list[tuple[str, str]]:
    sources = " ".join(t for t in (obs.text, obs.audio.transcript if obs.audio else None) if t)

    def norm(s: str) -> str:
        return re.sub(r"\s+", " ", s.replace("\u2019", "'").replace("\u2018", "'")).strip().lower()

    hay = norm(sources)
    return [("misquoted_text", f'"{q}" does not occur in the text or transcript')
            for q in _QUOTED.findall(body) if norm(q) not in hay]


def verify(text: str, obs: Observations, answer: str | None = None, probability: float | None = None,
           taxonomy=None, classifiers: dict[str, dict[str, float]] | None = None) -> Verdict:
    """Every flag of rationale ``text`` (the full completion, <think> and <answer>) against ``obs``.

    ``answer``: the label the system answered (default: the one the parser reads from the text);
    ``probability``: the probability it gave that answer (confidence words are checked against it
    when given); ``classifiers``: extra channel scores, e.g. ``{"text": {label: p}}``, so claims
    about "the text classifier" are checked too (face and voice classifiers come from ``obs``).
    """
    tax = get_taxonomy(taxonomy)
    text = text if isinstance(text, str) else ""
    ex = parse(text, tax)
    found: list[tuple[str, str]] = []
    other = [i for i in ex.issues if i not in _OWN_CODE]
    if other:
        found.append(("malformed", ", ".join(other)))
    mapped = normalize_label(answer, tax) if answer is not None else None
    if answer is not None and mapped is None:
        found.append(("malformed", f"the answer {answer!r} is not a label of {tax.name}"))
    if answer is not None and ex.has_answer and ex.emotion is not None and mapped is not None \
            and ex.emotion != mapped:
        found.append(("malformed", f"the answer tag says {ex.emotion}, the answer given is {mapped}"))
    answer = mapped if answer is not None else ex.emotion
    found += section_flags(ex)
    ev = E.analyse(obs, tax)
    found += _label_flags(ex, answer, tax, ev)
    end = text.lower().find("</think>")
    body = text[:end] if end >= 0 else text.split("<answer>")[0]
    unquoted = _QUOTED.sub('""', body)  # quoted words are the speaker's, not claims
    found += modality_flags(unquoted, obs)
    found += check_aus(unquoted, obs)
    found += check_au_meanings(ex.observations or "")
    found += check_prosody(unquoted, obs)
    found += classifier_flags(unquoted, obs, ev, answer, classifiers or {})
    found += number_flags(unquoted, obs, ev, classifiers or {})
    found += time_flags(unquoted, obs)
    found += knowledge_flags(unquoted, _QUOTED.sub('""', ex.interpretation or ""), obs, ev, answer, tax,
                             classifiers)
    found += _quote_flags(body, obs)
    found += confidence_flags(" ".join((ex.interpretation, ex.conclusion)), probability)
    return Verdict([Flag(c, d) for c, d in dict.fromkeys(found)])


# ---- users: rewards and eval ---------------------------------------------------------------------

def verifier_reward(text: str, obs: Observations, answer: str | None = None, probability: float | None = None,
                    taxonomy=None, classifiers=None, graded: bool = False) -> float:
    """1.0 for a rationale with no flag, else 0.0; ``graded``: 1 - 0.25 per distinct flag code, floored at 0."""
    v = verify(text, obs, answer, probability, taxonomy, classifiers)
    if not graded:
        return 1.0 if v.ok else 0.0
    return max(0.0, 1.0 - 0.25 * len(v.codes))


def _codes_of(item) -> set[str]:
    if isinstance(item, Verdict):
        return set(item.codes)
    if isinstance(item, dict):  # a stored verdict ({"ok", "flags"}) from predictions.jsonl
        item = item.get("flags") or []
    return {f["code"] if isinstance(f, dict) else getattr(f, "code", f) for f in item}


def flag_rates(verdicts: Iterable) -> dict[str, float]:
    """Share of rationales with at least one flag of each code, plus ``any`` and ``n``.

    Takes :class:`Verdict` objects, stored ``to_dict()`` verdicts, or lists of flags / codes.
    """
    sets = [_codes_of(v) for v in verdicts]
    n = len(sets)
    out: dict[str, float] = {c: (sum(c in s for s in sets) / n if n else 0.0) for c in CODES}
    out["any"] = sum(bool(s) for s in sets) / n if n else 0.0
    out["n"] = n
    return out


def rationale_stats(texts: Iterable[str | None], taxonomy=None) -> dict:
    """How varied and how long the rationales are.

    ``distinct_ratio``: distinct rationales (whitespace and case folded) / rationales;
    ``top_sentence_share``: share of rationales containing the commonest interpretation or
    conclusion sentence (one sentence repeated for 102 of 200 items reads 0.51), with that sentence;
    ``mean_length_words`` / ``median_length_words``; ``n`` counts non-empty texts.
    """
    kept = [t for t in texts if isinstance(t, str) and t.strip()]
    n = len(kept)
    if not n:
        return {"n": 0, "distinct_ratio": 0.0, "top_sentence_share": 0.0, "top_sentence": None,
                "mean_length_words": 0.0, "median_length_words": 0.0}
    folded = [re.sub(r"\s+", " ", t).strip().lower() for t in kept]
    per_item: Counter = Counter()
    for t in kept:
        ex = parse(t, taxonomy)
        per_item.update({re.sub(r"\s+", " ", s).strip().lower()
                         for s in _sentences(f"{ex.interpretation}\n{ex.conclusion}") if len(s.split()) >= 3})
    top = per_item.most_common(1)
    lengths = sorted(len(t.split()) for t in kept)
    mid = n // 2
    median = lengths[mid] if n % 2 else (lengths[mid - 1] + lengths[mid]) / 2
    return {"n": n, "distinct_ratio": len(set(folded)) / n,
            "top_sentence_share": top[0][1] / n if top else 0.0, "top_sentence": top[0][0] if top else None,
            "mean_length_words": sum(lengths) / n, "median_length_words": float(median)}


__all__ = ["CODES", "Flag", "Verdict", "flag_rates", "rationale_stats", "verifier_reward", "verify"]
