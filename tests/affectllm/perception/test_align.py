"""Eye-aligned crops, the occlusion flag and box helpers on synthetic landmarks (no MediaPipe, no weights)."""

import numpy as np
import pytest

from affectllm.perception.align import CROP_SIDE, FER_EYE_Y, FER_IOD, eye_aligned_crop
from affectllm.perception.calibration import reference_shape
from affectllm.perception.face import face_flags, outside_fraction
from affectllm.perception.geometry import Frontal, from_model_frame, rotation_matrix
from affectllm.perception.mesh import Detection, iou, nms


def pixels(roll=0.0, scale=80.0, offset=(200.0, 160.0)):
    pts = reference_shape() @ rotation_matrix(0, 0, roll).T * scale
    return from_model_frame(pts) + np.array([*offset, 0.0])


def eye_centres_px(lm):
    return (lm[33, :2] + lm[133, :2]) / 2, (lm[263, :2] + lm[362, :2]) / 2


@pytest.mark.parametrize("roll", [0.0, 25.0, -40.0])
def test_crop_puts_eyes_level_at_fixed_places(roll):
    import cv2

    lm = pixels(roll=roll)
    img = np.zeros((360, 420, 3), np.uint8)
    r, l = eye_centres_px(lm)
    cv2.circle(img, tuple(int(round(v)) for v in r), 4, (255, 255, 255), -1)  # right eye: white
    cv2.circle(img, tuple(int(round(v)) for v in l), 4, (0, 0, 255), -1)  # left eye: blue (darker grey)
    crop = eye_aligned_crop(img, lm)
    assert crop.shape == (CROP_SIDE, CROP_SIDE) and crop.dtype == np.uint8

    def centroid(mask):
        ys, xs = np.nonzero(mask)
        return np.array([xs.mean(), ys.mean()])

    cr = centroid(crop > 200)
    cl = centroid((crop > 10) & (crop < 60))
    exp_y = FER_EYE_Y * CROP_SIDE
    half = FER_IOD * CROP_SIDE / 2
    assert cr == pytest.approx([CROP_SIDE / 2 - half, exp_y], abs=1.5)  # image-left eye on the left
    assert cl == pytest.approx([CROP_SIDE / 2 + half, exp_y], abs=1.5)


def test_crop_rejects_degenerate_eyes():
    lm = np.zeros((478, 3))
    with pytest.raises(ValueError):
        eye_aligned_crop(np.zeros((10, 10, 3), np.uint8), lm)


def test_outside_fraction_and_occluded_flag():
    lm = pixels(offset=(200.0, 160.0))
    assert outside_fraction(lm, (360, 420, 3)) == 0.0
    cut = outside_fraction(lm, (360, 200, 3))  # image ends at the face's midline
    assert 0.3 < cut < 0.7
    frontal = Frontal(points=np.zeros((478, 3)), pose={"yaw": 0.0, "pitch": 0.0, "roll": 0.0},
                      scale=80.0, residual=0.02)
    box = (100.0, 100.0, 300.0, 300.0)
    assert face_flags(box, 0.9, frontal, 0.0) == []
    assert face_flags(box, 0.9, frontal, cut) == ["occluded"]
    flags = face_flags((0, 0, 20, 20), 0.2, Frontal(frontal.points, {"yaw": 60.0, "pitch": 0.0, "roll": 0.0},
                                                    10.0, 0.02))
    assert flags == ["small_face", "profile", "low_confidence"]


def test_iou_and_nms():
    a, b = (0, 0, 10, 10), (5, 0, 15, 10)
    assert iou(a, a) == 1.0 and iou(a, (20, 20, 30, 30)) == 0.0
    assert iou(a, b) == pytest.approx(50 / 150)
    kept = nms([Detection(a, 0.5), Detection((1, 0, 11, 10), 0.9), Detection((20, 20, 30, 30), 0.4)])
    assert [d.score for d in kept] == [0.9, 0.4]
