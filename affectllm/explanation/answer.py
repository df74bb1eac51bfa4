"""The answer a user is shown: the decided label with calibrated probabilities, and a rationale
that passed the one verifier (or says which checks it failed).

``settle`` takes what the LLM wrote and scored for one item and

1. decides the label: the item's channel experts (``decision.channels``) and the LLM's label
   scores, pooled by the taxonomy's fitted :class:`~affectllm.decision.pool.DecisionPool`;
2. keeps the first candidate rationale that argues for the decided label and passes
   :func:`~affectllm.explanation.verify.verify` (its answer tag is rewritten to the decided label
   first, so a rationale that concludes otherwise is caught as a conclusion mismatch);
3. otherwise writes the deterministic template rationale (``explanation.template``) for the
   decided label from the same evidence, verifies it too, and says so (``rationale_source``).

The LLM's own label stays visible (``llm_emotion`` / ``llm_probabilities``). Deliberately not here:
generation (``generation``) and the pooling maths (``decision``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from affectllm.decision.channels import expert_scores, media_of
from affectllm.decision.pool import Decision, DecisionPool, pool_for
from affectllm.explanation.format import ANSWER_PREFIX, ANSWER_SUFFIX, RESPONSE_PREFIX
from affectllm.explanation.template import write_rationale
from affectllm.explanation.verify import verify
from affectllm.perception.observations import Observations


@dataclass
class Answer:
    """One item's shown answer (see module docstring)."""

    emotion: str
    probabilities: dict[str, float]
    text: str  # the shown rationale, RESPONSE_PREFIX ... <answer>emotion</answer>
    rationale_source: str  # "model" or "template"
    flags: list[dict]  # the verifier's flags on the shown rationale ([] when it passed)
    decision: Decision
    llm_emotion: str | None
    llm_probabilities: dict[str, float]
    rejected: list[dict] = field(default_factory=list)  # model candidates not shown: their flags

    def decision_dict(self) -> dict:
        d = self.decision.to_dict()
        return {"channels_used": d["channels_used"], "contributions": d["contributions"],
                "guard_applied": d["guard_applied"], "bias_for_answer": d["bias_for_answer"]}


def full_text(rationale: str, label: str) -> str:
    """A completion body (what follows RESPONSE_PREFIX, up to </think>) with its answer tag."""
    return RESPONSE_PREFIX + rationale + ANSWER_PREFIX + label + ANSWER_SUFFIX


def settle(item_id: str, obs: Observations, candidates: list[str], llm_probabilities: dict[str, float] | None,
           taxonomy: str, pool: DecisionPool | None = None, seed: int = 0) -> Answer:
    """The shown answer for one item; ``candidates``: the LLM's rationale bodies, best first."""
    pool = pool or pool_for(taxonomy)
    # Channels the pool was not fitted with (text on EmoDB's read-aloud sentences) are left out,
    # and the decision lists what it used.
    experts = expert_scores(obs, keep=pool.weights)
    if obs.text_expression and "text" not in experts:  # the rationale must not lean on it either
        obs = dataclasses.replace(obs, text_expression={}, text_drivers=[])
    channels = dict(experts)
    if llm_probabilities and "llm" in pool.weights:
        channels["llm"] = llm_probabilities
    decision = pool.decide(channels)
    label, p = decision.emotion, decision.probabilities[decision.emotion]
    extra = {"text": experts["text"]} if "text" in experts else None
    rejected = []
    for body in candidates:
        text = full_text(body, label)
        verdict = verify(text, obs, label, p, taxonomy, extra)
        if verdict.ok:
            return _answer(decision, text, "model", [], llm_probabilities, rejected)
        rejected.append({"source": "model", "flags": [f.to_dict() for f in verdict.flags]})
    rationale = write_rationale(item_id, obs, [label], taxonomy=taxonomy, seed=seed, media=media_of(obs),
                                probability=p)
    text = rationale.render()
    verdict = verify(text, obs, label, p, taxonomy, extra)
    return _answer(decision, text, "template", [f.to_dict() for f in verdict.flags], llm_probabilities, rejected)


def _answer(decision, text, source, flags, llm_probabilities, rejected) -> Answer:
    llm = dict(llm_probabilities or {})
    return Answer(emotion=decision.emotion, probabilities=dict(decision.probabilities), text=text,
                  rationale_source=source, flags=flags, decision=decision,
                  llm_emotion=max(llm, key=llm.get) if llm else None, llm_probabilities=llm, rejected=rejected)
