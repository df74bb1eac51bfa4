"""What the chat UI does between the browser and the :class:`Explainer`, without any gradio code.

- :class:`ModelPool`: Explainers by model name, loaded on first use, one shared ``Perception``
  (its observation cache serves every model) and one lock (a model is not shared between threads).
- :func:`item_from_files`: uploaded files (an image and/or a clip, a video, or a text file) and
  typed words to one pipeline ``Item``, checked first: content vs name, media duration limit.
- :class:`Conversation`: the Observations of the current upload plus the earlier turns, so a
  follow-up question is answered from the same evidence with ``history=`` (no re-upload).
- :func:`notes`: plain messages when the face or the voice is missing or flagged.
- :func:`pretty`: the rationale's tags as readable Markdown.

Deliberately not here: perception, prompting, parsing (``affectllm.inference``); layout (``app.py``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from affectllm.errors import InputError
from affectllm.io.files import replace_in_strings
from affectllm.perception.observations import Observations

MAX_MEDIA_SECONDS = 60.0  # longer clips and videos are refused (perception time grows with length)
MAX_HISTORY_TURNS = 4  # earlier messages kept for follow-ups (the prompt has a token limit)


def model_choices(extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """``affectllm-mini`` when its weights are present, ``base``, then local checkpoint folders."""
    from affectllm.model.builder import default_model_name

    first = ["affectllm-mini"] if default_model_name() == "affectllm-mini" else []
    return list(dict.fromkeys(first + ["base"] + [str(e) for e in extra]))


class ModelPool:
    """Explainers by name (see module docstring)."""

    def __init__(self, names: list[str], max_new_tokens: int | None = None, perception=None, modalities=("face", "audio")):
        from affectllm.perception.pipeline import Perception

        self.names = list(names)
        self.max_new_tokens = max_new_tokens
        self.perception = perception or Perception(modalities=modalities)
        self.load_lock = threading.Lock()
        # One explanation at a time per process (CPU-bound; perceivers are not thread-safe). A plain
        # Lock, not an RLock: a streaming handler may resume on another worker thread.
        self.run_lock = threading.Lock()
        self._explainers: dict = {}

    @property
    def default(self) -> str:
        return self.names[0]

    def get(self, name: str | None = None):
        from affectllm.inference import Explainer

        name = name or self.default
        if name not in self.names:
            raise InputError(name, f"unknown model; choose one of {', '.join(self.names)}")
        with self.load_lock:
            if name not in self._explainers:
                self._explainers[name] = Explainer.from_name(name, perception=self.perception,
                                                             max_new_tokens=self.max_new_tokens)
            return self._explainers[name]


def media_seconds(path: str) -> float | None:
    """Duration of an audio/video file from its container header (None when unknown)."""
    import av

    try:
        with av.open(str(path)) as c:
            if c.duration:
                return c.duration / 1_000_000
            streams = list(c.streams.audio) + list(c.streams.video)
            for s in streams:
                if s.duration and s.time_base:
                    return float(s.duration * s.time_base)
    except Exception:  # noqa: BLE001 - unreadable: decoding will say why
        return None
    return None


def item_from_files(files: list[str], text: str | None = None, max_seconds: float = MAX_MEDIA_SECONDS):
    """One ``Item`` from uploads; raises InputError naming the file for anything unusable."""
    from affectllm.io.item import Item

    if not files:
        if not (text and text.strip()):
            raise InputError("message", "nothing to explain: upload a photo, clip or video, or type some words")
        return Item(id="typed words", text=text)
    merged = Item(id=" + ".join(Path(f).name for f in files), text=text or None)
    chars, cut = 0, False  # characters of the text files beyond what was kept; any file cut
    for f in files:
        name = Path(f).name
        part = Item.from_path(f, id=name)  # routed by content; a text file named .jpg is refused
        for kind in ("image", "audio", "video"):
            path = getattr(part, kind)
            if not path:
                continue
            if kind in ("audio", "video"):
                secs = media_seconds(path)
                if secs is not None and secs > max_seconds:
                    raise InputError(name, f"the {kind} is {secs:.0f} s long; the limit here is {max_seconds:.0f} s")
            if getattr(merged, kind):
                raise InputError(name, f"a second {kind} file; send one {kind} at a time")
            setattr(merged, kind, path)
        if part.main_file is None and part.text:  # a .txt file: its words are the evidence
            merged.text = part.text if not merged.text else merged.text + "\n" + part.text
            chars += int(part.meta.get("text_chars") or len(part.text)) - len(part.text)
            cut = cut or bool(part.meta.get("text_truncated"))
    if merged.video and (merged.image or merged.audio):
        raise InputError(merged.id, "send a video alone (its own sound track is used)")
    if merged.text is None:
        return merged
    # Made again so the joined words are cleaned and cut once, with the exact count (io.item.Item).
    meta = {"text_chars": chars + len(merged.text), "text_truncated": cut} if cut else {}
    return Item(id=merged.id, image=merged.image, audio=merged.audio, video=merged.video,
                text=merged.text, meta=meta)


@dataclass
class Conversation:
    """The current upload's evidence and the turns since (kept in ``gr.State``)."""

    obs: Observations | None = None
    source: str | None = None  # the uploaded file(s), for the overlay and messages
    image: str | None = None  # path of the uploaded image, for the overlay
    paths: list[str] = field(default_factory=list)  # uploaded files' server paths (scrubbed from messages)
    turns: list[dict] = field(default_factory=list)  # after the first answer: assistant, user, assistant...

    def history(self) -> list[dict] | None:
        """Earlier turns for ``explain(history=)``: None on the first question."""
        if not self.turns:
            return None
        turns = self.turns[-(MAX_HISTORY_TURNS + 1):]
        return turns if turns[0]["role"] == "assistant" else turns[1:]

    def add(self, question: str | None, answer: str) -> None:
        if self.turns:
            self.turns.append({"role": "user", "content": question or ""})
        self.turns.append({"role": "assistant", "content": answer})


def notes(obs: Observations | None, result=None, item=None) -> list[str]:
    """Plain-language notes about missing or weak evidence (shown beside the answer)."""
    out: list[str] = []
    if obs is None:
        return out
    img = bool(item is not None and item.image) or obs.image is not None
    vid = bool(item is not None and item.video) or obs.video is not None
    aud = bool(item is not None and item.audio) or obs.audio is not None
    name = Path(obs.file).name if obs.file else "the upload"
    if (img or vid) and not obs.faces:
        out.append(f"The face in {name} could not be analysed (see the problem below): the answer cannot use "
                   "facial expression." if obs.errors else
                   f"No face was found in {name}: the answer cannot use facial expression.")
    elif obs.main_face is not None and obs.main_face.flags:
        out.append("Face caveats: " + ", ".join(f.replace("_", " ") for f in obs.main_face.flags) + ".")
    if len(obs.faces) > 1:
        out.append(f"{len(obs.faces)} faces in view; the largest is described.")
    if obs.audio is not None:
        fl = set(obs.audio.flags)
        if fl & {"silent", "no_speech"}:
            out.append(f"No speech was heard in {name} ({', '.join(sorted(fl & {'silent', 'no_speech'}))}): "
                       "the voice adds little or nothing.")
        if "too_short" in fl:
            out.append(f"The audio of {name} is too short for voice analysis.")
    elif vid or aud:
        out.append(f"No voice could be used from {name}.")
    out += [f"Problem: {e}" for e in obs.errors]
    if result is not None:
        out += [f"Note: {w}" for w in result.warnings if not any(w in e for e in obs.errors)]
        ex = result.explanation
        if ex is not None and ex.conclusion_emotion and ex.emotion and ex.conclusion_emotion != ex.emotion:
            out.append(f"The written conclusion leans to {ex.conclusion_emotion}, but the scored answer is "
                       f"{ex.emotion}: the rationale and the answer disagree.")
    return list(dict.fromkeys(out))


def scrub(obj, paths: list[str] | tuple[str, ...]):
    """``obj`` (str / JSON-like) with each uploaded file's server path replaced by its file name,
    so answers and errors never show the server's temporary folders."""
    return replace_in_strings(obj, [(str(p), Path(p).name) for p in paths])


def pretty(text: str) -> str:
    """The raw ``<think>...</think><answer>x</answer>`` text as Markdown for the chat."""
    import re

    from affectllm.explanation.format import ANSWER_CLOSE, ANSWER_OPEN, HEADINGS, THINK_CLOSE, THINK_OPEN

    t = text.replace(THINK_OPEN, "").replace(THINK_CLOSE, "")
    for head in HEADINGS.values():
        t = t.replace(head, f"\n\n**{head}**")  # a paragraph each (else Markdown glues it to a list)
    t = t.replace(ANSWER_OPEN, "\n\n**Answer:** ").replace(ANSWER_CLOSE, "")
    return re.sub(r"\n{3,}", "\n\n", t).strip()


def voice_markdown(obs: Observations | None) -> str:
    """Prosody summary and transcript, or why there is none."""
    if obs is None or obs.audio is None:
        return "_No voice in this input._"
    a = obs.audio
    lines = [f"**Voice** ({a.duration_s:.1f} s): {a.prosody_summary() or 'no prosody measured'}"]
    if a.transcript:
        lang = f" ({a.language})" if a.language else ""
        lines.append(f"**Transcript**{lang}: \u201c{a.transcript.strip()}\u201d")
    if a.flags:
        lines.append("**Flags:** " + ", ".join(a.flags))
    return "\n\n".join(lines)
