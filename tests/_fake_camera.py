"""A video as a Y4M file, the format Chromium's fake camera plays (``--use-file-for-fake-video-capture``).

    y4m = to_y4m("clip.mp4", "clip.y4m", max_side=640, seconds=12)

Y4M is a header line (size, frame rate, 4:2:0 chroma) and per frame ``FRAME\\n`` then the Y, U and
V planes; PyAV decodes and converts each frame to yuv420p. Chromium loops the file.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from affectllm.paths import PYFEAT_CLIP



def to_y4m(src: str | Path, out: str | Path, max_side: int = 640, seconds: float | None = None) -> Path:
    """Write ``src`` (any video PyAV reads) as Y4M, downscaled to ``max_side`` (even sizes); returns ``out``."""
    import av

    out = Path(out)
    with av.open(str(src)) as container, open(out, "wb") as f:
        stream = container.streams.video[0]
        rate = Fraction(stream.average_rate or 25).limit_denominator(1001)
        w, h = stream.codec_context.width, stream.codec_context.height
        k = min(1.0, max_side / max(w, h))
        w, h = int(w * k) // 2 * 2, int(h * k) // 2 * 2
        f.write(f"YUV4MPEG2 W{w} H{h} F{rate.numerator}:{rate.denominator} Ip A1:1 C420jpeg\n".encode())
        for i, frame in enumerate(container.decode(stream)):
            if seconds is not None and i >= seconds * rate:
                break
            planes = frame.reformat(width=w, height=h, format="yuv420p").to_ndarray()  # [h*3/2 x w]
            f.write(b"FRAME\n")
            f.write(planes.tobytes())
    return out
