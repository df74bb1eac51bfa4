"""What a file is, from its first bytes (magic numbers), never from its extension.

Containers that can hold audio or video (MP4, Matroska, Ogg...) are probed with PyAV. Also the
shared checks every loader runs first (exists, regular file, not empty, not absurdly large).
"""

from __future__ import annotations

import codecs
import os
from pathlib import Path

from affectllm.errors import InputError

MAX_FILE_BYTES = 2 << 30  # 2 GiB: refuse before touching anything larger
SNIFF_BYTES = 4096

# ISO-BMFF (MP4 family) major brands that say "audio only" or "still image" without probing.
_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "}
_IMAGE_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}


# ----------------------------------------------------------------------------- sniffing

def _sniff(head: bytes) -> str | None:
    """Kind from the first bytes: image/audio/video/text, "container" (probe needed) or None."""
    h = head
    if h.startswith(b"\xff\xd8\xff") or h.startswith(b"\x89PNG\r\n\x1a\n") or h[:6] in (b"GIF87a", b"GIF89a"):
        return "image"
    if h.startswith(b"BM") and len(h) >= 14 or h[:4] in (b"II*\x00", b"MM\x00*", b"8BPS", b"qoif"):
        return "image"
    if h[:4] == b"\x00\x00\x01\x00" or h.startswith(b"\x00\x00\x00\x0cjP  ") or h.startswith(b"\xffO\xffQ"):
        return "image"  # ICO, JPEG 2000 (jp2 box, raw codestream)
    if len(h) >= 3 and h[0:1] == b"P" and h[1:2] in b"123456" and h[2:3] in b" \t\r\n":
        return "image"  # PNM
    if h[:4] == b"RIFF" and len(h) >= 12:
        return {b"WAVE": "audio", b"WEBP": "image", b"AVI ": "video"}.get(h[8:12], "container")
    if h[:4] in (b"fLaC", b"FORM", b".snd", b"wvpk", b"caff", b"MAC ") or h.startswith(b"#!AMR"):
        return "audio"
    if h.startswith(b"ID3"):
        return "audio"
    if len(h) >= 2 and h[0] == 0xFF and (h[1] & 0xE0) == 0xE0:
        return "audio"  # MPEG audio frame sync or AAC ADTS (JPEG's FF D8 fails the mask)
    if h[4:8] == b"ftyp":
        brand = h[8:12]
        if brand in _AUDIO_BRANDS:
            return "audio"
        if brand in _IMAGE_BRANDS:
            return "image"
        return "container"  # mp4/mov/3gp: video, or audio only; PyAV decides
    if h[:4] in (b"OggS", b"\x1aE\xdf\xa3", b"FLV\x01") or h[:4] == b"\x30\x26\xb2\x75":
        return "container"  # Ogg, Matroska/WebM, FLV, ASF: audio or video
    if h[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3") or (len(h) > 188 and h[0] == 0x47 and h[188] == 0x47):
        return "video"  # MPEG program / elementary stream, MPEG-TS
    if h.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "text"
    if h and not looks_binary(h):
        # Text, UTF-8 or not (read_text says why it refuses non-UTF-8): mostly printable bytes.
        # A stray NUL or escape sequence does not make it binary (io.text.clean_text drops them).
        printable = sum(1 for b in h if b >= 0x20 or b in b"\t\n\r\f\x1b")
        if printable / len(h) > 0.95:
            return "text"
    return None


def looks_binary(head: bytes) -> bool:
    """True when NUL bytes say ``head`` is binary: more than one in a hundred. A stray NUL in a
    text file (a bad export) is dropped by ``io.text.clean_text``, not read as "binary"."""
    return head.count(0) > max(1, len(head) // 100)


def _has_video_stream(path: Path) -> bool:
    """True when a container holds a real video stream (cover art in an m4a/mp3 does not count)."""
    import av

    try:
        with av.open(str(path)) as c:
            for s in c.streams.video:
                if not (int(s.disposition) & int(av.stream.Disposition.attached_pic)):
                    return True
            if not c.streams.audio:
                raise InputError(path, "container holds neither audio nor video streams")
            return False
    except InputError:
        raise
    except Exception as e:  # av.error.* and OSError: the container itself is unreadable
        raise InputError(path, f"unreadable media container ({_av_reason(e)})") from e


def _check_file(path) -> Path:
    p = Path(path)
    if not p.exists():
        raise InputError(p, "file not found")
    if not p.is_file():
        raise InputError(p, "not a regular file")
    size = p.stat().st_size
    if size == 0:
        raise InputError(p, "empty file (0 bytes)")
    if size > MAX_FILE_BYTES:
        raise InputError(p, f"file is {size / 2**30:.1f} GiB, over the {MAX_FILE_BYTES / 2**30:.0f} GiB limit")
    return p


def detect_kind(path: str | os.PathLike) -> str:
    """``"image"``, ``"audio"``, ``"video"`` or ``"text"`` from the file's content.

    Containers that may hold either audio or video (MP4, Matroska, Ogg) are probed with PyAV.
    Raises InputError for empty, missing or unrecognised files.
    """
    p = _check_file(path)
    with open(p, "rb") as f:
        head = f.read(SNIFF_BYTES)
    kind = _sniff(head)
    if kind == "container":
        kind = "video" if _has_video_stream(p) else "audio"
    if kind is None:
        raise InputError(p, "unrecognised file format (not an image, audio, video or text file)")
    return kind


def _av_reason(e: Exception) -> str:
    msg = str(e).strip() or type(e).__name__
    return msg.split(": '", 1)[0] if len(msg) > 200 else msg
