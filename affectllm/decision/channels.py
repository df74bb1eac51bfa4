"""The channel experts of one item: which classifiers spoke, and what each said.

``expert_scores(obs)`` collects the label -> probability dicts of the frozen per-channel classifiers
present in an item's :class:`Observations`: ``face`` (the expression classifier on the main face),
``voice`` (the voice expression classifier) and ``text`` (the text expression classifier, on typed
words only). The LLM's own label scores join them as ``llm`` in the caller. Eval's "channel alone"
baselines and the decision's training rows use the same function, so the decision is fitted on
exactly the inputs it sees at inference.

Why the text classifier reads typed text and not speech transcripts: it was trained on written
English comments; EmoDB's transcripts are emotionally neutral German sentences by design, where it
would only add noise. Deliberately not here: pooling (``decision.pool``) or perception itself.
"""

from __future__ import annotations

from affectllm.perception.observations import Observations

CHANNELS = ("face", "voice", "text")  # expert channels; the LLM's scores are the fourth, "llm"


def expert_scores(obs: Observations | None, keep=None) -> dict[str, dict[str, float]]:
    """{channel: {label name: probability}} for each expert channel with scores for this item;
    ``keep`` (e.g. a pool's fitted channels) leaves out the others."""
    if obs is None:
        return {}
    out: dict[str, dict[str, float]] = {}
    face = obs.main_face
    if face is not None and face.expression:
        out["face"] = {k: float(v) for k, v in face.expression.items()}
    if obs.audio is not None and obs.audio.expression:
        out["voice"] = {k: float(v) for k, v in obs.audio.expression.items()}
    if obs.text and getattr(obs, "text_expression", None):
        out["text"] = {k: float(v) for k, v in obs.text_expression.items()}
    return out if keep is None else {c: v for c, v in out.items() if c in keep}


def media_of(obs: Observations) -> tuple[str, ...]:
    """The item's modalities as the data engine names them (image, video, audio, text)."""
    media = []
    if obs.video is not None:
        media.append("video")
    elif obs.faces or obs.image is not None:
        media.append("image")
    if obs.audio is not None:
        media.append("audio")
    if obs.text:
        media.append("text")
    return tuple(media)
