"""The bad-input battery: small files that are broken, odd or empty in every way a user manages.

``make_battery(folder) -> {name: path}``; every file is generated here (no data is committed).
``EXPECT`` says what each must give: an error whose text contains one of the words, or
``"flag"`` (explained, with one of the words in the row's ``flags``), ``"flag_or_error"``
(either), ``"ok"`` (explained) or ``"decoded"`` (decodes; no face in it is an error or an empty
face list).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

LONG_TEXT_CHARS = 100_000

# name -> (expectation, words one of which the error must contain)
EXPECT = {
    "zero.jpg": ("error", ("empty file",)),
    "truncated.jpg": ("error", ("truncated", "corrupt")),
    "text_named.jpg": ("error", ("content is text",)),
    "huge_50mp.png": ("error", ("megapixels",)),
    "one_pixel.png": ("error", ("1x1",)),
    "cmyk.jpg": ("decoded", ()),  # decodes; then no face: an error or an empty face list, never a decode error
    "grey16.png": ("decoded", ()),
    "animated.gif": ("decoded", ()),
    # No usable signal (issue 17): an error naming the cause, never a label from nothing.
    "short_0.1s.wav": ("error", ("too short",)),
    "silent.wav": ("error", ("silent",)),
    "stereo_8k.wav": ("error", ("steady tone",)),  # an amplitude-modulated 180 Hz tone, not speech
    "corrupt.mp3": ("error", ("corrupt", "unreadable", "no samples")),
    "video_no_audio.mp4": ("flag_or_error", ("no_audio",)),
    "video_no_face.mp4": ("flag_or_error", ("no_face",)),
    "long_text.txt": ("warning", ("cut",)),
    "bad_utf8.txt": ("error", ("UTF-8",)),
}


def _png_header_only(w: int, h: int) -> bytes:
    """A PNG with an IHDR for ``w x h`` RGB and no pixel data: a decompression-bomb header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IEND", b"")


def _wav(path: Path, seconds: float, sr: int = 16000, channels: int = 1, silent: bool = False) -> None:
    import soundfile as sf

    t = np.arange(int(seconds * sr)) / sr
    x = np.zeros_like(t) if silent else 0.3 * np.sin(2 * np.pi * 180 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    if channels > 1:
        x = np.stack([x, 0.5 * x], axis=1)
    sf.write(str(path), x.astype(np.float32), sr)


def _video(path: Path, seconds: float = 1.0, audio: bool = False, fps: int = 10) -> None:
    """A small MP4 of a moving grey gradient (no face), with a tone track when ``audio``."""
    import av

    with av.open(str(path), "w") as c:
        vs = c.add_stream("mpeg4", rate=fps)
        vs.width, vs.height, vs.pix_fmt = 96, 96, "yuv420p"
        aus = c.add_stream("aac", rate=16000) if audio else None
        for i in range(int(seconds * fps)):
            img = np.full((96, 96, 3), 60 + 10 * i, np.uint8)
            img[:, : 8 * (i + 1)] = 200
            for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        if aus is not None:
            t = np.arange(int(seconds * 16000)) / 16000
            x = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)[None, :]
            frame = av.AudioFrame.from_ndarray(x, format="fltp", layout="mono")
            frame.sample_rate = 16000
            for p in aus.encode(frame):
                c.mux(p)
            for p in aus.encode():
                c.mux(p)


def make_battery(folder: Path) -> dict[str, Path]:
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    f = {name: folder / name for name in EXPECT}
    f["zero.jpg"].write_bytes(b"")
    noise.save(folder / "_full.jpg", quality=90)
    full = (folder / "_full.jpg").read_bytes()
    (folder / "_full.jpg").unlink()
    f["truncated.jpg"].write_bytes(full[: len(full) // 2])
    f["text_named.jpg"].write_text("this is a note, not a photo\n")
    f["huge_50mp.png"].write_bytes(_png_header_only(7072, 7072))  # 50.0 megapixels
    Image.new("RGB", (1, 1), (200, 120, 90)).save(f["one_pixel.png"])
    Image.new("CMYK", (64, 64), (0, 120, 200, 10)).save(f["cmyk.jpg"])
    Image.fromarray((np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)).save(f["grey16.png"])
    frames = [Image.new("RGB", (64, 64), (40 * i, 80, 160)) for i in range(3)]
    frames[0].save(f["animated.gif"], save_all=True, append_images=frames[1:], duration=100, loop=0)
    _wav(f["short_0.1s.wav"], 0.1)
    _wav(f["silent.wav"], 2.0, silent=True)
    _wav(f["stereo_8k.wav"], 1.5, sr=8000, channels=2)
    junk = rng.integers(0, 255, 4000, dtype=np.uint8).tobytes()
    f["corrupt.mp3"].write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00" + junk)  # an ID3 tag, then noise
    _video(f["video_no_audio.mp4"], audio=False)
    _video(f["video_no_face.mp4"], audio=True)
    words = "I am not sure how I feel about all of this. "
    f["long_text.txt"].write_text((words * (LONG_TEXT_CHARS // len(words) + 1))[:LONG_TEXT_CHARS])
    f["bad_utf8.txt"].write_bytes(b"caf\xe9 au lait \xff\xfe is nice\n")
    return f


def write_manifest(folder: Path, files: dict[str, Path]) -> Path:
    """A CSV manifest over the battery plus rows escaping the folder and rows with missing columns."""
    m = Path(folder) / "manifest.csv"
    rows = ["path,text,id"] + [f"{p.name},,{p.name}" for p in files.values()]
    rows += ["../outside.jpg,,escape_up", "/etc/passwd,,escape_abs", "zero.jpg", ",,", "sub/../../x.wav,,escape_mid"]
    m.write_text("\n".join(rows) + "\n")
    return m
