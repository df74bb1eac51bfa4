"""The evidence gate: which channels of one item carry usable signal, before any LLM sees it.

``gate(obs, item) -> GateResult(obs_kept, warnings, error)`` is a pure function (it never
mutates ``obs``). A channel fails for a reason a user can act on:

- face: an image (or every frame of a video) shows no face;
- voice: the clip is under 0.3 s, silent, holds non-finite samples (NaN/inf), holds no speech
  (no voiced frames and no words), or is a steady tone (pitch constant to a fraction of a
  semitone, and at most two words, which Whisper hallucinates on tones): a model shown such a clip still answers,
  confidently and from nothing (issue 17: a sine tone gave "anger" p = 0.9999);
- text: no letters at all (digits, punctuation, controls only).

A failing channel is dropped from the evidence (so neither the prompt nor the decision can use
it) with a warning naming the item and the reason, when another channel carries signal;
otherwise the item gets one error naming every reason. The perception flags (``too_short``,
``silent``, ``no_speech``, ``non_finite``) are read here, never recomputed.

Deliberately not here: measuring anything (the perceivers do) or deciding labels (``decision``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from affectllm.perception.observations import Observations

MIN_SECONDS = 0.3  # the audio perceiver's too_short limit, said in the reason
# Speech moves its pitch by semitones (EmoDB, 278 clips: f0_std_st >= 0.53, median 2.7, voiced
# ratio >= 0.20); a tone or a hum by a few cents. Whisper often "hears" a word or two in a tone
# ("you"), so a transcript that short does not count as speech here.
TONE_MAX_STD_ST = 0.3
TONE_MIN_VOICED = 0.1
TONE_MAX_WORDS = 2
MIN_VOICED_RATIO = 0.02  # under this, no voiced frames to speak of: no speech without words


@dataclass
class GateResult:
    """``obs_kept``: the observations with failing channels removed (all removed on error);
    ``warnings``: one per dropped channel, naming the item; ``error``: set when nothing is left."""

    obs_kept: Observations
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    dropped: dict[str, str] = field(default_factory=dict)  # channel -> reason


def audio_problem(audio) -> str | None:
    """Why a voice observation carries no usable signal, or None when it does."""
    flags = set(audio.flags)
    words = (audio.transcript or "").strip()
    if "non_finite" in flags:
        return "the audio holds non-finite samples (NaN or infinity), not sound"
    if "too_short" in flags or audio.duration_s < MIN_SECONDS:
        return f"the audio is too short ({audio.duration_s:.2f} s; at least {MIN_SECONDS} s is needed)"
    if "silent" in flags:
        return "the audio is silent (nothing above the noise floor)"
    p = audio.prosody or {}
    std, voiced = p.get("f0_std_st"), p.get("voiced_ratio")
    if len(words.split()) <= TONE_MAX_WORDS and std is not None and voiced is not None \
            and voiced >= TONE_MIN_VOICED and std < TONE_MAX_STD_ST:
        return f"the audio is a steady tone, not speech (its pitch varies {std:.2f} semitones)"
    if not words and (voiced is None or voiced < MIN_VOICED_RATIO):
        return "no speech in the audio (no voiced frames and no words)"
    return None


def _given(obs: Observations, item) -> set[str]:
    """The channels the caller supplied: from the Item when known, else what was perceived."""
    if item is not None:
        given = {k for k in ("image", "audio", "video") if getattr(item, k, None)}
        if getattr(item, "text", None) is not None:
            given.add("text")
        return given
    given = {"image"} if obs.faces and obs.video is None else set()
    given |= {k for k in ("audio", "video") if getattr(obs, k) is not None}
    return given | ({"text"} if obs.text is not None else set())


def gate(obs: Observations, item=None, item_id: str | None = None) -> GateResult:
    """Check each supplied channel of ``obs`` (see module docstring); ``item`` (the Item that
    was perceived) says which channels were supplied, ``item_id`` names it in messages."""
    name = item_id or getattr(item, "id", None) or obs.file or "item"
    given = _given(obs, item)
    kept = copy.copy(obs)  # shallow: channels are replaced, never edited
    kept.errors = list(obs.errors)
    # A file that could not be read already has its error (naming it): no second reason for it.
    unread = {k for k in ("image", "video") if item is not None and getattr(item, k, None)
              and any(str(getattr(item, k)) in e for e in obs.errors)}
    dropped: dict[str, str] = {}
    if "video" in given and obs.video is not None and not obs.faces:
        dropped["face"] = f"no face in any of the video's {obs.video.n_frames} analysed frames"
        kept.video = None
    elif "image" in given and "image" not in unread and not obs.faces:
        dropped["face"] = "no face found in the image"
    if obs.audio is not None:
        why = audio_problem(obs.audio)
        if why:
            dropped["voice"] = why
            kept.audio = None
    if obs.text is not None:
        if not any(ch.isalpha() for ch in obs.text):
            dropped["text"] = "the text has no letters" + ("" if obs.text.strip() else
                                                           " (nothing but blanks or control characters)")
            kept.text = None
            kept.text_expression = {}
    has_signal = bool(kept.faces or kept.audio is not None or kept.text or kept.video is not None)
    if not dropped:  # nothing failed here (an unreadable file keeps its own error)
        return GateResult(kept)
    if has_signal:
        warnings = [f"{name}: {ch} dropped from the evidence: {why}" for ch, why in dropped.items()]
        # Idempotent: a second gate (perception's, then the caller's) repeats no warning.
        warnings = [w for w in warnings if w not in obs.errors]
        return GateResult(kept, warnings=warnings, dropped=dropped)
    empty = Observations(file=obs.file, errors=list(obs.errors))
    reasons = "; ".join(dropped.values())
    return GateResult(empty, error=f"{name}: no usable evidence to explain: {reasons}", dropped=dropped)
