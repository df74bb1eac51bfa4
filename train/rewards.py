"""GRPO reward functions, open-r1 style: ``reward(completions, **columns) -> list[float]``.

Each function scores one criterion; the recipe YAML names them (keys of :data:`REWARDS`) and
weighs them. Dataset columns arrive as keyword lists aligned with ``completions``; trl also
passes ``prompts``. Completions may be strings or chat lists (``[{"role": "assistant",
"content": ...}]``). Every reward reads completions with :func:`affectllm.explanation.parse.parse`, the
parser the evaluation uses, so training optimises what is measured.

When the prompt ends inside an unclosed ``<think>`` (``prompting.RESPONSE_PREFIX``), that tail
is put back in front of the completion before parsing. The taxonomy comes from a ``taxonomy``
column, else a bound ``taxonomy=`` argument, else Ekman-7.

Rewards and their ranges:
- ``format`` [0, 1]: 0.2 <think> block + 0.2 <answer> block + 0.1 per part present
  (Observations, Interpretation, Conclusion) + 0.1 parts in order + 0.2 answer in the taxonomy,
  minus 0.2 for several answers and 0.1 for text outside the tags; 1.0 only when well formed.
- ``emotion`` {0, 1}: the parsed answer equals the gold ``label`` column after synonym mapping
  (for a multi-label gold list: is one of them). A fallback answer from the conclusion counts.
- ``quadrant`` {0, 0.5, 1}: 1 exact, 0.5 same valence/arousal quadrant (taxonomy.same_quadrant).
- ``au_grounding`` [-2, 1]: ``2 * F1(cited, evidence) - 1 - 0.25 * (cited AUs not in evidence)``
  (Facial-R1's scaled F1 plus a hallucination penalty), clipped at -2. Empty evidence (a face
  with no active AU) and nothing cited is F1 = 1 -> 1.0: saying nothing false is right. Evidence
  None (no face at all) returns None, which trl treats as "not applicable" for that row.
- ``consistency`` {0, 1}: the conclusion names the label in the answer tag
  (``Explanation.consistent``; a missing answer tag scores 0, so dropping it never pays).
- ``length`` [-1, 0]: 0 up to ``budget`` words (default 200: the data engine's explanations run
  60-150 words), then falling linearly to -1 at twice the budget.
- ``verifier`` [0, 1]: the one verifier that gates what inference shows
  (``affectllm.explanation.verify``) run on the completion against the row's ``observations``
  column (``Observations.to_dict()``): 1 - 0.25 per distinct flag code (wrong modality, invented
  numbers/AUs/times, false agreement claims, cut sections, conclusion != answer...), floored at 0.
  The answer checked against is the ``answer`` column when the prompt carries the decided answer,
  else the completion's own; ``probability`` (optional column) checks confidence words. The text
  classifier's scores in the observations are passed so claims about it are checked too. A row
  without observations abstains (None).

Deliberately not here: the trainer (``train.grpo``) and weights (the recipe YAML).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import lru_cache, wraps
from typing import Any

from affectllm.explanation.format import THINK_CLOSE, THINK_OPEN
from affectllm.explanation.parse import Explanation, parse
from affectllm.knowledge.facs import au_set
from affectllm.knowledge.taxonomy import DEFAULT_TAXONOMY, get_taxonomy, normalize_label, same_quadrant

LENGTH_BUDGET = 200  # words
HALLUCINATION_PENALTY = 0.25  # per cited AU absent from the evidence
GROUNDING_FLOOR = -2.0


def completion_text(completion: Any) -> str:
    """The generated text of a completion: a string, or the assistant contents of a chat list."""
    if completion is None:
        return ""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    parts = []
    for msg in completion:
        if isinstance(msg, dict) and msg.get("role", "assistant") == "assistant":
            content = msg.get("content", "")
            if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
                content = "".join(c.get("text", "") for c in content if isinstance(c, dict))
            parts.append(str(content or ""))
    return "".join(parts)


def _prompt_tail(prompt: Any) -> str:
    """The unclosed ``<think>...`` the prompt ends with, if any (the response prefix)."""
    if isinstance(prompt, list) and prompt and isinstance(prompt[-1], dict) \
            and prompt[-1].get("role") == "assistant":
        prompt = completion_text(prompt[-1])
    if not isinstance(prompt, str):
        return ""
    start = prompt.rfind(THINK_OPEN)
    if start < 0 or THINK_CLOSE in prompt[start:]:
        return ""
    return prompt[start:]


def _column(kwargs: dict, name: str, n: int) -> list:
    value = kwargs.get(name)
    if value is None:
        return [None] * n
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__len__"):
        return [value] * n  # a bound scalar applies to every row
    if len(value) != n:
        raise ValueError(f"column {name!r} has {len(value)} values for {n} completions")
    return list(value)


@lru_cache(maxsize=4096)  # five rewards read the same completion: parse it once
def _parse(text: str, taxonomy: str) -> Explanation:
    return parse(text, taxonomy)


def full_texts(completions: Sequence[Any], **kwargs) -> list[str]:
    """Each completion's text with the prompt's unclosed ``<think>`` tail put back in front."""
    out = []
    for c, p in zip(completions, _column(kwargs, "prompts", len(completions))):
        text = completion_text(c)
        tail = _prompt_tail(p)
        out.append(tail + text if tail and not text.lstrip().startswith(tail.strip()) else text)
    return out


def _taxonomies(kwargs: dict, n: int) -> list[str]:
    return [get_taxonomy(t or DEFAULT_TAXONOMY).name for t in _column(kwargs, "taxonomy", n)]


def parse_completions(completions: Sequence[Any], **kwargs) -> list[Explanation]:
    """Parse a batch the way every reward does (prompt tail restored, per-row taxonomy)."""
    texts = full_texts(completions, **kwargs)
    return [_parse(text, tax) for text, tax in zip(texts, _taxonomies(kwargs, len(texts)))]


def _gold(value: Any, taxonomy: str, row: int) -> set[str]:
    values = [value] if isinstance(value, str) else list(value or [])
    gold = {normalize_label(v, taxonomy) for v in values}
    if not values or None in gold:
        raise ValueError(f"row {row}: gold label {value!r} is not in taxonomy {taxonomy}")
    return gold


def format_reward(completions: Sequence[Any], **kwargs) -> list[float]:
    """Partial credit for the format (see module docstring); 1.0 iff well formed, no stray text."""
    scores = []
    for e in parse_completions(completions, **kwargs):
        parts = sum(bool(x) for x in (e.observations, e.interpretation, e.conclusion))
        s = (0.2 * e.has_think + 0.2 * e.has_answer + 0.1 * parts + 0.1 * e.has_parts
             + 0.2 * e.answer_in_taxonomy - 0.2 * e.multiple_answers - 0.1 * e.extra_text)
        scores.append(round(min(1.0, max(0.0, s)), 6))
    return scores


def emotion_reward(completions: Sequence[Any], **kwargs) -> list[float]:
    """1.0 when the answer matches the gold ``label`` column, else 0.0."""
    labels = _column(kwargs, "label", len(completions))
    return [float(e.emotion is not None and e.emotion in _gold(g, e.taxonomy, i))
            for i, (e, g) in enumerate(zip(parse_completions(completions, **kwargs), labels))]


def quadrant_reward(completions: Sequence[Any], **kwargs) -> list[float]:
    """1.0 exact label, 0.5 same valence/arousal quadrant, else 0.0."""
    labels = _column(kwargs, "label", len(completions))
    scores = []
    for i, (e, g) in enumerate(zip(parse_completions(completions, **kwargs), labels)):
        gold = _gold(g, e.taxonomy, i)
        if e.emotion in gold:
            scores.append(1.0)
        else:
            scores.append(0.5 if any(same_quadrant(e.emotion, x) for x in gold) else 0.0)
    return scores


def au_grounding_reward(completions: Sequence[Any], **kwargs) -> list[float | None]:
    """``2 * F1 - 1 - 0.25 * hallucinated`` between cited AUs and the ``evidence_aus`` column."""
    evidence = _column(kwargs, "evidence_aus", len(completions))
    scores: list[float | None] = []
    for e, ev in zip(parse_completions(completions, **kwargs), evidence):
        if ev is None:
            scores.append(None)
            continue
        gold, cited = au_set(ev), set(e.cited_aus)
        f1 = 1.0 if not gold and not cited else 2 * len(gold & cited) / (len(gold) + len(cited))
        s = 2 * f1 - 1 - HALLUCINATION_PENALTY * len(cited - gold)
        scores.append(max(GROUNDING_FLOOR, s))
    return scores


def consistency_reward(completions: Sequence[Any], **kwargs) -> list[float]:
    """1.0 when the conclusion names the answer-tag label, else 0.0."""
    return [float(e.consistent) for e in parse_completions(completions, **kwargs)]


def length_reward(completions: Sequence[Any], budget: int = LENGTH_BUDGET, **kwargs) -> list[float]:
    """0 within ``budget`` words, then linearly down to -1 at twice the budget."""
    if budget <= 0:
        raise ValueError("length budget must be positive")
    scores = []
    for c in completions:
        n = len(completion_text(c).split())
        scores.append(0.0 if n <= budget else -min(1.0, (n - budget) / budget))
    return scores


@lru_cache(maxsize=1024)  # every completion of a prompt shares its row's observations
def _observations(packed: str):
    from affectllm.perception.observations import observations_from_dict

    return observations_from_dict(json.loads(packed))


def verifier_reward(completions: Sequence[Any], **kwargs) -> list[float | None]:
    """The verifier's graded score of each completion against its row's observations (module doc)."""
    from affectllm.explanation.verify import verifier_reward as graded

    n = len(completions)
    texts, taxonomies = full_texts(completions, **kwargs), _taxonomies(kwargs, n)
    scores: list[float | None] = []
    for text, tax, obs, answer, p in zip(texts, taxonomies, _column(kwargs, "observations", n),
                                         _column(kwargs, "answer", n), _column(kwargs, "probability", n)):
        if not obs:
            scores.append(None)
            continue
        obs = _observations(obs if isinstance(obs, str) else json.dumps(obs, sort_keys=True))
        extra = {"text": dict(obs.text_expression)} if obs.text_expression else None
        scores.append(graded(text, obs, answer, p, tax, extra, graded=True))
    return scores


RewardFn = Callable[..., list]
REWARDS: dict[str, RewardFn] = {
    "format": format_reward,
    "emotion": emotion_reward,
    "quadrant": quadrant_reward,
    "au_grounding": au_grounding_reward,
    "consistency": consistency_reward,
    "length": length_reward,
    "verifier": verifier_reward,
}


def get_reward(name: str, **params) -> RewardFn:
    """The reward called ``name``; ``params`` (e.g. ``budget=150``, ``taxonomy="emodb7"``) are bound.

    The returned function keeps a ``__name__`` (``<name>_reward``), which trl uses in its logs.
    """
    if name not in REWARDS:
        raise ValueError(f"unknown reward {name!r}; choose from {sorted(REWARDS)}")
    fn = REWARDS[name]
    if not params:
        return fn

    @wraps(fn)
    def bound(completions, **kwargs):
        merged = dict(kwargs)
        for key, value in params.items():
            if key == "taxonomy" and kwargs.get("taxonomy") is not None:
                continue  # a per-row taxonomy column wins over the bound default
            merged[key] = value
        return fn(completions, **merged)

    return bound
