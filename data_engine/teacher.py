"""Teacher rewrites: let an LLM phrase the templated rationale more naturally, keep only verified ones.

A *generator* is any callable ``messages -> text``:

- :class:`TransformersGenerator` -- a local causal LM loaded with ``affectllm.weights.load_llm``;
- :class:`HTTPGenerator` -- an OpenAI-compatible ``/chat/completions`` endpoint the user configures
  (base URL, model, API key read from an environment variable); stdlib ``urllib``, no SDK;
- anything else, e.g. the current affectllm model wrapped as a function (self-improvement).

:class:`Rewriter` runs Facial-R1's scheme: ask for a rewrite, re-render it through the one
renderer (``explanation.parse.format_explanation``), verify it against the evidence (``verify``), and on
failure ask again with the failure reasons as feedback, up to ``k`` times; a rewrite that never
passes is dropped (the record keeps its verified template unless ``strict``). With ``rewards``
(``train.rewards.REWARDS``-style functions) a rewrite must also reach each reward's threshold.
:func:`self_improve` uses the same loop with the model's own answers to the RL prompt.

Deliberately not here: network access at run time by default (nothing is called unless a
generator is configured) and any prompt tuning per teacher model.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Callable, Mapping

from affectllm.errors import AffectError
from affectllm.perception.observations import Observations
from affectllm.explanation.parse import format_explanation, parse
from affectllm.explanation.format import RESPONSE_PREFIX
from data_engine.export import with_assistant
from data_engine.verify import verify

log = logging.getLogger(__name__)

Generator = Callable[[list[dict]], str]


class TeacherError(AffectError):
    """The teacher could not be reached or answered nonsense (names the endpoint and the reason)."""


_SYSTEM = (
    "You rewrite emotion-recognition rationales so they read naturally. Keep the three parts "
    "'Observations:' (a bulleted list), 'Interpretation:' and 'Conclusion:' inside <think></think>, "
    "then <answer>LABEL</answer>. Keep every fact exactly: the same Action Units with the same "
    "numbers and intensity letters, the same voice descriptions, the same numbers, the same quoted "
    "words, and the same final label. Never add an Action Unit, a cue or a number that the draft "
    "does not contain, and name an absent Action Unit by its name only, never by its number. Vary "
    "the wording and sentence structure only.")


def rewrite_messages(record: dict, draft: str, feedback: list[str] | None = None) -> list[dict]:
    """The chat sent to the teacher: evidence, the draft rationale, and earlier failure reasons."""
    evidence = record["messages"][1]["content"]
    user = f"Evidence given to the model:\n{evidence}\n\nDraft rationale:\n{draft}\n\nRewrite the draft."
    if feedback:
        user += ("\n\nYour previous rewrite was rejected for these reasons; fix them:\n"
                 + "\n".join(f"- {r}" for r in feedback))
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}]


def canonical(text: str, taxonomy: str | None = None) -> str:
    """Teacher output re-rendered by ``format_explanation`` (raises ValueError when unusable).

    The parts are read with the one parser (the response prefix is put back when a model continued
    from it) and written again, so every kept record has exactly the project's layout. The answer
    is the model's own -- a wrong answer is caught by ``verify``, never replaced by the gold one.
    """
    ex = parse(text, taxonomy, prefix=RESPONSE_PREFIX)
    if not ex.has_parts:
        raise ValueError(f"format: parts missing or out of order ({', '.join(ex.issues)})")
    if not ex.raw_answer:
        raise ValueError("format: no <answer> tag")
    cues = [c.replace("\n", " ") for c in ex.cues]
    return format_explanation(cues, " ".join(ex.interpretation.split()), " ".join(ex.conclusion.split()),
                              ex.raw_answer)


@dataclass
class Result:
    """Outcome of one rewrite: the record to keep (None: drop the item) and every attempt."""

    record: dict | None
    accepted: bool
    attempts: list[dict] = field(default_factory=list)  # {"text", "reasons"}
    reasons: list[str] = field(default_factory=list)  # of the last attempt, when not accepted


def reward_reasons(text: str, record: dict, rewards: Mapping[str, Callable], thresholds: Mapping[str, float]
                   ) -> list[str]:
    """Reasons from reward functions (open-r1 style: ``fn(completions, **columns) -> list[float]``)."""
    out = []
    columns = {k: [record.get(k)] for k in ("label", "labels", "evidence_aus", "gold_aus", "taxonomy")}
    for name, fn in rewards.items():
        try:
            score = fn([[{"role": "assistant", "content": text}]], **columns)[0]
        except Exception as e:  # noqa: BLE001 - a reward crash rejects this rewrite, not the build
            out.append(f"reward: {name} failed ({type(e).__name__}: {e})")
            continue
        need = thresholds.get(name, 1.0)
        if score is None or score < need:
            out.append(f"reward: {name} = {score} < {need}")
    return out


class Rewriter:
    """Rewrite-verify-retry loop around one generator (callable on ``(record, obs)``)."""

    def __init__(self, generator: Generator, k: int = 3, *, strict: bool = False, name: str | None = None,
                 rewards: Mapping[str, Callable] | None = None, thresholds: Mapping[str, float] | None = None,
                 messages_fn: Callable[[dict, str, list[str] | None], list[dict]] = rewrite_messages):
        if k < 1:
            raise ValueError("k (attempts) must be >= 1")
        self.generator, self.k, self.strict = generator, k, strict
        self.name = name or getattr(generator, "name", type(generator).__name__)
        self.rewards, self.thresholds = dict(rewards or {}), dict(thresholds or {})
        self.messages_fn = messages_fn

    def check(self, text: str, record: dict, obs: Observations) -> tuple[dict | None, list[str]]:
        """(candidate record, reasons) for one generated text."""
        try:
            text = canonical(text, record.get("taxonomy"))
        except ValueError as e:
            return None, [str(e) if str(e).startswith("format:") else f"format: {e}"]
        cand = with_assistant(record, text, generator=f"teacher:{self.name}")
        reasons = verify(cand, obs)
        if not reasons and self.rewards:
            reasons = reward_reasons(text, cand, self.rewards, self.thresholds)
        return cand, reasons

    def __call__(self, record: dict, obs: Observations) -> Result:
        draft = record["messages"][-1]["content"]
        attempts: list[dict] = []
        feedback: list[str] | None = None
        for i in range(self.k):
            try:
                text = self.generator(self.messages_fn(record, draft, feedback))
            except TeacherError as e:
                attempts.append({"text": None, "reasons": [f"teacher: {e}"]})
                break  # an unreachable teacher will not answer on retry either
            cand, reasons = self.check(text, record, obs)
            attempts.append({"text": text, "reasons": reasons})
            if not reasons:
                cand["meta"]["teacher_attempts"] = i + 1
                return Result(cand, True, attempts)
            feedback = reasons
        last = attempts[-1]["reasons"] if attempts else []
        if self.strict:
            return Result(None, False, attempts, last)
        kept = with_assistant(record, draft, teacher=f"dropped after {len(attempts)} attempt(s)")
        return Result(kept, False, attempts, last)


def self_improve(records, obs_of: Callable[[dict], Observations], generate: Callable[[list[dict]], str],
                 k: int = 1, rewards: Mapping[str, Callable] | None = None,
                 thresholds: Mapping[str, float] | None = None, name: str = "self"):
    """Yield SFT records whose assistant turn the current model wrote itself and that pass.

    ``generate(prompt_messages) -> text`` is the model answering the record's own prompt (system +
    user, as in ``rl.jsonl``); outputs are kept only when they pass ``verify`` and every reward.
    """
    rewriter = Rewriter(lambda msgs: generate(msgs), k=k, strict=True, name=name, rewards=rewards,
                        thresholds=thresholds, messages_fn=lambda rec, draft, fb: rec["messages"][:-1])
    for rec in records:
        result = rewriter(rec, obs_of(rec))
        if result.accepted:
            yield result.record


# ---- generators ---------------------------------------------------------------------------------

class HTTPGenerator:
    """An OpenAI-compatible chat endpoint: ``POST {base_url}/chat/completions``."""

    def __init__(self, base_url: str, model: str, api_key_env: str | None = None, *, temperature: float = 0.7,
                 max_tokens: int = 512, timeout: float = 60.0):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.api_key_env = model, api_key_env
        self.temperature, self.max_tokens, self.timeout = temperature, max_tokens, timeout
        self.name = f"http:{model}"

    def __call__(self, messages: list[dict]) -> str:
        headers = {"Content-Type": "application/json"}
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            if not key:
                raise TeacherError(f"environment variable {self.api_key_env} (API key) is not set")
            headers["Authorization"] = f"Bearer {key}"
        body = json.dumps({"model": self.model, "messages": messages, "temperature": self.temperature,
                           "max_tokens": self.max_tokens}).encode()
        req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                data = json.loads(resp.read())
        except urllib.error.HTTPError as e:
            raise TeacherError(f"{self.url}: HTTP {e.code} {e.read()[:200]!r}") from e
        except (urllib.error.URLError, TimeoutError, json.JSONDecodeError) as e:
            raise TeacherError(f"{self.url}: {e}") from e
        try:
            return data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as e:
            raise TeacherError(f"{self.url}: unexpected response shape {str(data)[:200]}") from e


class TransformersGenerator:
    """A local causal LM (``affectllm.weights.load_llm(name)``), sampling one reply per call."""

    def __init__(self, name: str = "smollm2-135m-instruct", *, model=None, tokenizer=None,
                 max_new_tokens: int = 384, temperature: float = 0.7, seed: int = 0):
        if model is None or tokenizer is None:
            from affectllm.weights import load_llm

            model, tokenizer = load_llm(name)
        self.model, self.tokenizer = model.eval(), tokenizer
        self.max_new_tokens, self.temperature, self.seed = max_new_tokens, temperature, seed
        self.name = f"hf:{name}"
        self._calls = 0

    def __call__(self, messages: list[dict]) -> str:
        import torch

        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        enc = self.tokenizer(text, return_tensors="pt", add_special_tokens=False).to(self.model.device)
        self._calls += 1
        torch.manual_seed(self.seed + self._calls)  # reproducible, yet each retry samples afresh
        with torch.no_grad():
            out = self.model.generate(**enc, max_new_tokens=self.max_new_tokens, do_sample=self.temperature > 0,
                                      temperature=self.temperature if self.temperature > 0 else None,
                                      pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id)
        return self.tokenizer.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True).strip()
