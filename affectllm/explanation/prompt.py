"""From Observations to the chat messages the LLM reads.

Evidence reaches the LLM per modality as soft tokens (a ``<face>``/``<audio>``/``<image>``
placeholder the model later expands and fills with projected features), as text (the
textualised observations), or both. The text path is what makes a 135M LLM useful before any
training; soft tokens add what words cannot carry once the projectors are trained.

Deliberately not here: tokenisation and placeholder expansion (``model.AffectLLM``), and the
answer format itself (``explanation.format``; ``explanation.parse`` owns ``FORMAT_INSTRUCTIONS``).
"""

from __future__ import annotations

from collections.abc import Mapping

from affectllm.explanation.format import ANSWER_CLOSE, ANSWER_OPEN, PLACEHOLDERS, RESPONSE_PREFIX, THINK_CLOSE, THINK_OPEN
from affectllm.perception.observations import Observations, text_classifier_line
from affectllm.knowledge.taxonomy import get_taxonomy

EVIDENCE_MODES = ("soft", "text", "both")
DEFAULT_QUESTION = "Which emotion is expressed here, and why?"
# The assistant turn starts with RESPONSE_PREFIX, so even an untrained model begins in the format.

_SYSTEM = (
    "You are affectllm, an assistant that recognises emotions and explains them from evidence: "
    "facial Action Units (FACS) with their intensities, the voice's prosody, and the words said or "
    f"written. Cite only evidence that is listed. Reason inside {THINK_OPEN}{THINK_CLOSE} in three parts, "
    f"Observations, Interpretation and Conclusion, then give one label inside {ANSWER_OPEN}{ANSWER_CLOSE}. "
    "Labels: {labels}.")


def system_prompt(taxonomy: str | None = None) -> str:
    """The system turn: role, grounding rule, format and this taxonomy's labels.

    Kept short on purpose: a 135M model copies long format descriptions into its answer
    instead of following them; the format itself is enforced by section-guided generation
    (``generation.guided``) and taught by the training data.
    """
    return _SYSTEM.format(labels=", ".join(get_taxonomy(taxonomy).labels))


def soft_modalities(obs: Observations, evidence: Mapping[str, str]) -> list[str]:
    """Modalities whose features exist and whose evidence mode includes soft tokens."""
    present = {
        "face": obs.main_face is not None and obs.main_face.embedding is not None,
        "audio": obs.audio is not None and obs.audio.features is not None,
        "image": obs.image is not None and obs.image.features is not None,
    }
    return [m for m in ("face", "audio", "image") if present[m] and evidence.get(m, "text") in ("soft", "both")]


def wants_text(evidence: Mapping[str, str], modality: str) -> bool:
    """True when ``modality``'s evidence goes into the prompt as text (mode text or both; default text)."""
    return evidence.get(modality, "text") in ("text", "both")


def evidence_text(obs: Observations, evidence: Mapping[str, str] | None = None, hints: bool = True) -> str:
    """The textualised evidence, one line per modality, honouring each modality's mode.

    ``hints`` adds the closest EMFACS prototype for the face's AUs: domain knowledge a small LLM
    cannot be expected to know, stated as a cue, never as the answer.
    """
    evidence = evidence or {}
    lines: list[str] = []
    face = obs.main_face
    if face is not None and wants_text(evidence, "face"):
        lines.append(f"Face: {face.to_text()}")
        if len(obs.faces) > 1:
            lines.append(f"({len(obs.faces) - 1} more face(s) in view; describing the largest.)")
        if hints and face.present_aus:
            from affectllm.knowledge.emfacs import match_prototypes

            # All estimated AUs (absent ones at their low intensity), so a prototype AU that
            # was measured and found absent counts against that prototype.
            ranked = [(e, s) for e, s in match_prototypes({a.au: a.intensity for a in face.aus}) if s > 0]
            if ranked:
                best = ", ".join(f"{e} ({s:.2f})" for e, s in ranked[:2])
                lines.append(f"Closest EMFACS prototypes for these AUs: {best}.")
    elif face is None and obs.file and obs.image is not None:
        lines.append("Face: no face was found.")
    if obs.video is not None and wants_text(evidence, "face"):
        lines.append(obs.video.to_text())
    if obs.audio is not None and wants_text(evidence, "audio"):
        lines.append(obs.audio.to_text())
    if obs.text:
        lines.append(f'Text: "{obs.text.strip()}"')
        if obs.text_expression:
            lines.append(text_classifier_line(obs.text_expression))
    return "\n".join(lines)


def decided_line(decided: tuple[str, float]) -> str:
    """The line that hands the LLM the decided answer it is to explain (label, probability)."""
    label, p = decided
    return f"Decided answer: {label} (probability {p:.2f}). Explain it from the evidence."


def user_content(obs: Observations, evidence: Mapping[str, str] | None = None,
                 question: str | None = None, hints: bool = True,
                 decided: tuple[str, float] | None = None) -> str:
    """The first user turn: placeholders for soft modalities, textual evidence, the decided answer
    (when the decision is made before the rationale is written), the question."""
    evidence = evidence or {}
    parts = [" ".join(PLACEHOLDERS[m] for m in soft_modalities(obs, evidence))]
    text = evidence_text(obs, evidence, hints=hints)
    parts.append(f"Evidence:\n{text}" if text else "Evidence: none perceived.")
    if decided is not None:
        parts.append(decided_line(decided))
    parts.append(question or DEFAULT_QUESTION)
    return "\n".join(p for p in parts if p)


def build_messages(obs: Observations, *, taxonomy: str | None = None,
                   evidence: Mapping[str, str] | None = None, question: str | None = None,
                   history: list[dict] | None = None, hints: bool = True,
                   decided: tuple[str, float] | None = None) -> list[dict]:
    """Chat messages for one item.

    ``decided``: the calibrated decision's (label, probability), which the rationale is to argue
    for; it sits in the first user turn, after the evidence.

    ``history`` holds earlier turns of the same conversation (``{"role", "content"}`` dicts,
    the first user turn excluded); with a history the evidence stays in the first user turn and
    ``question`` becomes the newest user turn, so follow-ups need no re-upload.
    """
    messages = [{"role": "system", "content": system_prompt(taxonomy)}]
    if history:
        messages.append({"role": "user", "content": user_content(obs, evidence, None, hints, decided)})
        messages += [dict(m) for m in history]
        messages.append({"role": "user", "content": question or DEFAULT_QUESTION})
    else:
        messages.append({"role": "user", "content": user_content(obs, evidence, question, hints, decided)})
    return messages


def render_prompt(tokenizer, messages: list[dict], prefix: str = RESPONSE_PREFIX) -> str:
    """The chat template applied with a generation prompt, then the response prefix."""
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return text + prefix
