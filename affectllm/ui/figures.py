"""Pictures for the chat UI: AU intensity bars and the face with its landmarks and box.

The face helper's ``affectllm.perception.render`` is used when it provides a drawing; until
then these simple matplotlib / PIL drawings stand in, from the same ``FaceObs`` fields
(``aus``, ``box``, ``landmarks`` [478 x 3] pixels).

Deliberately not here: perception (landmarks come from ``FaceObs``), UI layout (``app.py``).
"""

from __future__ import annotations

import numpy as np

from affectllm.knowledge.facs import PRESENCE_THRESHOLD
from affectllm.perception.observations import FaceObs


def au_chart(face: FaceObs | None, title: str = "Action unit intensity (0-5)"):
    """A horizontal bar chart of the face's AU intensities (present AUs highlighted), or None."""
    if face is None or not face.aus:
        return None
    try:
        from affectllm.perception import render

        if hasattr(render, "au_chart"):
            return render.au_chart(face)
    except ImportError:
        pass
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    aus = sorted(face.aus, key=lambda a: int(a.au[2:]) if a.au[2:].isdigit() else 99)
    fig = Figure(figsize=(5.0, 0.22 * len(aus) + 0.9), dpi=100)
    ax = fig.add_subplot(111)
    y = np.arange(len(aus))
    colors = ["#d9534f" if a.present else "#9aa5b1" for a in aus]
    ax.barh(y, [a.intensity for a in aus], color=colors)
    ax.set_yticks(y, [f"{a.au} {a.name}" for a in aus], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 5)
    ax.axvline(PRESENCE_THRESHOLD, color="#555", lw=0.6, ls="--")
    ax.set_title(title + " - red: present", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    fig.tight_layout()
    return fig


def face_overlay(rgb: np.ndarray, face: FaceObs | None, max_side: int = 640) -> np.ndarray | None:
    """``rgb`` [h x w x 3] with the face box, landmarks and present AUs drawn; None without a face."""
    if face is None:
        return None
    try:
        from affectllm.perception import render

        if hasattr(render, "draw_face"):
            return np.asarray(render.draw_face(rgb, face))
    except ImportError:
        pass
    from PIL import Image, ImageDraw

    img = Image.fromarray(np.ascontiguousarray(rgb[..., :3]).astype(np.uint8))
    scale = min(1.0, max_side / max(img.size))
    if scale < 1.0:
        img = img.resize((round(img.width * scale), round(img.height * scale)))
    draw = ImageDraw.Draw(img)
    x0, y0, x1, y1 = (v * scale for v in face.box)
    w = max(2, round(img.width / 300))
    draw.rectangle((x0, y0, x1, y1), outline=(40, 200, 90), width=w)
    if face.landmarks is not None:
        pts = np.asarray(face.landmarks)[:, :2] * scale
        r = max(1, w // 2)
        for x, y in pts:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=(0, 170, 255))
    present = sorted(face.present_aus, key=lambda a: -a.intensity)[:5]
    label = ", ".join(f"{a.au} {a.letter}" for a in present) or "no AU present"
    ty = y1 + 4 if y1 + 20 < img.height else max(0, y0 - 16)
    draw.rectangle((x0, ty, x0 + 7 * len(label) + 6, ty + 14), fill=(0, 0, 0))
    draw.text((x0 + 3, ty + 1), label, fill=(255, 255, 255))
    return np.asarray(img)
