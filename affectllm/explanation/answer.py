"""The answer a user is shown: the decided label with calibrated probabilities, and a rationale
that passed the one verifier (or says which checks it failed).

``settle`` takes what the LLM wrote and scored for one item and

1. decides the label (:func:`decide`): the item's channel experts (``decision.channels``) and,
   when the taxonomy's fitted :class:`~affectllm.decision.pool.DecisionPool` gives it a weight, the
   LLM's label scores. Without an LLM weight the decision is made before generation and the
   prompt carries it (``explanation.prompt.decided_line``), so the LLM writes for that answer;
2. keeps, of the candidate rationales that argue for the decided label and pass
   :func:`~affectllm.explanation.verify.verify` (each one's answer tag is rewritten to the decided
   label first, so a rationale that concludes otherwise is caught as a conclusion mismatch), the
   one that grounds best in the face's AUs within a length budget (:func:`best_candidate`);
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


@dataclass
class Decided:
    """The decision for one item before any rationale is checked: what the rationale must argue."""

    decision: Decision
    obs: Observations  # the evidence a rationale may use (a channel the pool leaves out is removed)
    extra: dict | None  # channels the verifier also checks claims against (the text classifier)
    llm_probabilities: dict[str, float]

    @property
    def label(self) -> str:
        return self.decision.emotion

    @property
    def probability(self) -> float:
        return self.decision.probabilities[self.decision.emotion]


def needs_llm(taxonomy: str, pool: DecisionPool | None = None) -> bool:
    """True when the taxonomy's pool gives the LLM's label scores a say (then the decision waits for
    them; otherwise it is made from the channel experts before the rationale is written)."""
    return (pool or pool_for(taxonomy)).weights.get("llm", 0.0) > 0.0


def decide(obs: Observations, llm_probabilities: dict[str, float] | None, taxonomy: str,
           pool: DecisionPool | None = None) -> Decided:
    """Pool the item's channel experts (and the LLM's label scores when the pool uses them)."""
    pool = pool or pool_for(taxonomy)
    # Channels the pool was not fitted with (text on EmoDB's read-aloud sentences) are left out,
    # and the decision lists what it used.
    experts = expert_scores(obs, keep=pool.weights)
    if obs.text_expression and "text" not in experts:  # the rationale must not lean on it either
        obs = dataclasses.replace(obs, text_expression={}, text_drivers=[])
    channels = dict(experts)
    if llm_probabilities and "llm" in pool.weights:  # at weight 0 it is listed, and changes nothing
        channels["llm"] = llm_probabilities
    return Decided(pool.decide(channels), obs, {"text": experts["text"]} if "text" in experts else None,
                   dict(llm_probabilities or {}))


def settle(item_id: str, obs: Observations, candidates: list[str], llm_probabilities: dict[str, float] | None,
           taxonomy: str, pool: DecisionPool | None = None, seed: int = 0, decided: Decided | None = None) -> Answer:
    """The shown answer for one item; ``candidates``: the LLM's rationale bodies, best first.
    ``decided``: the decision when it was made before generation (:func:`decide`)."""
    pool = pool or pool_for(taxonomy)
    if decided is None or (llm_probabilities and "llm" in pool.weights):
        # (decided before generation, with an LLM weight of 0: decided again to list the LLM's
        # zero contribution; the answer cannot change)
        decided = decide(obs, llm_probabilities, taxonomy, pool)
    elif llm_probabilities:
        decided = dataclasses.replace(decided, llm_probabilities=dict(llm_probabilities))
    decision, obs, extra = decided.decision, decided.obs, decided.extra
    label, p = decided.label, decided.probability
    rejected, passing = [], []
    for body in candidates:
        text = full_text(body, label)
        verdict = verify(text, obs, label, p, taxonomy, extra)
        if verdict.ok:
            passing.append(text)
        else:
            rejected.append({"source": "model", "flags": [f.to_dict() for f in verdict.flags]})
    if passing:
        return _answer(decision, best_candidate(passing, obs, taxonomy), "model", [], decided.llm_probabilities,
                       rejected)
    rationale = write_rationale(item_id, obs, [label], taxonomy=taxonomy, seed=seed, media=media_of(obs),
                                probability=p)
    text = rationale.render()
    verdict = verify(text, obs, label, p, taxonomy, extra)
    return _answer(decision, text, "template", [f.to_dict() for f in verdict.flags], decided.llm_probabilities,
                   rejected)


def best_candidate(texts: list[str], obs: Observations, taxonomy: str) -> str:
    """The verified candidate that grounds best in the face's AUs (F1 of cited vs present AUs, as
    the training's AU-grounding reward) and stays within 150 words; ties go to the earlier one
    (the greedy draft comes first). Every candidate here already passed the verifier."""
    if len(texts) == 1:
        return texts[0]
    from affectllm.explanation.parse import parse

    present = set(obs.evidence_aus()) if obs.main_face is not None else set()

    def score(text: str) -> float:
        cited = set(parse(text, taxonomy).cited_aus)
        f1 = 1.0 if not present and not cited else 2 * len(present & cited) / (len(present) + len(cited))
        words = len(text.split())
        return f1 - max(0.0, (words - 150) / 150)

    return texts[max(range(len(texts)), key=lambda i: (score(texts[i]), -i))]


def _answer(decision, text, source, flags, llm_probabilities, rejected) -> Answer:
    llm = dict(llm_probabilities or {})
    return Answer(emotion=decision.emotion, probabilities=dict(decision.probabilities), text=text,
                  rationale_source=source, flags=flags, decision=decision,
                  llm_emotion=max(llm, key=llm.get) if llm else None, llm_probabilities=llm, rejected=rejected)
