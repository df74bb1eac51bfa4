"""Every frame of a video through the face pipeline, streamed: one table row per face per frame.

    for rows in FrameAnalyzer(max_faces=4).rows("talk.mp4"):   # one list per analysed frame
        ...                                                      # dicts keyed by frame_table.COLUMNS

Three stages run in their own threads so that two cores are both busy (PyAV, MediaPipe and
torch release the GIL in their native code):

1. **decode** (:func:`decode`): PyAV, frame by frame; every frame, or ``fps`` per second;
   downscaled to :data:`MAX_SIDE`; frames before ``start`` are decoded but not converted.
2. **mesh**: MediaPipe's face mesh in video mode (``static_image_mode=False``) on the whole
   frame, up to ``max_faces`` faces: it follows faces from the previous frame's landmarks and
   runs its own detector only while it holds fewer than ``max_faces`` faces. Per face: the
   frontalised AU measures (``au.raw_measures``) and a 64x64 eye-aligned grey crop (the FER
   network's input size, so no resize).
3. **expression, ids and rows** (the caller's thread): crops go through the FER network
   :data:`FER_BATCH` at a time; faces get stable ids (``tracking.FaceTracks``: position +
   the FER embedding); AU intensities are read against a *running* personal baseline per face
   (``au.personal_baseline`` over that face's frames so far, kept to :data:`BASELINE_KEEP`
   evenly spaced frames; the population rest until :data:`MIN_BASELINE_FRAMES`).

Queues between the stages are bounded, so memory does not grow with the video's length.
Frames without a face give a ``success = 0`` row for each face still remembered
(``tracking.TTL_S``), or one row with ``face_id = -1`` when there is none.

Not here: writing or resuming the table (``frame_table``), the summary of a clip with one
face that the explainer reads (``video``), plots (``timeline``).
"""

from __future__ import annotations

import math
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from affectllm.errors import InputError
from affectllm.knowledge.facs import PRESENCE_THRESHOLD
from affectllm.perception import au as au_rules
from affectllm.perception.au_score import au_scores
from affectllm.perception.frame_table import AU_COLS, BOX_COLS, EXPR_COLS

MAX_SIDE = 960  # px: frames are downscaled to this longest side before the mesh
FER_BATCH = 32  # crops per expression forward pass (per-call overhead dominates the tiny net)
MIN_BASELINE_FRAMES = 8  # a face's own rest replaces the population rest from this many frames
BASELINE_KEEP = 512  # frames kept per face for its baseline (evenly thinned as the video goes on)
BASELINE_EVERY = 16  # recompute a face's baseline every this many of its frames
CROP_SIDE = 64  # FER input size
_END = object()


def open_video(path: Path):
    """An open PyAV container with a video stream; ``InputError`` naming the file otherwise."""
    import av

    try:
        container = av.open(str(path))
    except Exception as e:  # av.error.*: not a media container
        raise InputError(path, f"unreadable video ({e.__class__.__name__}: {str(e)[:160]})") from e
    if not container.streams.video:
        container.close()
        raise InputError(path, "no video stream")
    return container


def decode(path: str | Path, fps: float | None = None, start: int = 0,
           max_side: int = MAX_SIDE) -> Iterator[tuple[int, float, np.ndarray, float]]:
    """Yield (frame number from 1, t seconds, RGB uint8 [h x w x 3], scale to original pixels).

    ``fps``: sample about this many frames per second (None: every frame). ``start``: skip
    frames numbered below it (they are decoded, which the codec needs, but not converted).
    Raises ``InputError`` naming the file when it cannot be opened or decoded.
    """
    p = Path(path)
    container = open_video(p)
    try:
        stream = container.streams.video[0]
        # No codec threads: this generator already runs in its own thread, and on two cores
        # ffmpeg's frame threads cost more CPU (measured 0.93 vs 0.67 CPU-s for the 472-frame clip).
        rate = float(stream.average_rate or 25)
        next_t = 0.0
        for i, frame in enumerate(container.decode(stream)):
            t = float(frame.time) if frame.time is not None else i / rate
            if fps is not None:
                if t + 1e-6 < next_t:
                    continue
                next_t = max(next_t + 1.0 / fps, t + 0.5 / fps)
            if i + 1 < start:
                continue
            w, h = frame.width, frame.height
            scale = min(1.0, max_side / max(w, h))
            if scale < 1.0:
                rgb = frame.to_ndarray(format="rgb24", width=round(w * scale) // 2 * 2,
                                       height=round(h * scale) // 2 * 2)
                scale = rgb.shape[1] / w
            else:
                rgb = frame.to_ndarray(format="rgb24")
            yield i + 1, t, rgb, scale
    except InputError:
        raise
    except Exception as e:  # corrupt packets after a valid header
        raise InputError(p, f"video decoding failed ({e.__class__.__name__}: {str(e)[:160]})") from e
    finally:
        container.close()


def count_frames(path: str | Path) -> int | None:
    """Frames in the video stream from its header (None when the container does not say)."""
    container = open_video(Path(path))
    try:
        s = container.streams.video[0]
        if s.frames:
            return int(s.frames)
        if s.duration is not None and s.time_base is not None and s.average_rate:
            return int(math.ceil(float(s.duration * s.time_base) * float(s.average_rate)))
        return None
    finally:
        container.close()


@dataclass
class Face:
    box: tuple  # (x0, y0, x1, y1) original pixels
    measures: dict
    pose: dict  # yaw/pitch/roll degrees
    confidence: float
    crop: np.ndarray  # [64 x 64] uint8 grey


@dataclass
class Frame:
    n: int
    t: float
    faces: list


def _frozen_fer(net):
    """``x [b x 1 x 64 x 64] -> (softmax probs [b x 7], embedding [b x 128])`` as one frozen
    TorchScript module (eager fallback when tracing is unavailable)."""
    import warnings

    import torch

    class _Both(torch.nn.Module):
        def __init__(self, n):
            super().__init__()
            self.n = n

        def forward(self, x):
            f = self.n.feature_map(x)
            return self.n.classifier(f).mean(dim=(2, 3)).softmax(-1), f.mean(dim=(2, 3))

    both = _Both(net).eval()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # trace/freeze deprecation and shape-constant notices
            return torch.jit.freeze(torch.jit.trace(both, torch.zeros(2, 1, CROP_SIDE, CROP_SIDE)))
    except Exception:  # noqa: BLE001 - a torch build without TorchScript: same numbers, slower
        return both


def _put(q: queue.Queue, item, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


class FrameAnalyzer:
    """Per-frame rows for a video (module doc). ``face``: a ``FacePerceiver`` for its reference
    shape, neutral statistics and FER network (None builds one). One analyzer runs one video at a time."""

    def __init__(self, face=None, max_faces: int = 4, fps: float | None = None):
        if max_faces < 1 or (fps is not None and fps <= 0):
            raise ValueError("max_faces and fps must be positive")
        if face is None:
            from affectllm.perception.face import FacePerceiver

            face = FacePerceiver()
        self.face, self.max_faces, self.fps = face, max_faces, fps
        self._fer = None

    # ---- expression ------------------------------------------------------------------------------
    def expression(self, crops: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities [n x 7], embeddings [n x 128]) of 64x64 grey crops; equal to
        ``align.Expression.run`` (same preprocessing) to float rounding, about a quarter faster:
        the network is traced and frozen once, which folds each BatchNorm into its convolution."""
        import torch

        if not crops:
            return np.zeros((0, len(self.face.expressions.labels))), np.zeros((0, 128))
        if self._fer is None:
            self._fer = _frozen_fer(self.face.expressions.net)
        x = torch.from_numpy((np.stack(crops).astype(np.float32) / 255.0 - 0.5) * 2.0)[:, None]
        probs, embs = [], []
        with torch.no_grad():
            for i in range(0, len(x), FER_BATCH):
                p, e = self._fer(x[i:i + FER_BATCH])
                probs.append(p)
                embs.append(e)
        return torch.cat(probs).numpy(), torch.cat(embs).numpy()

    # ---- stage 2: landmarks and measures -----------------------------------------------------
    def open_graph(self):
        """MediaPipe's face mesh in video mode for up to ``max_faces`` faces (one per thread)."""
        import mediapipe as mp

        return mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=self.max_faces,
                                               refine_landmarks=True, min_detection_confidence=0.5,
                                               min_tracking_confidence=0.5)

    def mesh_faces(self, graph, rgb: np.ndarray, scale: float = 1.0) -> list[Face]:
        """Faces of one frame ``[h x w x 3]`` uint8 through ``graph`` (:meth:`open_graph`).

        ``scale``: frame pixels per original pixel (boxes are returned in original pixels).
        """
        from affectllm.perception.align import eye_aligned_crop
        from affectllm.perception.face import HIGH_RESIDUAL, outside_fraction
        from affectllm.perception.geometry import frontalize
        from affectllm.perception.mesh import det_like_box

        h, w = rgb.shape[:2]
        res = graph.process(rgb)
        faces = []
        for fl in res.multi_face_landmarks or []:
            lm = np.array([(p.x * w, p.y * h, p.z * w) for p in fl.landmark], dtype=np.float64)
            try:
                crop = eye_aligned_crop(rgb, lm, side=CROP_SIDE)
            except ValueError:  # degenerate eyes: not a usable face
                continue
            fr = frontalize(lm, self.face.reference)
            conf = max(0.0, 1.0 - fr.residual / HIGH_RESIDUAL) * (1.0 - outside_fraction(lm, rgb.shape))
            faces.append(Face(tuple(v / scale for v in det_like_box(lm)), au_rules.raw_measures(fr.points),
                               fr.pose, conf, crop))
        return faces

    def _mesh_stage(self, frames_in: queue.Queue, out: queue.Queue, stop: threading.Event) -> None:
        graph = self.open_graph()
        try:
            while not stop.is_set():
                item = frames_in.get()
                if item is _END or isinstance(item, BaseException):
                    _put(out, item, stop)
                    return
                n, t, rgb, scale = item
                if not _put(out, Frame(n, t, self.mesh_faces(graph, rgb, scale)), stop):
                    return
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread, raised there
            _put(out, e, stop)
        finally:
            graph.close()

    # ---- stage 3: expression, ids, baselines, rows ----------------------------------------------
    def rows(self, path: str | Path, start: int = 0, resume_rows: list[dict] | None = None,
             max_face_id: int = -1) -> Iterator[list[dict]]:
        """Rows per analysed frame, in order (see module doc).

        ``start``: first frame number to analyse (resume); ``resume_rows``/``max_face_id``: the
        rows of the frame before it and the largest id so far, so face ids continue.
        """
        from affectllm.perception.tracking import FaceTracks

        p = Path(path)
        if not p.is_file():
            raise InputError(p, "file not found")
        tracks = FaceTracks()
        if resume_rows:
            tracks.restore(resume_rows, float(resume_rows[0]["timestamp"]), max_face_id)
        else:
            tracks.next_id = max_face_id + 1
        stop = threading.Event()
        q_frames: queue.Queue = queue.Queue(maxsize=16)
        q_meshed: queue.Queue = queue.Queue(maxsize=2 * FER_BATCH)

        def decode_stage():
            try:
                for item in decode(p, self.fps, start):
                    if not _put(q_frames, item, stop):
                        return
                _put(q_frames, _END, stop)
            except BaseException as e:  # noqa: BLE001
                _put(q_frames, e, stop)

        threads = [threading.Thread(target=decode_stage, daemon=True, name="frames-decode"),
                   threading.Thread(target=self._mesh_stage, args=(q_frames, q_meshed, stop), daemon=True,
                                    name="frames-mesh")]
        for th in threads:
            th.start()
        try:
            pending: list[Frame] = []
            n_crops, done = 0, False
            while not done:
                item = q_meshed.get()
                if isinstance(item, BaseException):
                    raise item
                if item is _END:
                    done = True
                else:
                    pending.append(item)
                    n_crops += len(item.faces)
                if pending and (done or n_crops >= FER_BATCH or len(pending) >= 4 * FER_BATCH):
                    yield from self.finish(pending, tracks)
                    pending, n_crops = [], 0
        finally:
            stop.set()
            for q in (q_frames, q_meshed):  # unblock producers waiting on a full queue
                while not q.empty():
                    q.get_nowait()
            for th in threads:
                th.join(timeout=5)

    def finish(self, frames: list[Frame], tracks) -> Iterator[list[dict]]:
        """Rows of meshed frames, in order: expression (one batched pass), ids from ``tracks``
        (``tracking.FaceTracks``, updated), per-face baselines. Used by :meth:`rows` and live mode."""
        crops = [f.crop for fr in frames for f in fr.faces]
        probs, embs = self.expression(crops)
        k = 0
        for fr in frames:
            nf = len(fr.faces)
            ids = tracks.assign(fr.t, [f.box for f in fr.faces], list(embs[k:k + nf]))
            rows = [self._row(fr, f, fid, probs[k + j], tracks.tracks[fid])
                    for j, (f, fid) in enumerate(zip(fr.faces, ids))]
            k += nf
            rows += [{"frame": fr.n, "timestamp": round(fr.t, 4), "face_id": tr.face_id, "confidence": 0.0,
                      "success": 0, **{f"{a}_c": 0 for a in AU_COLS}} for tr in tracks.missing(ids)]
            if not rows:
                rows = [{"frame": fr.n, "timestamp": round(fr.t, 4), "face_id": -1, "confidence": 0.0,
                         "success": 0, **{f"{a}_c": 0 for a in AU_COLS}}]
            yield sorted(rows, key=lambda r: r["face_id"])

    def _baseline(self, tr, measures: dict) -> dict | None:
        st = tr.extra.setdefault("baseline", {"rows": [], "stride": 1, "count": 0, "rest": None})
        st["count"] += 1
        if st["count"] % st["stride"] == 0:
            st["rows"].append(measures)
            if len(st["rows"]) > BASELINE_KEEP:  # thin evenly: memory stays bounded on long videos
                st["rows"], st["stride"] = st["rows"][::2], st["stride"] * 2
        n = len(st["rows"])
        if n >= MIN_BASELINE_FRAMES and (st["rest"] is None or st["count"] % BASELINE_EVERY == 0):
            st["rest"] = au_rules.personal_baseline(st["rows"], self.face.stats)
        return st["rest"]

    def _row(self, fr: Frame, f: Face, fid: int, probs: np.ndarray, tr) -> dict:
        rest = self._baseline(tr, f.measures)
        inten = au_rules.au_intensities(f.measures, self.face.stats, rest)
        score = au_scores(f.measures, self.face.stats, rest)
        row = {"frame": fr.n, "timestamp": round(fr.t, 4), "face_id": fid, "confidence": round(f.confidence, 4),
               "success": 1, **dict(zip(BOX_COLS, f.box)),
               # OpenFace's camera frame is ours turned 180 degrees about x (y down, z away): the
               # x angle keeps its sign, y and z flip; ours is pitch-up positive, hence the minus.
               "pose_Rx": math.radians(-f.pose["pitch"]), "pose_Ry": math.radians(-f.pose["yaw"]),
               "pose_Rz": math.radians(-f.pose["roll"])}
        for au, col in zip(au_rules.AU_ORDER, AU_COLS):
            row[f"{col}_r"] = inten[au]
            row[f"{col}_c"] = int(inten[au] >= PRESENCE_THRESHOLD)
            row[f"{col}_s"] = score[au]
        row.update(zip(EXPR_COLS, (float(x) for x in probs)))
        return row
