"""Text input: strict UTF-8 (BOMs honoured), one sanitiser for every text entry point, exact cuts.

:func:`clean_text` is the one sanitiser: typed words (``--text``, the app, manifest cells) and
text files all pass through it (``io.item.Item`` calls it on construction), so NUL bytes, C0/C1
controls, ANSI escape sequences, bidi overrides and zero-width characters never reach the LLM.
:func:`limit_text` cuts to the one limit, ``MAX_TEXT_CHARS``, and :func:`cut_warning` words the
warning with exact counts. Deliberately not here: what the words mean (``perception``).
"""

from __future__ import annotations

import codecs
import os
import re

from affectllm.errors import InputError
from affectllm.io.sniff import SNIFF_BYTES, _check_file, looks_binary

# The one text limit: words beyond this add nothing a 135M model can use. ``io.item.Item`` cuts
# every input's text to it, with a warning giving the exact counts (``cut_warning``).
MAX_TEXT_CHARS = 4000
# How much of a text input is decoded at all (a guard against huge files, not the prompt limit):
# reading stops here and flags "truncated" (``count_chars`` gives the file's true length).
MAX_READ_CHARS = 5 * MAX_TEXT_CHARS
CUT_WORDS = "characters cut to"  # in every truncation warning; batch rows turn it into the "truncated" flag

# ANSI/VT escape sequences: CSI (ESC [ ... final), OSC (ESC ] ... BEL or ESC \\), and two-byte ESC X.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]|\x9b[0-?]*[ -/]*[@-~]")
# Bidi embeddings/overrides/isolates and marks (they reorder what a reader sees: "Trojan Source"),
# and zero-width characters (they hide or split words).
_INVISIBLE = dict.fromkeys(map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
                                   "\u200b\u200c\u200d\u2060\ufeff\u180e"))


def clean_text(text: str) -> str:
    """``text`` without NUL, C0/C1 controls (tab and newline kept; CR becomes a newline), ANSI
    escape sequences, bidi overrides and zero-width characters. Idempotent."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _ANSI.sub("", text).translate(_INVISIBLE)
    return "".join(ch for ch in text if ch in "\n\t" or not (ch < " " or "\x7f" <= ch <= "\x9f"))


def limit_text(text: str, max_chars: int = MAX_TEXT_CHARS) -> tuple[str, bool]:
    """``(text cut to max_chars, cut?)``, at a word boundary when one is within 100 characters."""
    if len(text) <= max_chars:
        return text, False
    cut_at = text.rfind(" ", max_chars - 100, max_chars)
    return text[: cut_at if cut_at > 0 else max_chars], True


def cut_warning(item, n_chars: int, kept: int) -> str:
    """The truncation warning, with the input's exact length and what was kept."""
    return f"{item}: text of {n_chars:,} {CUT_WORDS} {kept:,} (the limit is {MAX_TEXT_CHARS:,})"


def count_chars(path) -> int:
    """Characters (code points) in a UTF-8 file, counted without decoding it all: every byte
    that is not a continuation byte (0x80-0xBF) starts one. A BOM is not counted."""
    n, first = 0, True
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            if first and chunk.startswith(codecs.BOM_UTF8):
                chunk = chunk[len(codecs.BOM_UTF8):]
            first = False
            n += len(chunk.translate(None, _CONTINUATION))  # continuation bytes deleted
    return n


_CONTINUATION = bytes(range(0x80, 0xC0))


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
        if looks_binary(raw[:SNIFF_BYTES]) and not raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise InputError(p, "binary file, not text")
        text, cut = _decode_text(p, raw, final=not more)
        more = more or cut
    elif isinstance(path_or_str, (bytes, bytearray)):
        text, more = _decode_text(item, bytes(path_or_str), final=True)
    elif isinstance(path_or_str, str):
        text, more = path_or_str, False
    else:
        raise InputError(item, f"expected a path, str or bytes, got {type(path_or_str).__name__}")
    # Control characters, escapes, bidi overrides are noise to the LLM and can hide text.
    text, cut = limit_text(clean_text(text), max_chars)
    flags = ["truncated"] if cut or more else []
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
