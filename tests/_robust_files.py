"""Inputs with no usable signal, or dressed as something else, made at test time (issue 17).

``make_robust(folder) -> {name: path}``: a pure tone, 60 s of silence, a 0.05 s clip, all-NaN
audio, a text file named ``.jpg``, an FLV video (made with PyAV; no face), a text file holding
NUL / ANSI / bidi / zero-width characters, 200,000 characters of text, a Latin-1 CSV manifest,
and a pitch sweep (voiced and moving: not gated, so a result carries a path) with a copy of
its bytes in another folder. Nothing here is committed data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SR = 16000
LONG_CHARS = 200_000
DIRTY = "caf\u00e9 \x1b[31mred\x1b[0m alert\x00 \u202eevil\u202c z\u200bero\x07 I am happy\x85 today\r\n"
DIRTY_CLEAN = "caf\u00e9 red alert evil zero I am happy today\n"


def _wav(path: Path, x: np.ndarray) -> Path:
    import soundfile as sf

    sf.write(str(path), np.asarray(x, np.float32), SR, subtype="FLOAT")
    return path


def sweep(seconds: float = 1.5) -> np.ndarray:
    """A 150-300 Hz pitch sweep up and down: voiced, with moving pitch (not a steady tone)."""
    t = np.arange(int(seconds * SR)) / SR
    f = 220 + 70 * np.sin(2 * np.pi * 1.3 * t)
    return 0.3 * np.sin(2 * np.pi * np.cumsum(f) / SR)


def flv_video(path: Path, frames: int = 10) -> Path:
    """A 96x96 FLV (FLV1 codec) of grey frames: a container PyAV opens, named as CREMA-D ships."""
    import av

    with av.open(str(path), "w", format="flv") as c:
        vs = c.add_stream("flv", rate=10)
        vs.width, vs.height, vs.pix_fmt = 96, 96, "yuv420p"
        for i in range(frames):
            img = np.full((96, 96, 3), 60 + 10 * i, np.uint8)
            for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
    return path


def make_robust(folder: Path) -> dict[str, Path]:
    folder = Path(folder)
    (folder / "other").mkdir(parents=True, exist_ok=True)
    t = np.arange(2 * SR) / SR
    f = {
        "tone.wav": _wav(folder / "tone.wav", 0.3 * np.sin(2 * np.pi * 440 * t)),
        "silence.wav": _wav(folder / "silence.wav", np.zeros(60 * SR)),
        "short.wav": _wav(folder / "short.wav", 0.3 * np.sin(2 * np.pi * 200 * t[: int(0.05 * SR)])),
        "nan.wav": _wav(folder / "nan.wav", np.full(2 * SR, np.nan)),
        "sweep.wav": _wav(folder / "sweep.wav", sweep()),
        "clip.flv": flv_video(folder / "clip.flv"),
    }
    (folder / "other" / "sweep_copy.wav").write_bytes(f["sweep.wav"].read_bytes())
    f["other/sweep_copy.wav"] = folder / "other" / "sweep_copy.wav"
    f["words.jpg"] = folder / "words.jpg"
    f["words.jpg"].write_text("this is a note about feeling happy, not a photo\n")
    f["dirty.txt"] = folder / "dirty.txt"
    f["dirty.txt"].write_bytes(DIRTY.encode("utf-8"))
    f["long.txt"] = folder / "long.txt"
    words = "I am not sure how I feel about all of this. "
    f["long.txt"].write_text((words * (LONG_CHARS // len(words) + 1))[:LONG_CHARS])
    f["latin1.csv"] = folder / "latin1.csv"
    f["latin1.csv"].write_bytes("path,text,id\n,caf\u00e9 cr\u00e8me is lovely,l1\n,na\u00efve joy,l2\n"
                                .encode("latin-1"))
    return f
