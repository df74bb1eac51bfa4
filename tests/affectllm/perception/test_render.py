"""Face drawings from synthetic FaceObs (the calibrated reference mesh, no MediaPipe)."""

import io

import numpy as np
from PIL import Image

from affectllm.knowledge.facs import AU_NAMES
from affectllm.perception.observations import AUObs, FaceObs
from affectllm.perception.calibration import reference_shape
from affectllm.perception.geometry import from_model_frame
from affectllm.perception.render import au_chart_png, draw_overlay, overlay_png

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def synthetic_face(cx=160.0, cy=120.0, scale=60.0, present=("AU12", "AU6")):
    lm = from_model_frame(reference_shape() * scale) + np.array([cx, cy, 0.0])
    aus = [AUObs(au, 2.5 if au in present else 0.1, au in present) for au in AU_NAMES]
    box = (lm[:, 0].min(), lm[:, 1].min(), lm[:, 0].max(), lm[:, 1].max())
    return FaceObs(box=box, score=0.9, aus=aus, landmarks=lm.astype(np.float32))


def test_overlay_png_marks_faces_and_regions():
    img = np.full((240, 320, 3), 200, np.uint8)
    faces = [synthetic_face(), synthetic_face(cx=270, cy=60, scale=20, present=())]
    data = overlay_png(img, faces)
    assert data.startswith(PNG_MAGIC)
    out = np.asarray(Image.open(io.BytesIO(data)))
    assert out.shape == img.shape
    assert (out != 200).any(axis=2).mean() > 0.02  # something was drawn
    assert (img == 200).all()  # the input is untouched
    # An AU region is tinted only where the AU is present.
    no_au = draw_overlay(img, [synthetic_face(present=())])
    with_au = draw_overlay(img, [synthetic_face(present=("AU12",))])
    assert (no_au != with_au).any(axis=2).sum() > 30


def test_overlay_downscales_large_images_and_handles_no_faces():
    img = np.zeros((1500, 3000, 3), np.uint8)
    out = np.asarray(Image.open(io.BytesIO(overlay_png(img, [], max_side=600))))
    assert out.shape == (300, 600, 3)


def test_au_chart_png_is_a_valid_picture():
    data = au_chart_png(synthetic_face())
    assert data.startswith(PNG_MAGIC)
    im = Image.open(io.BytesIO(data))
    assert im.size[0] > 300 and im.size[1] > 300
    px = np.asarray(im.convert("RGB"))
    assert len(np.unique(px.reshape(-1, 3), axis=0)) > 10  # bars, text, not a blank canvas


def test_png_writers_write_atomically_when_given_a_path(tmp_path):
    face = synthetic_face()
    data = au_chart_png(face, path=tmp_path / "out" / "chart.png")
    assert (tmp_path / "out" / "chart.png").read_bytes() == data
    img = np.full((240, 320, 3), 200, np.uint8)
    data = overlay_png(img, [face], path=tmp_path / "overlay.png")
    assert (tmp_path / "overlay.png").read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "overlay.png"]  # no temp files left
