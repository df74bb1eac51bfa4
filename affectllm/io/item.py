"""The one front door from files and text to an :class:`Item`: routed by content, checked by name.

An ``Item`` is one input: any of an image, audio or video path, and text. :func:`to_item` makes
one from whatever a caller holds (a path, words, an Item, a dict of its fields); the CLI, the
batch job, the UI and ``Explainer.explain`` all come through here, so every input is routed the
same way: by its bytes (``io.sniff.detect_kind``), never by its extension, and a file *named*
like a picture or clip whose content is text is refused rather than explained as words.
Data-set readers route their rows with :func:`route` (the same check, without making an Item).

Every Item's text is cleaned (``io.text.clean_text``) and cut to ``MAX_TEXT_CHARS`` when it is
made, whoever makes it: ``meta["text_chars"]`` keeps the exact original length and
``meta["text_warning"]`` the truncation warning (perception passes it on to the result).

Deliberately not here: decoding the media (``io.image``, ``io.audio``) or perceiving them.
"""

from __future__ import annotations

import mimetypes
import os
from dataclasses import dataclass, field
from pathlib import Path

from affectllm.errors import InputError


@dataclass
class Item:
    """One input: any of image / audio / video paths, and text. ``id`` names it in errors."""

    id: str
    image: str | None = None
    audio: str | None = None
    video: str | None = None
    text: str | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        from affectllm.io.text import clean_text, cut_warning, limit_text

        if self.text is None:
            return
        n = max(len(self.text), int(self.meta.get("text_chars") or 0))
        self.text, cut = limit_text(clean_text(self.text))
        # Text that was nothing but controls stays "" so the evidence gate can say so.
        if cut or n > len(self.text):
            self.meta = {**self.meta, "text_chars": n}
        if cut or self.meta.get("text_truncated"):
            self.meta["text_truncated"] = True
            self.meta["text_warning"] = cut_warning(self.id, n, len(self.text))

    @property
    def main_file(self) -> str | None:
        return self.video or self.image or self.audio

    @classmethod
    def from_path(cls, path: str | os.PathLike, text: str | None = None, id: str | None = None) -> Item:
        """Route one file by its content (magic bytes), not its extension.

        A file whose content is text becomes words (``text`` given replaces them); one named like
        media (``.jpg``, ``.wav``) but holding text raises :class:`InputError` naming the file.
        """
        from affectllm.io.text import count_chars, read_text

        p = str(path)
        kind = route(p)
        if kind == "text":
            if text is not None:
                return cls(id=id or p, text=text)
            words, flags = read_text(Path(p))
            meta = {"text_chars": count_chars(p), "text_truncated": True} if "truncated" in flags else {}
            return cls(id=id or p, text=words, meta=meta)
        return cls(id=id or p, text=text, **{kind: p})


def route(path: str | os.PathLike, media_only: bool = False) -> str:
    """The one router: ``"image"``, ``"audio"``, ``"video"`` or ``"text"`` for a file, by its
    content first (``io.sniff.detect_kind``; containers PyAV opens, .flv included, are probed)
    and its name second: a file named like media whose content is text is refused, as is any
    text file when ``media_only`` (a data set's media column). Raises InputError naming it."""
    from affectllm.io.sniff import detect_kind

    p = str(path)
    kind = detect_kind(p)
    if kind == "text":
        media = media_kind_of_name(p)
        if media:  # routed to text by content: it was meant to be a picture or a clip
            raise InputError(p, f"named like {media} file ({Path(p).suffix}) but the "
                                "content is text; rename it .txt to explain it as words")
        if media_only:
            raise InputError(p, "a text file where an image, audio or video file was expected")
    return kind


def media_kind_of_name(path: str) -> str | None:
    """"an image" / "an audio" / "a video" when the file name says so (by extension), else None."""
    kind = (mimetypes.guess_type(path)[0] or "").split("/")[0]
    return {"image": "an image", "audio": "an audio", "video": "a video"}.get(kind)


def looks_like_words(s: str) -> bool:
    """A string that names no file and reads as words, not as a mistyped path: it has a blank
    and no media extension. ``"They cancelled it."`` is words; ``"photo.jpg"`` stays a path (and
    fails as one when missing)."""
    return not os.path.exists(s) and any(c.isspace() for c in s) and media_kind_of_name(s.strip()) is None


def to_item(x, text: str | None = None, id: str | None = None) -> Item:
    """An :class:`Item` for ``x``: an Item (as is), a dict of Item fields, a path (routed by
    content), words (see :func:`looks_like_words`), or None with ``text``. ``text`` attaches
    words to a single file; ``id`` names the item (default: the path, or ``"text"``)."""
    if isinstance(x, Item):
        return x
    if isinstance(x, dict):
        return Item(**x)
    if x is None:
        if not (text and text.strip()):
            raise InputError(id or "input", "neither a file nor text")
        return Item(id=id or "text", text=text)
    if isinstance(x, str) and looks_like_words(x):
        return Item(id=id or "text", text=x if text is None else f"{x}\n{text}")
    return Item.from_path(x, text=text, id=id)
