"""Face perception for one RGB image: boxes, head pose, 478 landmarks, AUs and expression.

    faces = FacePerceiver().perceive(rgb)            # list[FaceObs], largest first
    r = FacePerceiver().perceive_landmarks(lm_px)     # AUs of a mesh you already have (video)

Per face: MediaPipe detection + mesh (``mesh.FaceMesher``, graphs kept alive across calls),
pose and frontal landmarks (``geometry.frontalize`` against the calibrated neutral reference),
AU intensities from landmark geometry (``au``), and the FER2013 mini-Xception's 7 expression
probabilities plus its 128-d penultimate embedding, computed on a grey crop rotated so that the
eyes are level and scaled by the inter-ocular distance (``align``).

A detection whose mesh lands on a neighbouring face (a loose box around a small face) is
re-boxed from its landmarks, and meshes of the same face are merged, so each face is listed once.

Flags: ``small_face`` (box side < :data:`SMALL_FACE_PX`), ``profile`` (|yaw| >
:data:`PROFILE_YAW`), ``low_confidence`` (detector score < :data:`LOW_SCORE` or a rigid-fit
residual > :data:`HIGH_RESIDUAL`, i.e. the mesh does not look like a face seen whole, or
|pitch| > 35 degrees, where vertical measures are distorted), ``occluded`` (more than
:data:`OCCLUDED_FRAC` of the landmarks fall outside the image: the face is cut by the frame).

Not here: video tracking and personal baselines (``video``), drawing (``render``), emotion
interpretation (the LLM's job).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from affectllm.errors import InputError
from affectllm.perception.observations import FaceObs
from affectllm.perception import au as au_rules
from affectllm.perception.align import Expression, eye_aligned_crop  # noqa: F401 (re-exported)
from affectllm.perception.calibration import measure_stats, reference_shape
from affectllm.perception.geometry import Frontal, frontalize
from affectllm.perception.mesh import det_like_box, iou, landmark_box

SMALL_FACE_PX = 48
PROFILE_YAW = 35.0
LOW_SCORE = 0.5
HIGH_RESIDUAL = 0.15  # reference units; frontal faces of the London set fit within ~0.03
OCCLUDED_FRAC = 0.10  # landmarks outside the image above this fraction: "occluded"


@dataclass
class LandmarkAUs:
    """AUs of one mesh: ``intensities`` AU -> 0-5, raw ``measures``, and the ``frontal`` fit."""

    intensities: dict[str, float]
    measures: dict[str, float]
    frontal: Frontal

    @property
    def aus(self):
        return au_rules.to_au_obs(self.intensities)


class FacePerceiver:
    """Faces of an image as :class:`FaceObs`. One instance per thread (MediaPipe graphs are not thread-safe)."""

    def __init__(self, min_score: float = 0.3, max_faces: int = 16):
        from affectllm.perception.mesh import FaceMesher

        self.mesher = FaceMesher(min_score=min_score, max_faces=max_faces)
        self.reference = reference_shape()
        self.stats = measure_stats()
        self.expressions = Expression()  # FER weights load on first use

    @property
    def fer(self):
        """The FER2013 network (``affectllm.weights.FerNet``)."""
        return self.expressions.net

    # ---- AUs from a mesh -------------------------------------------------------------------
    def perceive_landmarks(self, lm_px: np.ndarray, baseline: dict[str, float] | None = None) -> LandmarkAUs:
        """AU intensities of landmarks ``[478 x 3]`` (pixels). ``baseline``: this person's rest measures."""
        fr = frontalize(np.asarray(lm_px, dtype=np.float64), self.reference)
        m = au_rules.raw_measures(fr.points)
        return LandmarkAUs(au_rules.au_intensities(m, self.stats, baseline), m, fr)

    # ---- expression ------------------------------------------------------------------------
    def expression(self, image_rgb: np.ndarray, lms: list[np.ndarray]):
        """(probabilities [n x 7], embeddings [n x 128]) for eye-aligned crops of each mesh."""
        return self.expressions.run([eye_aligned_crop(image_rgb, lm) for lm in lms])

    # ---- whole image -----------------------------------------------------------------------
    def perceive(self, image_rgb: np.ndarray, item: str = "image") -> list[FaceObs]:
        """All faces in an RGB uint8 image ``[h x w x 3]``, largest first; [] when none."""
        img = _check_image(image_rgb, item)
        found = []  # (box, score, landmarks, mesh agrees with its box)
        for det in self.mesher.detect(img):
            lm = self.mesher.mesh(img, det.box)
            if lm is not None:
                agrees = iou(det_like_box(lm), det.box) >= 0.3
                # A mesh far from its box belongs to a neighbouring face (a loose detection
                # around a small face): describe the face the mesh found, not the box.
                found.append((det.box if agrees else det_like_box(lm), det.score, lm, agrees))
        found = _dedupe(found)
        if not found:  # BlazeFace missed: the mesh's own detector sometimes finds the face
            found = [(landmark_box(lm), 0.0, lm, True) for lm in self.mesher.mesh_whole(img)]
        if not found:
            return []
        probs, emb = self.expression(img, [f[2] for f in found])
        faces = []
        for (box, score, lm, _), p, e in zip(found, probs, emb):
            r = self.perceive_landmarks(lm)
            faces.append(FaceObs(
                box=tuple(float(v) for v in box), score=float(score),
                pose={k: round(v, 2) for k, v in r.frontal.pose.items()}, aus=r.aus,
                expression=self.expressions.as_dict(p),
                flags=face_flags(box, score, r.frontal, outside_fraction(lm, img.shape)),
                landmarks=lm.astype(np.float32), embedding=e.clone()))
        faces.sort(key=lambda f: -(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
        return faces

    def close(self) -> None:
        self.mesher.close()


def _dedupe(found: list[tuple]) -> list[tuple]:
    """One entry per meshed face: meshes whose landmark boxes overlap (IoU > 0.5) are one face;
    keep the one whose detection box agrees with its mesh, then the higher detector score."""
    kept: list[tuple] = []
    for f in sorted(found, key=lambda f: (not f[3], -f[1])):
        if all(iou(landmark_box(f[2]), landmark_box(k[2])) <= 0.5 for k in kept):
            kept.append(f)
    return kept


def outside_fraction(lm_px: np.ndarray, shape: tuple) -> float:
    """Fraction of landmarks ``[478 x 2+]`` that fall outside an image of ``shape`` (h, w, ...)."""
    h, w = shape[:2]
    out = (lm_px[:, 0] < 0) | (lm_px[:, 0] >= w) | (lm_px[:, 1] < 0) | (lm_px[:, 1] >= h)
    return float(out.mean())


def face_flags(box, score: float, frontal: Frontal, outside: float = 0.0) -> list[str]:
    """Caveats of one face (see module doc for the thresholds).

    ``outside``: fraction of the landmarks beyond the image border (:func:`outside_fraction`).
    """
    flags = []
    if min(box[2] - box[0], box[3] - box[1]) < SMALL_FACE_PX:
        flags.append("small_face")
    if abs(frontal.pose["yaw"]) > PROFILE_YAW:
        flags.append("profile")
    # Strong pitch: weak-perspective frontalisation distorts vertical measures (e.g. AU10).
    if score < LOW_SCORE or frontal.residual > HIGH_RESIDUAL or abs(frontal.pose["pitch"]) > PROFILE_YAW:
        flags.append("low_confidence")
    # Part of the face is cut off by the frame: the mesh guesses the unseen part. (Hands,
    # masks or hair over the face are not detected: MediaPipe always returns a whole mesh.)
    if outside > OCCLUDED_FRAC:
        flags.append("occluded")
    return flags


def _check_image(image, item: str) -> np.ndarray:
    a = np.asarray(image)
    if a.ndim == 2:
        a = np.stack([a] * 3, -1)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or min(a.shape[:2]) < 8:
        raise InputError(item, f"expected an RGB image [h x w x 3], got shape {a.shape}")
    if a.shape[2] == 4:
        a = a[..., :3]
    if a.dtype != np.uint8:
        if np.issubdtype(a.dtype, np.floating) and a.size and a.max() <= 1.0:
            a = a * 255.0
        a = np.clip(a, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(a)
