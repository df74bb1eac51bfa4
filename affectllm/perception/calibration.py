"""Population neutral statistics for the AU estimator: the rest-shape reference.

``affectllm/assets/face_calibration.json`` holds numbers derived from the *neutral* photos
of the Face Research Lab London Set (30 adults, CC BY 4.0; the images are never committed):

- ``reference_shape``: the mean neutral face ``[478 x 3]`` (generalised Procrustes mean,
  frontal, y up, origin between the eye centres, eye centres 1 unit apart), used as the
  rigid model for head pose and as the neutral mesh in tests and renders;
- ``measures``: mean and standard deviation over the neutral faces of every raw AU measure
  (``au.raw_measures``), the rest level and its spread that AU intensities start from.

``scripts/calibrate_au.py`` regenerates the file; this module reads it and holds the
Procrustes-mean routine the script uses. It does not run MediaPipe.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

from affectllm.paths import ASSETS
from affectllm.perception.geometry import RIGID_IDX, eye_centres, similarity_fit, to_model_frame

CALIBRATION_PATH = ASSETS / "face_calibration.json"

# Left/right landmark pairs (subject's right first) whose joining lines define the face's x axis.
_LR_PAIRS = [(33, 263), (133, 362), (61, 291), (234, 454), (127, 356), (70, 300)]


@functools.lru_cache(maxsize=1)
def load_calibration(path: str | None = None) -> dict:
    """The calibration JSON (cached). Raises FileNotFoundError naming the regenerating script."""
    p = Path(path) if path else CALIBRATION_PATH
    if not p.is_file():
        raise FileNotFoundError(f"{p} is missing: run `python scripts/calibrate_au.py` to rebuild it")
    return json.loads(p.read_text())


def reference_shape() -> np.ndarray:
    """Mean neutral face ``[478 x 3]`` in the frontal reference frame (see module doc)."""
    return np.asarray(load_calibration()["reference_shape"], dtype=np.float64)


def measure_stats() -> dict[str, dict[str, float]]:
    """Raw measure name -> {"mean", "sd"} over the neutral calibration faces."""
    return load_calibration()["measures"]


def _normalise(shape: np.ndarray) -> np.ndarray:
    """Centre between the eye centres and scale the eye-centre distance to 1."""
    r, l = eye_centres(shape)
    return (shape - (r + l) / 2) / np.linalg.norm(l - r)


def procrustes_mean(landmarks_px: list[np.ndarray], iters: int = 10) -> np.ndarray:
    """Generalised Procrustes mean of pixel landmark sets ``[478 x 3]`` (rigid points only).

    The result is turned to the faces' average orientation in the camera (so "frontal" means
    the average pose of people facing the camera for a passport-style photo), then rolled and
    yawed so that the left/right landmark pairs lie along x (symmetric face), centred between
    the eyes and scaled to unit eye-centre distance.
    """
    shapes = [to_model_frame(lm) for lm in landmarks_px]
    mean = _normalise(shapes[0])
    for _ in range(iters):
        aligned = []
        for sh in shapes:
            s, R, t = similarity_fit(sh[RIGID_IDX], mean[RIGID_IDX])
            aligned.append(s * sh @ R.T + t)
        new = _normalise(np.mean(aligned, 0))
        if np.abs(new - mean).max() < 1e-7:
            mean = new
            break
        mean = new
    # Average camera orientation of the faces relative to the mean (projected to a rotation).
    rots = [similarity_fit(mean[RIGID_IDX], sh[RIGID_IDX])[1] for sh in shapes]
    U, _, Vt = np.linalg.svd(np.mean(rots, 0))
    mean = mean @ (U @ Vt).T
    # Symmetry: x along the mean right->left pair direction, y as close to camera-up as allowed.
    x = np.mean([mean[b] - mean[a] for a, b in _LR_PAIRS], 0)
    x /= np.linalg.norm(x)
    y = np.array([0.0, 1.0, 0.0]) - x[1] * x
    y /= np.linalg.norm(y)
    z = np.cross(x, y)
    mean = mean @ np.stack([x, y, z], 1)
    return _normalise(mean)
