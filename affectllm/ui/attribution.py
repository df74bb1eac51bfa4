"""Which modality carried the decision: label probabilities with each modality's evidence dropped.

For an answer with evidence from more than one channel (face, voice, typed words), the prompt is
rebuilt once with all the evidence and once without each channel, and the taxonomy's labels are
scored after an *empty* rationale in one batched forward pass (the Explainer's own prompt
building and ``guided.score_labels``). The channel whose removal lowers the probability of the
answered label most carried the decision; if no removal moves it by ``MIN_DROP`` or more, no
single channel did, and that is what is said.

Why without the rationale: the rationale restates the evidence ("AU12 lip corner puller..."),
so scoring after it would leak a dropped channel back in; and the prompts leave out the decided
answer the Explainer's prompts carry, which the LLM would echo. The numbers therefore measure how
the evidence itself moves the model's answer, not how the written rationale does; with one channel
present there is nothing to compare and the answer says so.

Deliberately not here: generation, parsing, drawing (``figures``), any UI code.
"""

from __future__ import annotations

import dataclasses

from affectllm.perception.observations import Observations

MIN_DROP = 0.05  # smaller changes of p(label) are within what rewording the prompt does anyway
CHANNELS = ("face", "voice", "words")


def channels(obs: Observations) -> list[str]:
    """The evidence channels present in ``obs``."""
    out = []
    if obs.faces or obs.video:
        out.append("face")
    if obs.audio is not None and (obs.audio.descriptors or obs.audio.transcript):
        out.append("voice")
    if obs.text and obs.text.strip():
        out.append("words")
    return out


def without(obs: Observations, channel: str) -> Observations:
    """A shallow copy of ``obs`` with one channel's evidence removed."""
    if channel == "face":
        return dataclasses.replace(obs, faces=[], video=None, errors=[])
    if channel == "voice":
        return dataclasses.replace(obs, audio=None, errors=[])
    if channel == "words":
        return dataclasses.replace(obs, text=None, errors=[])
    raise ValueError(f"unknown channel {channel!r}; expected one of {CHANNELS}")


def attribute(explainer, obs: Observations, label: str, question: str | None = None,
              history: list[dict] | None = None) -> dict:
    """``{"decided_by", "present", "p_all", "p_without": {channel: p}, "flips": [...], "method"}``.

    ``label`` is the answered emotion; ``p_*`` are its probabilities (rationale-free scoring).
    """
    from affectllm.generation.guided import score_labels
    from affectllm.knowledge.taxonomy import get_taxonomy

    present = channels(obs)
    out = {"present": present, "p_all": None, "p_without": {}, "flips": [], "decided_by": None}
    if len(present) <= 1:
        out["decided_by"] = present[0] if present else None
        out["method"] = "only one channel of evidence" if present else "no evidence"
        return out
    labels = get_taxonomy(explainer.taxonomy).labels
    if label not in labels:
        out["method"] = f"answer {label!r} is not a label of {explainer.taxonomy}"
        return out
    variants = [("all", obs)] + [(c, without(obs, c)) for c in present]
    ready = []
    for name, v in variants:
        # The Explainer's own prompt and features, without the decided answer (it would be echoed)
        _, prep = explainer._prepare(v, question, history, decide_first=False)
        if prep is not None:
            ready.append((name, prep))
    if not ready or ready[0][0] != "all":
        out["method"] = "the prompt could not be built"
        return out
    probs = score_labels(explainer.model, explainer._batch([p for _, p in ready]), [""] * len(ready), labels)
    k = labels.index(label)
    out["p_all"] = round(float(probs[0, k]), 4)
    for (name, _), row in zip(ready[1:], probs[1:]):
        out["p_without"][name] = round(float(row[k]), 4)
        if labels[int(row.argmax())] != label:
            out["flips"].append(name)
    drops = {c: out["p_all"] - p for c, p in out["p_without"].items()}
    best = max(drops, key=drops.get) if drops else None
    out["decided_by"] = best if best is not None and drops[best] >= MIN_DROP else "no single channel"
    out["method"] = "label probability with each channel dropped (rationale-free scoring)"
    return out


def describe(att: dict, label: str | None) -> str:
    """One or two plain sentences for the UI."""
    present = att.get("present") or []
    if not present:
        return "No evidence was perceived, so no channel decided anything."
    if len(present) == 1:
        return f"Only the **{present[0]}** gave evidence, so it carried the decision."
    if att.get("p_all") is None:
        return f"Evidence from {', '.join(present)}; the comparison could not be made ({att.get('method')})."
    parts = [f"without {c}: {p:.2f}" for c, p in att["p_without"].items()]
    head = (f"The **{att['decided_by']}** carried the decision" if att["decided_by"] in CHANNELS
            else "No single channel carried the decision")
    flips = f"; dropping {', '.join(att['flips'])} changes the answer" if att["flips"] else ""
    return f"{head}: p({label}) with all evidence {att['p_all']:.2f}, {', '.join(parts)}{flips}."
