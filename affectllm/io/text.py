"""Text input: strict UTF-8 (BOMs honoured), control characters dropped, long text cut and flagged."""

from __future__ import annotations

import codecs
import os

from affectllm.errors import InputError
from affectllm.io.sniff import SNIFF_BYTES, _check_file

# The one text limit: words beyond this add nothing a 135M model can use. The Explainer cuts the
# evidence text to it, with a warning naming the item (affectllm.inference).
MAX_TEXT_CHARS = 4000
# How much of a text input is decoded at all (a guard against huge files, not the prompt limit):
# reading stops here and flags "truncated"; the prompt cut to MAX_TEXT_CHARS comes later.
MAX_READ_CHARS = 5 * MAX_TEXT_CHARS


def read_text(path_or_str, max_chars: int = MAX_READ_CHARS) -> tuple[str, list[str]]:
    """Text from a file path (``Path``, or a ``str`` naming an existing file), bytes, or a string.

    Returns ``(text, flags)``; flags holds ``"truncated"`` when the text was cut to ``max_chars``
    (at a word boundary when one is near). Bytes must be UTF-8 (a UTF-8/16 BOM is honoured);
    anything else raises InputError with the offending byte and its offset.
    """
    item: object = "text"
    if isinstance(path_or_str, os.PathLike) or (
            isinstance(path_or_str, str) and len(path_or_str) < 4096 and "\n" not in path_or_str
            and os.path.isfile(path_or_str)):
        p = _check_file(path_or_str)
        item = p
        with open(p, "rb") as f:
            raw = f.read(max_chars * 4 + 8)  # UTF-8 needs at most 4 bytes a character
            more = bool(f.read(1))
        if b"\x00" in raw[:SNIFF_BYTES] and not raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise InputError(p, "binary file, not text")
        text, cut = _decode_text(p, raw, final=not more)
        more = more or cut
    elif isinstance(path_or_str, (bytes, bytearray)):
        text, more = _decode_text(item, bytes(path_or_str), final=True)
    elif isinstance(path_or_str, str):
        text, more = path_or_str, False
    else:
        raise InputError(item, f"expected a path, str or bytes, got {type(path_or_str).__name__}")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # Control characters (other than tab/newline) are noise to the LLM and can hide text.
    text = "".join(ch for ch in text if ch in "\n\t" or ch >= " " and ch != "\x7f")
    flags = []
    if len(text) > max_chars:
        cut_at = text.rfind(" ", max_chars - 100, max_chars)
        text = text[: cut_at if cut_at > 0 else max_chars]
        flags.append("truncated")
    elif more:
        flags.append("truncated")
    if not text.strip():
        raise InputError(item, "empty text (nothing but whitespace)")
    return text, flags


def _decode_text(item, raw: bytes, final: bool) -> tuple[str, bool]:
    """Strict decode; returns (text, cut) where cut says trailing bytes were left undecoded."""
    encoding = "utf-8"
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    elif raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    dec = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        text = dec.decode(raw, final=final)
    except UnicodeDecodeError as e:
        bad = e.object[e.start:e.start + 1].hex()
        raise InputError(item, f"not valid UTF-8 text: byte 0x{bad} at offset {e.start} ({e.reason}); "
                               "save the file as UTF-8") from e
    return text, bool(dec.getstate()[0])
