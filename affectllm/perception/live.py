"""Live face analysis, one frame at a time (a webcam stream): rows that follow the face.

    live = LiveFaces(max_faces=1)
    rows = live.update(rgb)            # this frame's rows, columns of ``frame_table.COLUMNS``
    bars = live.bars()                 # {"aus": {AU: intensity}, "expression": {label: p}} of face 0
    recent = live.window(5.0)          # rows of the last 5 s, for "explain this moment"
    events = live.events(5.0)          # {face_id: {AU: onset/apex/peak}} over the same window

The same code as the per-frame table (``frames.FrameAnalyzer``: video-mode face mesh, AU
measures against each face's running baseline, FER expression, ``tracking`` ids), without the
decode and pipeline threads: the caller hands frames in as they arrive. Frames are downscaled
to :data:`MAX_SIDE` first (a webcam face is large; the mesh reads 256x256 anyway). The history
is bounded to ``history_s`` seconds.

Not here: the gradio stream and the explainer call (the app wires ``update`` to the webcam
stream and sends ``window``/``events`` to the explainer).
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np

from affectllm.perception.frame_table import AU_COLS, EXPR_COLS

MAX_SIDE = 480


class LiveFaces:
    """Per-frame rows for a live stream. One instance per stream (MediaPipe graphs are not thread-safe)."""

    def __init__(self, analyzer=None, max_faces: int = 1, history_s: float = 30.0, max_side: int = MAX_SIDE):
        from affectllm.perception.frames import FrameAnalyzer
        from affectllm.perception.tracking import FaceTracks

        self.analyzer = analyzer or FrameAnalyzer(max_faces=max_faces)
        self.max_side, self.history_s = max_side, history_s
        self._graph = self.analyzer.open_graph()
        self._tracks = FaceTracks()
        self._t0: float | None = None
        self._n = 0
        self.history: deque[list[dict]] = deque()

    def update(self, rgb: np.ndarray, t: float | None = None) -> list[dict]:
        """Rows for one RGB uint8 frame ``[h x w x 3]``; ``t``: seconds (None: wall clock since the first frame)."""
        import cv2

        from affectllm.perception.frames import Frame

        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        t = now - self._t0 if t is None else float(t)
        img = np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8)[..., :3])
        h, w = img.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        if scale < 1.0:
            img = cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
            scale = img.shape[1] / w
        self._n += 1
        faces = self.analyzer.mesh_faces(self._graph, img, scale)
        rows = next(iter(self.analyzer.finish([Frame(self._n, t, faces)], self._tracks)))
        self.history.append(rows)
        while self.history and t - self.history[0][0]["timestamp"] > self.history_s:
            self.history.popleft()
        return rows

    @property
    def n_frames(self) -> int:
        """Frames handed to ``update`` since the start (or the last ``reset``)."""
        return self._n

    def bars(self, face_id: int | None = None) -> dict:
        """Latest AU intensities and expression of ``face_id`` (None: the lowest id measured), or {}."""
        for rows in reversed(self.history):
            for r in rows:
                if r["success"] and (face_id is None or r["face_id"] == face_id):
                    return {"face_id": r["face_id"], "t": r["timestamp"],
                            "aus": {f"AU{int(c[2:])}": r[f"{c}_r"] for c in AU_COLS},
                            "expression": {c[5:]: r[c] for c in EXPR_COLS}}
        return {}

    def window(self, seconds: float = 5.0) -> list[dict]:
        """Rows of the last ``seconds`` seconds, oldest first."""
        if not self.history:
            return []
        end = self.history[-1][0]["timestamp"]
        return [r for rows in self.history if end - rows[0]["timestamp"] <= seconds for r in rows]

    def events(self, seconds: float = 5.0) -> dict:
        """Per face and AU: onset, apex and peak over the last ``seconds`` (``timeline.au_events``)."""
        import pandas as pd

        from affectllm.perception.frame_table import COLUMNS
        from affectllm.perception.timeline import au_events

        rows = self.window(seconds)
        if not rows:
            return {}
        return au_events(pd.DataFrame(rows, columns=list(COLUMNS)))

    def reset(self) -> None:
        """Forget faces and history (a new stream)."""
        from affectllm.perception.tracking import FaceTracks

        self._graph.close()
        self._graph = self.analyzer.open_graph()
        self._tracks, self._t0, self._n = FaceTracks(), None, 0
        self.history.clear()

    def close(self) -> None:
        self._graph.close()
