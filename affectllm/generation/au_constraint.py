"""Grounded AU citations at decoding time: the model may only write AU numbers the evidence holds.

Guided decoding starts each Observations bullet on a perceived AU, but the model completes the
line (and writes Interpretation) freely, and a small LLM likes to add a neighbour it has seen
often ("AU1 inner brow raiser, with AU2 ..."). Facial-R1 penalises such citations with a reward
after the fact; at inference we can simply forbid them. :class:`AUGrounding` is a transformers
``LogitsProcessor`` that gives ``-inf`` to every next token that would spell an AU number outside
the prompt's evidence ("AU2", "AU 2", "AU6+2"), or end a number that is only the start of an
allowed one ("AU1" when only AU12 is allowed). Other tokens are untouched, so decoding away from
AU references is exactly as before.

The parser's citation grammar (``explanation.parse.cited_aus``) is wider ("action unit 12", "AUs 6 and
12"); the forms guarded here are the ones models write after "AU".
"""

from __future__ import annotations

import re
from functools import lru_cache

import torch
from transformers import LogitsProcessor

_REF = re.compile(r"\bAU[ \t]*[-#:]?[ \t]*(\d+)[A-Ea-e]?")  # "AU12", "AU 12", "AU-12C"
_CHAIN = re.compile(r"[ \t]*\+[ \t]*(?:AU[ \t]*)?(\d+)[A-Ea-e]?")  # "+12", " + AU12" after a reference
_OPEN_AU = re.compile(r"\bAU[ \t]*[-#:]?[ \t]*$")  # "AU", "AU " with no number yet
_OPEN_CHAIN = re.compile(r"[A-Ea-e]?[ \t]*\+[ \t]*(?:AU[ \t]*)?$")  # "+", " + AU" right after a number
_SEPARATORS = " \t-#:"
_TAIL = 24  # characters of context enough to see an open reference


def number_set(aus: list[str]) -> set[str]:
    """{"6", "12"} from ["AU6", "AU12"]: the form the checks compare digits against."""
    return {re.sub(r"\D", "", a) for a in aus}


def au_numbers(text: str) -> list[tuple[int, int]]:
    """Spans of the AU numbers in ``text``: "AU6+12 and AU 25" -> the spans of 6, 12 and 25."""
    spans = []
    for m in _REF.finditer(text):
        spans.append(m.span(1))
        pos = m.end()
        while c := _CHAIN.match(text, pos):
            spans.append(c.span(1))
            pos = c.end()
    return spans


def breaks_grounding(before: str, token: str, allowed: set[str]) -> bool:
    """Would ``token`` after ``before`` write (or close) an AU number not in ``allowed``?
    A number still open at the end must be the start of an allowed one; a closed one, whole."""
    s, start = before + token, len(before)
    for a, b in au_numbers(s):
        if b < start:
            continue
        num = s[a:b]
        if b == len(s) and b > start:  # the token ends inside the number: it may go on
            if not any(x.startswith(num) for x in allowed):
                return True
        elif num not in allowed:
            return True
    return False


def _open_digits(text: str) -> str | None:
    """The digits of an AU number ``text`` ends inside ("" right after "AU" or "+"), else None."""
    if _OPEN_AU.search(text):
        return ""
    spans = au_numbers(text)
    if spans and spans[-1][1] == len(text):
        return text[spans[-1][0]:]
    if spans and _OPEN_CHAIN.fullmatch(text, spans[-1][1]):
        return ""
    return None


_DANGLING = re.compile(r"(?:[ \t]*[,;]?[ \t]*\bAU[ \t]*[-#:]?[ \t]*\d*|[ \t]*\+[ \t]*(?:AU[ \t]*)?\d*)$")


def drop_open_reference(text: str, allowed: list[str] | None) -> str:
    """``text`` without a reference a token budget cut short ("..., AU2" when only AU25 is allowed):
    the mask lets an allowed number's first digit through, the budget may end it there."""
    if allowed is None:
        return text
    d = _open_digits(text[-_TAIL:])
    if d is None or d in number_set(allowed):
        return text
    m = _DANGLING.search(text)
    return text[:m.start()].rstrip() if m else text


@lru_cache(maxsize=4)
def _vocab(tokenizer) -> tuple[dict, dict, torch.Tensor, list[tuple[int, str]]]:
    """The vocabulary sorted for the check: ``(raw, stripped, has_rest, special)``.

    ``raw[lead]``: ids whose text starts with the digit run ``lead``; ``stripped[lead]``: the same
    after leading blanks/dashes (what may follow a bare "AU"); ``has_rest[id]``: the token goes on
    after its digits (so the number it writes is closed); ``special``: (id, text) of tokens that
    write a reference themselves ("AU12", "+2") and are checked one by one."""
    raw: dict[str, list[int]] = {}
    stripped: dict[str, list[int]] = {}
    has_rest = torch.zeros(len(tokenizer), dtype=torch.bool)
    special = []
    for i in range(len(tokenizer)):
        t = tokenizer.decode([i])
        if re.search(r"AU[ \t]*[-#:]?[ \t]*\d|\+[ \t]*(?:AU)?[ \t]*\d", t):
            special.append((i, t))
        s = t.lstrip(_SEPARATORS)
        lead = re.match(r"\d*", s).group(0)
        if not lead:
            continue
        stripped.setdefault(lead, []).append(i)
        if s == t:
            raw.setdefault(lead, []).append(i)
        has_rest[i] = len(s) > len(lead)
    as_t = lambda d: {k: torch.tensor(v) for k, v in d.items()}  # noqa: E731
    return as_t(raw), as_t(stripped), has_rest, special


def allowed_tokens(tokenizer, written: str, allowed: set[str]) -> torch.Tensor | None:
    """A [vocab] bool mask of the tokens that may follow ``written`` (None: all may).
    ``allowed``: AU numbers as strings, e.g. {"6", "12"}."""
    tail = written[-_TAIL:]
    raw, stripped, has_rest, special = _vocab(tokenizer)
    mask = torch.ones(len(tokenizer), dtype=torch.bool)
    d = _open_digits(tail)
    if d is not None:
        # Non-digit tokens close the number: fine when none has started or it is a whole allowed one.
        mask[:] = not d or d in allowed
        for lead, ids in (raw if d else stripped).items():
            code = d + lead
            whole = torch.tensor(code in allowed)
            prefix = torch.tensor(any(a.startswith(code) for a in allowed))
            mask[ids] = torch.where(has_rest[ids], whole, prefix)
    for i, t in special:
        if breaks_grounding(tail, t, allowed):
            mask[i] = False
    return None if bool(mask.all()) else mask


class AUGrounding(LogitsProcessor):
    """Forbid AU numbers outside each row's evidence (see the module docstring).

    ``prefixes[b]``: the text row ``b`` continues (generation sees only its new tokens);
    ``allowed[b]``: that row's evidence AUs ("AU6", "AU12"), or None to leave the row free.
    """

    def __init__(self, tokenizer, prefixes: list[str], allowed: list[list[str] | None]):
        if len(prefixes) != len(allowed):
            raise ValueError(f"{len(prefixes)} prefixes but {len(allowed)} evidence sets")
        self.tokenizer = tokenizer
        self.prefixes = [p[-_TAIL:] for p in prefixes]
        self.allowed = [None if a is None else number_set(a) for a in allowed]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        for b, ok in enumerate(self.allowed):
            if ok is None:
                continue
            tail = self.tokenizer.decode(input_ids[b, -_TAIL:], skip_special_tokens=True)
            mask = allowed_tokens(self.tokenizer, self.prefixes[b] + tail, ok)
            if mask is not None and bool(mask.any()):  # never leave a row without a token
                n = min(mask.shape[0], scores.shape[1])  # heads may pad, or omit added tokens
                scores[b, :n] = scores[b, :n].masked_fill(~mask[:n].to(scores.device), float("-inf"))
        return scores
