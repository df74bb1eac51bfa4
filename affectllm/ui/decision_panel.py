"""The UI's "which channel decided" panel, read from the decision layer's contributions.

Each channel's additive share of the answer's score (``Decision.contributions``,
``log_support_for_answer``: weight x lift over chance / temperature) says how much it pushed
towards the decided label; a negative share pushed away. The LLM's own label is shown beside it,
so a user sees when the classifiers overruled the language model, and the rationale's source
says whether the model's text passed the verifier or the template stood in.

Deliberately not here: the decision itself (``affectllm.decision``) or any gradio code.
"""

from __future__ import annotations

NAMES = {"face": "face (expression classifier)", "voice": "voice (voice classifier)",
         "text": "words (text classifier)", "llm": "language model"}


def decision_markdown(result) -> str | None:
    """Markdown lines for one ExplainResult with an answer; None without one."""
    ans = getattr(result, "answer", None)
    if ans is None:
        return None
    d = ans.decision
    p = d.probabilities.get(d.emotion, 0.0)
    lines = [f"**Decided: {d.emotion}** ({p:.0%})"]
    shares = sorted(d.contributions.items(), key=lambda kv: -kv[1]["log_support_for_answer"])
    for channel, c in shares:
        push = c["log_support_for_answer"]
        word = "for" if push > 0.05 else "against" if push < -0.05 else "neutral on"
        lines.append(f"- {NAMES.get(channel, channel)}: says {c['top_label']} {c['top_p']:.2f}; "
                     f"weight {c['weight']:.2f}, {word} {d.emotion} ({push:+.2f})")
    if shares:
        top = shares[0][0]
        lines.append(f"- decided mostly by the {NAMES.get(top, top)}")
    if ans.llm_emotion and ans.llm_emotion != d.emotion:
        lines.append(f"- the language model alone would say {ans.llm_emotion}; the classifiers overruled it")
    if d.guard_applied:
        lines.append("- no channel was confident, so the answer's probability was capped")
    if ans.rationale_source == "template" and ans.rejected:
        lines.append("- the model's own rationale failed the verifier, so a rationale built from the evidence "
                     "is shown instead")
    elif ans.rationale_source == "template":
        lines.append("- a rationale built from the evidence is shown: this model's own drafts for such input "
                     "rarely pass the verifier, so none was written")
    if ans.flags:
        lines.append("- verifier flags on the shown rationale: " + ", ".join(f["code"] for f in ans.flags))
    return "\n".join(lines)
