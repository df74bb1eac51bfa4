"""Stable face ids across video frames: match each frame's faces to live tracks.

A track remembers its last box (pixels), a running mean of the face embedding (the FER
network's 128-d penultimate features, L2-normalised) and the frame it was last seen on. Per
frame, every (face, track) pair gets a similarity

    sim = W_POS * pos + W_EMB * emb
    pos = exp(-centre distance / track box side)     1 at the same place, ~0.37 one face away
    emb = cosine of the face's embedding with the track's mean embedding (0-1: ReLU features)

and pairs are taken greedily, best first, when ``sim >= MIN_SIM``; an unmatched face starts a
new track with the next id. Position carries most of the weight because consecutive frames
rarely move a face by more than a fraction of its size, while two people side by side are a
whole face apart. The embedding breaks ties when faces pass close to each other and lets a
face that vanished for a moment (up to :data:`TTL_S`) come back under its old id.

The embedding is an expression network's feature, not a face-recognition one: it tells
people apart only together with position, and is not meant to re-identify someone who
leaves for minutes. Not here: detection or landmarks (``frames``), writing rows (``frame_table``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

W_POS, W_EMB = 0.7, 0.3
MIN_SIM = 0.5
TTL_S = 5.0  # seconds a lost face keeps its id (and gets success=0 rows)
EMB_MOMENTUM = 0.9  # running mean of the embedding


@dataclass
class Track:
    face_id: int
    box: tuple[float, float, float, float]
    last_t: float
    emb: np.ndarray | None = None  # [d] unit vector
    extra: dict = field(default_factory=dict)  # per-face state owned by callers (e.g. baselines)

    @property
    def side(self) -> float:
        return max(1.0, max(self.box[2] - self.box[0], self.box[3] - self.box[1]))


def _unit(v) -> np.ndarray | None:
    if v is None:
        return None
    a = np.asarray(v, dtype=np.float64).ravel()
    n = float(np.linalg.norm(a))
    return a / n if n > 0 else None


class FaceTracks:
    """Assign face ids frame by frame. ``ttl_s``: how long a lost face keeps its id."""

    def __init__(self, ttl_s: float = TTL_S):
        self.ttl_s = ttl_s
        self.tracks: dict[int, Track] = {}
        self.next_id = 0

    def similarity(self, box, emb: np.ndarray | None, tr: Track) -> float:
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        tx, ty = (tr.box[0] + tr.box[2]) / 2, (tr.box[1] + tr.box[3]) / 2
        pos = float(np.exp(-np.hypot(cx - tx, cy - ty) / tr.side))
        if emb is None or tr.emb is None:
            return pos  # no embedding on one side: position alone decides
        return W_POS * pos + W_EMB * float(np.clip(emb @ tr.emb, 0.0, 1.0))

    def assign(self, t: float, boxes: list, embs: list | None = None) -> list[int]:
        """Face ids for this frame's ``boxes`` [(x0, y0, x1, y1)] and ``embs`` ([d] each or None)."""
        self.tracks = {k: tr for k, tr in self.tracks.items() if t - tr.last_t <= self.ttl_s}
        units = [_unit(e) for e in (embs or [None] * len(boxes))]
        pairs = sorted(((self.similarity(b, u, tr), i, k) for i, (b, u) in enumerate(zip(boxes, units))
                        for k, tr in self.tracks.items()), reverse=True)
        ids: list[int | None] = [None] * len(boxes)
        used: set[int] = set()
        for sim, i, k in pairs:
            if sim < MIN_SIM:
                break
            if ids[i] is None and k not in used:
                ids[i] = k
                used.add(k)
        for i, b in enumerate(boxes):
            if ids[i] is None:
                ids[i] = self.next_id
                self.tracks[self.next_id] = Track(self.next_id, tuple(b), t)
                self.next_id += 1
            tr = self.tracks[ids[i]]
            tr.box, tr.last_t = tuple(float(v) for v in b), t
            u = units[i]
            if u is not None:
                tr.emb = u if tr.emb is None else _unit(EMB_MOMENTUM * tr.emb + (1 - EMB_MOMENTUM) * u)
        return [int(i) for i in ids]

    def missing(self, seen: list[int]) -> list[Track]:
        """Live tracks not among ``seen`` this frame (they get success=0 rows), by id."""
        s = set(seen)
        return [tr for k, tr in sorted(self.tracks.items()) if k not in s]

    def restore(self, rows: list[dict], t: float, max_face_id: int = -1) -> None:
        """Re-create tracks from the rows of one earlier frame (resume): id and box, no embedding.

        ``max_face_id``: the largest id used so far, so that new faces do not reuse an old id.
        """
        self.next_id = max(self.next_id, max_face_id + 1)
        for r in rows:
            fid, ok = int(r["face_id"]), int(r["success"])
            self.next_id = max(self.next_id, fid + 1)
            if fid >= 0 and ok:
                box = tuple(float(r[c]) for c in ("box_x0", "box_y0", "box_x1", "box_y1"))
                self.tracks[fid] = Track(fid, box, t)
