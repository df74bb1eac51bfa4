"""AU rules on synthetic meshes made from the calibrated neutral reference (no MediaPipe, no photos)."""

import numpy as np
import pytest

from affectllm.knowledge.facs import AU_NAMES, PRESENCE_THRESHOLD
from affectllm.perception import au
from affectllm.perception.calibration import load_calibration, measure_stats, reference_shape
from affectllm.perception.geometry import from_model_frame, frontalize, rotation_matrix


def to_pixels(shape, scale=120.0, R=None, offset=(320.0, 240.0, 0.0)):
    """A reference-frame shape ``[478 x 3]`` as MediaPipe-like pixel landmarks (y down)."""
    pts = shape @ (R if R is not None else np.eye(3)).T * scale + np.array([0, 0, 0.0])
    px = from_model_frame(pts)
    return px + np.array(offset)


def intensities(lm_px, baseline=None):
    fr = frontalize(lm_px, reference_shape())
    return au.au_intensities(au.raw_measures(fr.points), measure_stats(), baseline)


def smile(shape, amount=0.12):
    """Lip corners (and their neighbours) up and out, as AU12 does."""
    s = shape.copy()
    for idx, side in ((61, -1), (291, +1)):
        d = np.linalg.norm(s[:, :2] - shape[idx, :2], axis=1)
        w = np.clip(1 - d / 0.25, 0, 1)[:, None]  # smooth falloff around the corner
        s += w * np.array([side * amount * 0.6, amount, -0.02])
    return s


def open_jaw(shape, amount=0.25):
    """Everything below the lip line moves down (mandible rotation approximated by a shift)."""
    s = shape.copy()
    cut = (shape[13, 1] + shape[14, 1]) / 2
    below = shape[:, 1] < cut
    below[au.MOUTH_CORNER[0]] = below[au.MOUTH_CORNER[1]] = False
    s[below, 1] -= amount
    return s


def test_calibration_asset_is_complete():
    cal = load_calibration()
    ref = reference_shape()
    assert ref.shape == (478, 3)
    assert set(au.MEASURE_NAMES) <= set(cal["measures"])
    assert all(v["sd"] > 0 for v in cal["measures"].values())
    # reference frame: eye centres 1 apart, origin between them
    r, l = (ref[33] + ref[133]) / 2, (ref[263] + ref[362]) / 2
    assert np.linalg.norm(l - r) == pytest.approx(1.0, abs=1e-3)
    assert np.abs((l + r) / 2).max() < 1e-3


def test_reference_shape_is_at_rest():
    I = intensities(to_pixels(reference_shape()))
    assert set(I) == set(AU_NAMES)
    assert all(0.0 <= v <= 5.0 for v in I.values())
    assert not [a for a, v in I.items() if v >= PRESENCE_THRESHOLD]


def test_lip_corners_up_raise_au12():
    ref = reference_shape()
    rest = intensities(to_pixels(ref))["AU12"]
    small = intensities(to_pixels(smile(ref, 0.05)))["AU12"]
    big = intensities(to_pixels(smile(ref, 0.12)))["AU12"]
    assert rest < small < big
    assert big >= 2.0
    down = intensities(to_pixels(smile(ref, -0.08)))
    assert down["AU12"] == 0.0 and down["AU15"] >= PRESENCE_THRESHOLD


def test_rotated_and_scaled_face_gives_similar_aus():
    ref = smile(reference_shape(), 0.1)
    base = intensities(to_pixels(ref))
    R = rotation_matrix(yaw=25, pitch=-10, roll=15)
    turned = intensities(to_pixels(ref, scale=45.0, R=R, offset=(100, 400, 30)))
    for a in AU_NAMES:
        assert turned[a] == pytest.approx(base[a], abs=0.3), a
    fr = frontalize(to_pixels(ref, R=R), reference_shape())
    assert fr.pose["yaw"] == pytest.approx(25, abs=2)
    assert fr.pose["pitch"] == pytest.approx(-10, abs=2)
    assert fr.pose["roll"] == pytest.approx(15, abs=2)


def test_jaw_open_gives_au25_au26():
    ref = reference_shape()
    I = intensities(to_pixels(open_jaw(ref, 0.25)))
    assert I["AU25"] >= 2.0 and I["AU26"] >= 1.0
    slight = intensities(to_pixels(open_jaw(ref, 0.05)))
    assert slight["AU26"] < I["AU26"]


def test_closed_eyes_give_au43_and_personal_baseline_shifts_rest():
    ref = reference_shape().copy()
    for up, lo in ((159, 145), (386, 374), (158, 153), (160, 144), (385, 380), (387, 373)):
        mid = (ref[up, 1] + ref[lo, 1]) / 2
        ref[up, 1] = ref[lo, 1] = mid
    assert intensities(to_pixels(ref))["AU43"] >= 4.0
    # a person whose rest brow sits high: the same mesh is no AU1 once their baseline is known
    shape = reference_shape().copy()
    shape[list(au.BROW_INNER + au.BROW_INNER2), 1] += 0.12
    lm = to_pixels(shape)
    assert intensities(lm)["AU1"] >= PRESENCE_THRESHOLD
    own = au.raw_measures(frontalize(lm, reference_shape()).points)
    assert intensities(lm, baseline=own)["AU1"] == 0.0


def test_to_au_obs_applies_threshold_in_order():
    obs = au.to_au_obs({"AU12": 2.0, "AU6": 0.4})
    assert [o.au for o in obs] == list(AU_NAMES)
    by = {o.au: o for o in obs}
    assert by["AU12"].present and not by["AU6"].present and by["AU6"].intensity == 0.4
