"""Live-mode stand-ins without a camera or MediaPipe: per-frame table rows, and a fake ``LiveFaces``."""

from affectllm.perception.frame_table import AU_COLS, EXPR_COLS


def row(t: float, face_id: int = 0, au12: float = 0.0, au6: float = 0.0, happy: float = 0.1) -> dict:
    out = {"frame": int(t * 10) + 1, "timestamp": t, "face_id": face_id, "confidence": 0.9, "success": 1,
           "box_x0": 10.0, "box_y0": 20.0, "box_x1": 110.0, "box_y1": 140.0,
           "pose_Rx": 0.0, "pose_Ry": 0.1, "pose_Rz": 0.0}
    out |= {f"{c}_r": 0.0 for c in AU_COLS} | {f"{c}_c": 0 for c in AU_COLS}
    out |= {"AU12_r": au12, "AU12_c": int(au12 >= 0.5), "AU06_r": au6, "AU06_c": int(au6 >= 0.5)}
    out |= {c: (happy if c == "expr_happy" else (1 - happy) / 6) for c in EXPR_COLS}
    return out


class FakeLive:
    """Stands in for ``perception.live.LiveFaces``: ``update(x)`` adds a frame whose AU12 is ``x``."""

    def __init__(self):
        self.history, self.n_frames, self.closed = [], 0, False

    def update(self, rgb):
        self.n_frames += 1
        self.history.append([row(self.n_frames / 10, au12=float(rgb))])

    def bars(self):
        r = self.history[-1][0]
        return {"face_id": 0, "t": r["timestamp"], "aus": {"AU12": r["AU12_r"]}, "expression": {"happy": 0.5}}

    def window(self, seconds):
        return [r for rows in self.history for r in rows]

    def close(self):
        self.closed = True
