"""Pictures of face evidence: landmarks, boxes and active AU regions; AU intensity bars.

    overlay_png(rgb, faces, path=None) -> PNG bytes   every face: box, 478 landmarks, present-AU regions
    au_chart_png(face, path=None) -> PNG bytes        horizontal bars of the 18 AU intensities (0-5)
                                                      (``path``: also written atomically, fileutil)
    draw_face(rgb, face) -> [h x w x 3]       one face, as an array (used by ``affectllm.ui``)
    au_chart(face) -> matplotlib Figure       the chart as a figure (for gradio's Plot)

The region of an AU is the convex hull of the landmarks its proxy measures read (see
``docs/au_rules.md``), tinted with the intensity's opacity. Drawing only: nothing here
measures or classifies, and the input image is never modified.
"""

from __future__ import annotations

import io

import numpy as np

from affectllm.knowledge.facs import AU_NAMES, PRESENCE_THRESHOLD
from affectllm.perception.observations import FaceObs

# Landmark groups (MediaPipe indices) each AU region covers; pairs are (subject's right, left).
_BROW_IN = [(107, 66, 55, 65, 105), (336, 296, 285, 295, 334)]
_BROW_OUT = [(70, 63, 46, 53, 105), (300, 293, 276, 283, 334)]
_BROW_ALL = [(70, 63, 105, 66, 107, 55, 65, 52, 53, 46), (300, 293, 334, 296, 336, 285, 295, 282, 283, 276)]
_UP_LID = [(33, 246, 161, 160, 159, 158, 157, 173, 133), (263, 466, 388, 387, 386, 385, 384, 398, 362)]
_EYE = [(33, 160, 159, 158, 133, 153, 145, 144), (263, 387, 386, 385, 362, 380, 374, 373)]
_LO_LID = [(33, 7, 163, 144, 145, 153, 154, 155, 133), (263, 249, 390, 373, 374, 380, 381, 382, 362)]
_CHEEK = [(50, 117, 118, 101, 36, 205, 187), (280, 346, 347, 330, 266, 425, 411)]
_NOSE = [(129, 98, 64, 48, 115, 220, 45, 4), (358, 327, 294, 278, 344, 440, 275, 4)]
_UPPER_LIP = [(0, 37, 39, 40, 185, 61, 2, 164, 167, 165, 92), (0, 267, 269, 270, 409, 291, 2, 164, 393, 391, 322)]
_CORNER = [(61, 185, 40, 146, 91, 57, 43, 106, 186), (291, 409, 270, 375, 321, 287, 273, 335, 410)]
_LIPS = [(61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91)]
_INNER_LIPS = [(78, 81, 13, 311, 308, 402, 14, 178)]
_CHIN = [(17, 84, 314, 181, 405, 200, 199, 175, 152, 148, 377)]
_JAW = [(17, 84, 314, 152, 148, 377, 176, 400, 149, 378, 136, 365)]

AU_REGIONS: dict[str, list[tuple[int, ...]]] = {
    "AU1": _BROW_IN, "AU2": _BROW_OUT, "AU4": _BROW_ALL, "AU5": _UP_LID, "AU6": _CHEEK,
    "AU7": _LO_LID, "AU9": _NOSE, "AU10": _UPPER_LIP, "AU12": _CORNER, "AU14": _CORNER,
    "AU15": _CORNER, "AU17": _CHIN, "AU20": _CORNER, "AU23": _LIPS, "AU24": _LIPS,
    "AU25": _INNER_LIPS, "AU26": _JAW, "AU43": _EYE,
}
# One colour per face region family, so neighbouring AUs stay distinguishable.
_COLOURS = {"AU1": "#e6194b", "AU2": "#f58231", "AU4": "#911eb4", "AU5": "#4363d8", "AU6": "#f032e6",
            "AU7": "#42d4f4", "AU9": "#bfef45", "AU10": "#fabed4", "AU12": "#ffe119", "AU14": "#dcbeff",
            "AU15": "#9a6324", "AU17": "#800000", "AU20": "#aaffc3", "AU23": "#808000", "AU24": "#ffd8b1",
            "AU25": "#3cb44b", "AU26": "#000075", "AU43": "#469990"}


def _hull(pts: np.ndarray) -> list[tuple[float, float]]:
    import cv2

    h = cv2.convexHull(pts.astype(np.float32))[:, 0]
    return [(float(x), float(y)) for x, y in h]


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))


def draw_overlay(image_rgb: np.ndarray, faces: list[FaceObs], max_side: int = 1024) -> np.ndarray:
    """``[h' x w' x 3]`` uint8 copy of the image (downscaled to ``max_side``) with the faces drawn."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(np.ascontiguousarray(np.asarray(image_rgb)[..., :3]).astype(np.uint8)).convert("RGBA")
    scale = min(1.0, max_side / max(img.size))
    if scale < 1.0:
        img = img.resize((round(img.width * scale), round(img.height * scale)))
    tint = Image.new("RGBA", img.size, (0, 0, 0, 0))
    td = ImageDraw.Draw(tint)
    lw = max(1, round(max(img.size) / 400))
    labels = []
    for k, face in enumerate(faces):
        box = [v * scale for v in face.box]
        lm = np.asarray(face.landmarks)[:, :2] * scale if face.landmarks is not None else None
        if lm is not None:
            # Landmarks first and translucent, so the AU regions stay readable on small faces.
            r = max(0.6, lw * 0.6)
            for x, y in lm:
                td.ellipse((x - r, y - r, x + r, y + r), fill=(0, 170, 255, 110))
            for a in sorted(face.present_aus, key=lambda a: a.intensity):  # strongest drawn last
                alpha = int(60 + 30 * min(a.intensity, 5.0))
                for group in AU_REGIONS.get(a.au, []):
                    td.polygon(_hull(lm[list(group)]), fill=(*_rgb(_COLOURS[a.au]), alpha))
        labels.append((k, box, face))
    img = Image.alpha_composite(img, tint).convert("RGB")
    d = ImageDraw.Draw(img)
    for k, box, face in labels:
        colour = (40, 200, 90) if k == 0 else (240, 200, 40)
        d.rectangle(box, outline=colour, width=lw + (k == 0))
        present = sorted(face.present_aus, key=lambda a: -a.intensity)[:6]
        text = f"#{k + 1} " + (" ".join(f"{a.au}{a.letter}" for a in present) or "no AU")
        ty = box[3] + 2 if box[3] + 14 < img.height else max(0.0, box[1] - 14)
        tw = d.textlength(text)
        d.rectangle((box[0], ty, box[0] + tw + 4, ty + 12), fill=(0, 0, 0))
        d.text((box[0] + 2, ty), text, fill=(255, 255, 255))
    return np.asarray(img)


def draw_face(image_rgb: np.ndarray, face: FaceObs, max_side: int = 640) -> np.ndarray:
    """One face drawn (the UI's hook): see :func:`draw_overlay`."""
    return draw_overlay(image_rgb, [face], max_side=max_side)


def _png(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _maybe_write(data: bytes, path) -> bytes:
    if path is not None:
        from affectllm.io.files import atomic_write_bytes

        atomic_write_bytes(path, data)  # never a half-written picture for a reader to trust
    return data


def overlay_png(image_rgb: np.ndarray, faces: list[FaceObs], max_side: int = 1024, path=None) -> bytes:
    """PNG of :func:`draw_overlay`; also written atomically to ``path`` when given."""
    return _maybe_write(_png(draw_overlay(image_rgb, faces, max_side=max_side)), path)


def au_chart(face: FaceObs, title: str = "Action unit intensity (0-5)"):
    """Matplotlib Figure (Agg, no pyplot state): one bar per AU in FACS order, present ones coloured."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    by = {a.au: a for a in face.aus}
    names = [au for au in AU_NAMES]
    vals = [float(by[au].intensity) if au in by else 0.0 for au in names]
    fig = Figure(figsize=(5.2, 0.24 * len(names) + 1.0), dpi=100)
    ax = fig.add_subplot(111)
    y = np.arange(len(names))
    colours = [_COLOURS[au] if v >= PRESENCE_THRESHOLD else "#c4cad0" for au, v in zip(names, vals)]
    ax.barh(y, vals, color=colours, edgecolor="#333", linewidth=0.4)
    ax.set_yticks(y, [f"{au} {AU_NAMES[au]}" for au in names], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 5.6)
    ax.axvline(PRESENCE_THRESHOLD, color="#555", lw=0.6, ls="--")
    for yi, au, v in zip(y, names, vals):
        letter = by[au].letter if au in by else None
        if letter:
            ax.text(v + 0.08, yi, letter, va="center", fontsize=7, fontweight="bold")
    ax.set_xticks(range(6))
    ax.tick_params(axis="x", labelsize=7)
    ax.set_title(title + "; letters: FACS A-E, grey: absent", fontsize=8)
    fig.tight_layout()
    return fig


def au_chart_png(face: FaceObs, path=None) -> bytes:
    """PNG of :func:`au_chart`; also written atomically to ``path`` when given."""
    buf = io.BytesIO()
    au_chart(face).savefig(buf, format="png")
    return _maybe_write(buf.getvalue(), path)
