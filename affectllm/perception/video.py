"""Facial Action Units over a video: sampled frames, one tracked face, a personal neutral baseline.

    r = perceive_video("clip.mp4", fps=5.0, max_frames=120)
    r.video       VideoObs: fps, n_frames, duration_s, au_summary {AU: peak, mean, onset_s, apex_s}, has_audio,
                  timeline (the frames below as compact series), face_frame_s (the apex frame's time)
    r.main_face   FaceObs at the apex frame (AUs relative to the person's own rest), or None
    r.audio       [n] float32 mono 16 kHz (``affectllm.io.load_audio``) when there is an audio stream
    r.frames      per analysed frame: {"t": seconds, "face": bool, "aus": {AU: intensity}}, and
                  when a face was found also "expression" {label: p}, "pose" and "box" (pixels)

How: PyAV decodes the stream frame by frame (frames are never all held: a frame is converted,
analysed and dropped, so memory stays flat whatever the length); frames are sampled at
``fps`` and downscaled to :data:`MAX_SIDE`. ``FaceMesher.track`` follows the main face
(largest at first, then the box overlapping the previous one) with MediaPipe's tracking
mesh, running the detectors only to find or re-find it. Each frame's raw AU measures
are kept; after the last frame the person's rest (``au.personal_baseline``: per measure the
10th percentile on the inactive side, clamped near the population neutral) replaces the
population mean, which removes a person's resting shape (a low brow, a wide mouth) from
every frame. With fewer than :data:`MIN_BASELINE_FRAMES` face frames the population rest is
kept. Every face frame's eye-aligned crop goes through the expression classifier (in
batches); the apex is the frame of largest summed AU intensity, and ``main_face`` carries
that frame's expression and embedding.

Not here: speech analysis of the audio track (``perception.audio``), several people at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from affectllm.errors import InputError
from affectllm.knowledge.facs import PRESENCE_THRESHOLD
from affectllm.perception.observations import FaceObs, VideoObs
from affectllm.perception import au as au_rules
from affectllm.perception.frames import open_video as _open

MAX_SIDE = 960  # px: frames are downscaled to this longest side before detection
MIN_BASELINE_FRAMES = 8  # fewer face frames than this: population rest, not a personal one
REDETECT_S = 2.0  # seconds between detector runs while the tracker holds the face
FER_BATCH = 32  # eye-aligned crops per expression forward pass


@dataclass
class VideoResult:
    video: VideoObs
    main_face: FaceObs | None = None
    audio: np.ndarray | None = None  # [n] float32, 16 kHz mono
    frames: list[dict] = field(default_factory=list)


@dataclass
class _FaceFrame:
    t: float
    box: tuple
    score: float
    lm: np.ndarray  # [478 x 3] pixels of the original frame
    measures: dict
    frontal: object  # geometry.Frontal: pose and fit residual
    outside: float  # fraction of landmarks outside the frame
    expression: dict = field(default_factory=dict)  # FER label -> probability
    embedding: object = None  # torch.Tensor [128]


def iter_frames(path: str | Path, fps: float = 5.0, max_frames: int = 120, max_side: int = MAX_SIDE):
    """Yield (t seconds, RGB uint8 frame [h x w x 3], scale to original pixels), ~``fps`` per second.

    Streams: only the current frame is in memory. Stops after ``max_frames`` samples. The
    decoder is ``frames.decode`` (the per-frame table's), with its sampling schedule.
    """
    from affectllm.perception.frames import decode

    gen = decode(path, fps=fps, max_side=max_side)
    try:
        for n, (_, t, rgb, scale) in enumerate(gen, 1):
            yield t, rgb, scale
            if n >= max_frames:
                break
    finally:
        gen.close()


def _probe(path: Path) -> tuple[float | None, bool]:
    """(duration seconds or None, has an audio stream)."""
    container = _open(path)
    try:
        dur = None
        s = container.streams.video[0]
        if s.duration is not None and s.time_base is not None:
            dur = float(s.duration * s.time_base)
        elif container.duration is not None:
            dur = container.duration / 1e6
        return dur, bool(container.streams.audio)
    finally:
        container.close()


def summarise_frames(frames: list[dict]) -> dict[str, dict]:
    """AU -> {"peak", "mean", "onset_s", "apex_s"} for AUs that reach presence in some frame.

    Read from values rounded to 3 decimals, as :func:`frames_timeline` keeps them, so the timeline's
    table (``frame_table.video_table``) gives the same onsets and apexes (``timeline.au_events``).
    """
    face_frames = [f for f in frames if f["face"]]
    out = {}
    for au in au_rules.AU_ORDER:
        v = np.round(np.array([f["aus"][au] for f in face_frames], dtype=float), 3)
        if not len(v) or v.max() < PRESENCE_THRESHOLD:
            continue
        i = int(v.argmax())
        onset = next(f["t"] for f, x in zip(face_frames, v) if x >= PRESENCE_THRESHOLD)
        out[au] = {"peak": round(float(v.max()), 3), "mean": round(float(v.mean()), 3),
                   "onset_s": round(float(onset), 3), "apex_s": round(float(face_frames[i]["t"]), 3)}
    return out


def frames_timeline(frames: list[dict], aus) -> dict:
    """The frames as series: {"t": [s], "aus": {AU: [v]}, "expression": {label: [p]}}, None without a face.

    Only ``aus`` (those of the summary: the ones that reach presence) are kept, to stay small.
    """
    def series(get):
        return [None if not f["face"] else round(float(get(f)), 3) for f in frames]

    labels = list(dict.fromkeys(k for f in frames if f["face"] for k in f.get("expression", {})))
    return {"t": [round(float(f["t"]), 3) for f in frames],
            "aus": {au: series(lambda f, au=au: f["aus"][au]) for au in aus},
            "expression": {lab: series(lambda f, lab=lab: f.get("expression", {}).get(lab, 0.0)) for lab in labels}}


def perceive_video(path: str | Path, face=None, fps: float = 5.0, max_frames: int = 120) -> VideoResult:
    """AUs and expression of the main face over a video (see module doc).

    ``face``: a ``FacePerceiver`` to reuse (None builds one; ``False`` skips face analysis and
    only probes duration and audio). ``fps``: frames analysed per second of video (a value
    above the clip's rate analyses every frame); ``max_frames``: stop after this many.
    Raises ``InputError`` (naming the file) for a missing, unreadable or video-less file.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(p, "file not found")
    if fps <= 0 or max_frames < 1:
        raise ValueError("fps and max_frames must be positive")
    duration, has_audio = _probe(p)
    audio = None
    if has_audio:
        from affectllm.io import load_audio

        try:
            audio = load_audio(p)
        except InputError:
            audio = None  # an audio stream without decodable samples: face evidence only
    if face is False:
        times = [t for t, _, _ in iter_frames(p, fps, max_frames, max_side=64)]
        vid = VideoObs(fps=fps, n_frames=len(times), duration_s=duration or (times[-1] if times else 0.0),
                       has_audio=audio is not None)
        return VideoResult(video=vid, audio=audio)
    if face is None:
        from affectllm.perception.face import FacePerceiver

        face = FacePerceiver()
    seen, last_t = _track_faces(p, face, fps, max_frames)
    rows = [ff.measures for _, ff in seen if ff is not None]
    baseline = au_rules.personal_baseline(rows, face.stats) if len(rows) >= MIN_BASELINE_FRAMES else None
    frames, best, best_score, best_t = [], None, -1.0, None
    for t, ff in seen:
        if ff is None:
            frames.append({"t": round(t, 3), "face": False, "aus": {}})
            continue
        aus = au_rules.au_intensities(ff.measures, face.stats, baseline)
        frames.append({"t": round(t, 3), "face": True, "aus": aus, "expression": ff.expression,
                       "pose": {k: round(v, 1) for k, v in ff.frontal.pose.items()},
                       "box": [round(v, 1) for v in ff.box]})
        score = sum(aus.values())
        if score > best_score:
            best, best_score, best_t = (ff, aus), score, round(t, 3)
    summary = summarise_frames(frames)
    video = VideoObs(fps=fps, n_frames=len(seen), duration_s=float(duration if duration else last_t),
                     au_summary=summary, has_audio=audio is not None,
                     timeline=frames_timeline(frames, summary) if frames else {}, face_frame_s=best_t)
    main = None
    if best is not None:
        from affectllm.perception.face import face_flags

        ff, aus = best
        main = FaceObs(box=ff.box, score=ff.score, pose={k: round(v, 2) for k, v in ff.frontal.pose.items()},
                       aus=au_rules.to_au_obs(aus), expression=ff.expression,
                       flags=face_flags(ff.box, ff.score if ff.score > 0 else 1.0, ff.frontal, ff.outside),
                       landmarks=ff.lm.astype(np.float32), embedding=ff.embedding)
    return VideoResult(video=video, main_face=main, audio=audio, frames=frames)


def _track_faces(p: Path, face, fps: float, max_frames: int) -> tuple[list[tuple[float, _FaceFrame | None]], float]:
    """Stream the sampled frames through the tracker: [(t, _FaceFrame or None)], last time.

    Crops wait in a small queue and go through the expression network :data:`FER_BATCH` at a
    time (the per-call overhead of the tiny network is most of its cost); only the crop, not
    the frame, is kept, so memory stays flat.
    """
    from affectllm.perception.align import eye_aligned_crop
    from affectllm.perception.face import outside_fraction

    mesher = face.mesher
    mesher.reset_track()
    seen: list[tuple[float, _FaceFrame | None]] = []
    pending: list[tuple[_FaceFrame, np.ndarray]] = []
    last_t = 0.0
    redetect = max(1, round(REDETECT_S * fps))

    def flush():
        if pending:
            probs, embs = face.expressions.run([c for _, c in pending], batch=FER_BATCH)
            for (ff, _), pr, e in zip(pending, probs, embs):
                ff.expression, ff.embedding = face.expressions.as_dict(pr), e.clone()
            pending.clear()

    try:
        for t, rgb, scale in iter_frames(p, fps, max_frames):
            last_t = t
            det, lm = mesher.track(rgb, models="both", redetect_every=redetect)
            if lm is None:
                seen.append((t, None))
                continue
            r = face.perceive_landmarks(lm)
            box = tuple(float(v) / scale for v in det.box)
            ff = _FaceFrame(t, box, float(det.score), lm / scale, r.measures, r.frontal,
                            outside_fraction(lm, rgb.shape))
            seen.append((t, ff))
            pending.append((ff, eye_aligned_crop(rgb, lm)))
            if len(pending) >= FER_BATCH:
                flush()
        flush()
    finally:
        mesher.reset_track()
    return seen, last_t
