"""The one parser (and the one renderer) of affectllm's explanation format.

Format, rendered by :func:`format_explanation` and read by :func:`parse`::

    <think>
    Observations:
    - AU6 cheek raiser, intensity C (marked)
    - AU12 lip corner puller, intensity D (pronounced)
    Interpretation: Raised cheeks with pulled-up lip corners form a felt smile.
    Conclusion: The face most likely shows happiness.
    </think>
    <answer>happiness</answer>

Eval metrics, RL rewards, inference and the data engine's checks all call :func:`parse`; nothing
else in the project reads model output. The parser is forgiving (extra text, bold or heading
labels, any case, missing tags, several answers) and records every deviation as a flag or an
``issues`` entry, so a reward can punish what the metric tolerates.

Deliberately not here: scoring (``eval.metrics``, ``train.rewards``) and label words
(``affectllm.knowledge.taxonomy``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from affectllm.explanation.format import ANSWER_CLOSE, ANSWER_OPEN, HEADINGS, PARTS, TAGS, THINK_CLOSE, THINK_OPEN, compose
from affectllm.knowledge.emfacs import FACS_AU_NUMBERS
from affectllm.knowledge.taxonomy import Taxonomy, find_labels, get_taxonomy, label_mentions, normalize_label



@dataclass
class Explanation:
    """What one generated explanation says. Texts are "" and labels None when absent."""

    text: str  # the completion as given
    taxonomy: str  # name of the taxonomy labels were mapped into
    emotion: str | None  # the answer, normalised; falls back to the conclusion (then the text) without an answer tag
    emotions: list[str]  # every label named in the answer (several only for multi-label taxonomies)
    raw_answer: str | None  # text inside the last <answer> tag, stripped (None without a tag)
    cited_aus: list[str]  # FACS AUs cited anywhere, e.g. ["AU6", "AU12"], sorted by number
    cues: list[str]  # the observation bullets (or sentences)
    observations: str
    interpretation: str
    conclusion: str
    conclusion_emotion: str | None  # the label the conclusion settles on (see _conclusion_label)
    has_think: bool  # a complete <think>...</think> block
    has_answer: bool  # a complete <answer>...</answer> block
    has_parts: bool  # all three parts non-empty, in order Observations, Interpretation, Conclusion
    answer_in_taxonomy: bool  # the answer maps to a label of the taxonomy
    multiple_answers: bool  # more than one <answer> block (the last one counts)
    answer_from_conclusion: bool  # no usable answer tag: ``emotion`` came from the conclusion or text
    extra_text: bool  # non-blank text before <think> or after </answer>
    well_formed: bool  # has_think, has_answer, has_parts, answer_in_taxonomy, and a single answer
    issues: list[str] = field(default_factory=list)  # short codes of every deviation found
    probabilities: dict[str, float] = field(default_factory=dict)  # label -> probability, filled by the model

    @property
    def consistent(self) -> bool:
        """The conclusion names the same label as the answer tag (a fallback answer does not count)."""
        return (self.has_answer and not self.answer_from_conclusion and self.emotion is not None
                and self.conclusion_emotion == self.emotion)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["consistent"] = self.consistent
        return d


# ---- regular expressions ------------------------------------------------------------------------

_TAG = re.compile(rf"</?(?:{'|'.join(TAGS)})>", re.I)
_BS = r"(?:(?:\*\*|__)[ \t]*)?"  # optional bold marker and the blanks after it
# A part label: "Observations:", "**Observations:**", "**Observations**:", "## Observations:",
# or a bold/heading label alone on its line ("**Observations**"). Written without adjacent
# optional blanks, so degenerate text (thousands of spaces) cannot make it backtrack quadratically.
_HEADING = re.compile(
    rf"(?im)(?:^[ \t>]*(?:#{{1,6}}[ \t]*)?|(?<=[\s>.*]))"
    rf"(?:{_BS}(?P<a>observations?|interpretation|conclusion)[ \t]*{_BS}[:\uff1a][ \t]*(?:\*\*|__)?"
    rf"|(?:#{{1,6}}[ \t]*|\*\*|__)(?P<b>observations?|interpretation|conclusion)[ \t]*{_BS}$)")
_AU_HEAD = r"(?:\bAUs?|\b(?i:action)[ \t]+(?i:units?))"  # "AU" upper case: "au"/"aus" are words elsewhere
_AU_NUM = r"\d{1,2}[A-Ea-e]?\b"
# "AU12", "AU 12", "AU-12", "AU12C", "action unit 12", "AU6+12" (EMFACS notation), and for the
# plural forms lists such as "AUs 6, 12 and 25".
_AU_CITE = re.compile(
    rf"(?P<plural>\bAUs|\b(?i:action)[ \t]+(?i:units))?(?(plural)|{_AU_HEAD})[ \t]*[-_#:]?[ \t]*"
    rf"(?P<nums>{_AU_NUM}(?:[ \t]*\+[ \t]*(?:AU[ \t]*)?{_AU_NUM}"
    rf"|(?(plural)[ \t]*(?:,|and|&|/)[ \t]*(?:AU[ \t]*)?{_AU_NUM}))*)")
_BULLET = re.compile(r"^\s*(?:[-*\u2022\u2013]|\d+[.)])\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+(?=\S)")


def _blocks(text: str, tag: str) -> list[tuple[int, int, str]]:
    """(start, end, content) of each complete ``<tag>...</tag>``, case-insensitive, non-nested.

    Same result as ``re.finditer(r"<tag>(.*?)</tag>")`` but linear: once no closing tag
    follows, no later opening tag can have one either (the regex would rescan for each).
    """
    low, open_, close = text.lower(), f"<{tag}>", f"</{tag}>"
    out, pos = [], 0
    while (start := low.find(open_, pos)) >= 0:
        stop = low.find(close, start + len(open_))
        if stop < 0:
            break
        out.append((start, stop + len(close), text[start + len(open_):stop]))
        pos = stop + len(close)
    return out


def cited_aus(text: str | None) -> list[str]:
    """FACS AUs cited in ``text``, sorted by number: "AU 12", "action unit 6", "AU1+2" all count.

    Numbers FACS does not define (AU3, AU99) are ignored.
    """
    found = set()
    for m in _AU_CITE.finditer(text or ""):
        for num in re.findall(r"\d{1,2}", m.group("nums")):
            if int(num) in FACS_AU_NUMBERS:
                found.add(int(num))
    return [f"AU{n}" for n in sorted(found)]


def _split_parts(body: str) -> tuple[dict[str, str], bool]:
    """Texts of the three labelled parts (repeats concatenated) and whether they came in order."""
    heads = [(m.start(), m.end(), (m.group("a") or m.group("b")).lower()) for m in _HEADING.finditer(body)]
    texts: dict[str, list[str]] = {p: [] for p in PARTS}
    first_seen: list[str] = []
    for i, (_, end, name) in enumerate(heads):
        name = "observations" if name.startswith("observation") else name
        stop = heads[i + 1][0] if i + 1 < len(heads) else len(body)
        chunk = body[end:stop].strip()
        texts[name].append(chunk)
        if name not in first_seen:
            first_seen.append(name)
    in_order = first_seen == [p for p in PARTS if p in first_seen]
    return {p: "\n".join(t for t in texts[p] if t).strip() for p in PARTS}, in_order


def _cues(observations: str) -> list[str]:
    """Bullet items when the observations are a list, else its sentences."""
    lines = [ln for ln in observations.splitlines() if ln.strip()]
    if any(_BULLET.match(ln) for ln in lines):
        items: list[str] = []
        for ln in lines:
            if _BULLET.match(ln) or not items:
                items.append(_BULLET.sub("", ln).strip())
            else:  # a wrapped continuation line belongs to the bullet above
                items[-1] = f"{items[-1]} {ln.strip()}"
        return [c for c in items if c]
    return [s.strip() for s in _SENTENCE_END.split(" ".join(ln.strip() for ln in lines)) if s.strip()]


def _conclusion_label(conclusion: str, tax: Taxonomy) -> str | None:
    """The label a conclusion settles on: the only one it names, else the last one it names.

    Negated mentions ("rather than fear", "not anger") are ignored; conclusions end on the
    verdict ("..., so the answer is happiness"), hence the last mention when several remain.
    """
    mentions = label_mentions(conclusion, tax)
    return mentions[-1][1] if mentions else None


def parse(text: str | None, taxonomy: str | Taxonomy | None = None, *, prefix: str = "") -> Explanation:
    """Read one completion into an :class:`Explanation` (never raises on malformed text).

    ``prefix``: text the generation continued from (``explanation.format.RESPONSE_PREFIX``,
    ``"<think>\nObservations:"``); it is put in front unless ``text`` already starts with it.
    """
    tax = get_taxonomy(taxonomy)
    text = text if isinstance(text, str) else ("" if text is None else str(text))
    if prefix and not text.lstrip().startswith(prefix.strip()):
        text = prefix + text
    issues: list[str] = []

    thinks = _blocks(text, "think")
    answers = _blocks(text, "answer")
    has_think, has_answer = bool(thinks), bool(answers)
    raw_answer = answers[-1][2].strip() if answers else None
    if not has_answer:
        issues.append("no_answer")
        start = text.lower().rfind(ANSWER_OPEN)
        if start >= 0:  # cut off before </answer>: still read it
            raw_answer = text[start + len(ANSWER_OPEN):].strip()
            issues.append("unclosed_answer")
    multiple = len(answers) > 1
    if multiple:
        issues.append("multiple_answers")

    # Where the three parts live: the last think block, else everything before the answer.
    if thinks:
        body = thinks[-1][2]
    else:
        issues.append("no_think")
        cut = re.search(re.escape(ANSWER_OPEN), text, re.I)
        body = _TAG.sub(" ", text[:cut.start()] if cut else text)
    parts, in_order = _split_parts(body)
    present = [p for p in PARTS if parts[p]]
    has_parts = len(present) == 3 and in_order
    issues += [f"missing_{p}" for p in PARTS if not parts[p]]
    if present and not in_order:
        issues.append("parts_out_of_order")

    # Text before <think> or after the last </answer> (reasoning without a think tag is not "extra").
    before = text[:thinks[0][0]] if thinks else ""
    after = text[answers[-1][1]:] if answers else ""
    extra = bool(before.strip() or after.strip())
    if extra:
        issues.append("extra_text")

    conclusion_emotion = _conclusion_label(parts["conclusion"], tax)
    emotions = find_labels(raw_answer, tax) if raw_answer else []
    emotion = normalize_label(raw_answer, tax) if raw_answer else None
    if emotion is None and len(emotions) > 1 and tax.multi_label:
        emotion = emotions[0]  # "joy, love": the first listed is the model's top label
    answer_in_taxonomy = emotion is not None
    if raw_answer and not answer_in_taxonomy:
        issues.append("ambiguous_answer" if len(emotions) > 1 else "unknown_label")

    from_conclusion = False
    if emotion is None and not (raw_answer and has_answer):
        # No usable answer tag: take the conclusion's label, else a single label named anywhere.
        emotion = conclusion_emotion
        if emotion is None and not present:
            emotion = normalize_label(_TAG.sub(" ", text), tax)
        if emotion is not None:
            from_conclusion = True
            emotions = [emotion]
            issues.append("answer_from_conclusion")
    if conclusion_emotion is not None and answer_in_taxonomy and conclusion_emotion != emotion:
        issues.append("conclusion_disagrees")

    well_formed = has_think and has_answer and has_parts and answer_in_taxonomy and not multiple
    return Explanation(
        text=text, taxonomy=tax.name, emotion=emotion, emotions=emotions, raw_answer=raw_answer,
        cited_aus=cited_aus(text), cues=_cues(parts["observations"]), observations=parts["observations"],
        interpretation=parts["interpretation"], conclusion=parts["conclusion"],
        conclusion_emotion=conclusion_emotion, has_think=has_think, has_answer=has_answer,
        has_parts=has_parts, answer_in_taxonomy=answer_in_taxonomy, multiple_answers=multiple,
        answer_from_conclusion=from_conclusion, extra_text=extra, well_formed=well_formed, issues=issues)


def format_explanation(observations: Sequence[str], interpretation: str, conclusion: str,
                       label: str | Sequence[str], taxonomy: str | Taxonomy | None = None) -> str:
    """Render the format (the data engine's only way to write targets); ``parse`` reads it back.

    ``observations`` become bullet items; ``label`` may be a list for multi-label answers.
    Raises ValueError for empty parts, newlines inside a bullet, or text that would not read back
    unchanged (tags or part labels inside a part). With ``taxonomy`` it also checks what a
    training target must satisfy: every label belongs to the taxonomy and the conclusion settles
    on the (first) label, so the target is well formed and consistent.
    """
    cues = [str(o).strip() for o in observations]
    labels = [label] if isinstance(label, str) else list(label)
    answer = ", ".join(str(x).strip() for x in labels)
    if not cues or not all(cues):
        raise ValueError("observations must be a non-empty list of non-empty strings")
    if any("\n" in c for c in cues):
        raise ValueError("an observation must fit on one line")
    interpretation, conclusion = interpretation.strip(), conclusion.strip()
    if not interpretation or not conclusion or not answer:
        raise ValueError("interpretation, conclusion and label must be non-empty")
    text = compose(cues, interpretation, conclusion, answer)
    back = parse(text)
    if (back.cues != cues or back.interpretation != interpretation or back.conclusion != conclusion
            or back.raw_answer != answer or not back.has_parts or back.multiple_answers):
        raise ValueError("explanation parts contain tags or part labels, so they would not read back: "
                         f"{text!r}")
    if taxonomy is not None:
        tax = get_taxonomy(taxonomy)
        outside = [x for x in labels if x not in tax.labels]
        if outside:
            raise ValueError(f"labels {outside} are not in taxonomy {tax.name}")
        checked = parse(text, tax)
        if not (checked.well_formed and checked.consistent):
            raise ValueError(f"the conclusion {conclusion!r} does not settle on {labels[0]!r} "
                             f"(it reads as {checked.conclusion_emotion!r})")
    return text


def format_instructions(taxonomy: str | Taxonomy | None = None, example: bool = True) -> str:
    """The format described for a system prompt, listing the taxonomy's labels.

    ``example`` appends one worked explanation (an anger face); leave it out where a small model
    might copy the example's label.
    """
    tax = get_taxonomy(taxonomy)
    one = "one label" if not tax.multi_label else "one label, or several separated by commas"
    return (
        f"Reason step by step inside {THINK_OPEN}{THINK_CLOSE} in three labelled parts, then answer inside "
        f"{ANSWER_OPEN}{ANSWER_CLOSE}.\n"
        f"{HEADINGS['observations']} a bulleted list of the evidence (Action Units as AU numbers with names and "
        "intensities, voice, words).\n"
        f"{HEADINGS['interpretation']} what the evidence means together.\n"
        f"{HEADINGS['conclusion']} one sentence naming the emotion.\n"
        f"Answer with {one} from: {', '.join(tax.labels)}."
        + ("\nExample:\n" + _EXAMPLE if example else ""))


_EXAMPLE = compose(["AU4 brow lowerer, intensity C (marked)", "AU23 lip tightener, intensity B (slight)"],
                   "Lowered brows with tightened lips signal anger.", "The face most likely shows anger.", "anger")
FORMAT_INSTRUCTIONS = format_instructions()
