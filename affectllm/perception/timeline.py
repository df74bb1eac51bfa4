"""Timelines from the per-frame face table: a PNG per video and onset/apex times per face.

    png = timeline_png("talk.csv")                 # bytes: one panel pair per face
    ev = au_events(read_table("talk.csv"))         # {face_id: {AU: {"onset_s", "apex_s", "peak"}}}
    png = timeline_png(video_table(obs.video), min_frames=1)   # a perceived video (frame_table)

Per face (ids with at least :data:`MIN_FACE_FRAMES` measured frames, the most seen first, at
most :data:`MAX_FACES`): the top panel draws the AU intensities (0-5) of the AUs that reach
presence somewhere, the bottom panel the expression probabilities over time. Frames where the
face was not found are gaps in the lines, not zeros. The table is read once; a long video is
thinned to at most :data:`MAX_POINTS` points per line by averaging windows of frames.

Not here: computing the table (``frames``), per-image charts (``render``).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from affectllm.knowledge.facs import PRESENCE_THRESHOLD
from affectllm.perception.frame_table import AU_COLS, EXPR_COLS, read_table

MIN_FACE_FRAMES = 5
MAX_FACES = 4
MAX_POINTS = 2000
MAX_AUS = 8  # lines per AU panel: the AUs with the highest peaks


def _thin(t: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Window means so that at most MAX_POINTS remain (NaN gaps survive: nanmean of all-NaN is NaN)."""
    if len(t) <= MAX_POINTS:
        return t, y
    k = int(np.ceil(len(t) / MAX_POINTS))
    n = len(t) // k * k
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return t[:n].reshape(-1, k).mean(1), np.nanmean(y[:n].reshape(-1, k, *y.shape[1:]), 1)


def faces_by_frames(df, min_frames: int = MIN_FACE_FRAMES) -> list[int]:
    """Face ids with at least ``min_frames`` measured frames, most frames first."""
    counts = df[(df.face_id >= 0) & (df.success == 1)].groupby("face_id").size()
    counts = counts[counts >= min_frames].sort_values(ascending=False, kind="stable")
    return [int(i) for i in counts.index]


def au_events(df, threshold: float = PRESENCE_THRESHOLD,
              min_frames: int = MIN_FACE_FRAMES) -> dict[int, dict[str, dict]]:
    """Face id -> AU ("AU12") -> {"onset_s": first time at presence, "apex_s": time of the peak,
    "peak": peak intensity, "frames": frames at presence}, for AUs that reach presence.

    ``min_frames``: faces seen in fewer frames are left out (spurious detections in a crowd; a
    table of one tracked face, ``frame_table.video_table``, passes 1)."""
    out: dict[int, dict[str, dict]] = {}
    for fid in faces_by_frames(df, min_frames):
        d = df[(df.face_id == fid) & (df.success == 1)]
        t = d.timestamp.to_numpy()
        ev = {}
        for col in AU_COLS:
            v = d[f"{col}_r"].to_numpy()
            on = np.flatnonzero(v >= threshold)
            if not len(on):
                continue
            i = int(np.nanargmax(v))
            ev[f"AU{int(col[2:])}"] = {"onset_s": round(float(t[on[0]]), 3), "apex_s": round(float(t[i]), 3),
                                       "peak": round(float(v[i]), 3), "frames": int(len(on))}
        out[fid] = ev
    return out


def timeline_png(table, title: str = "", dpi: int = 100, min_frames: int = MIN_FACE_FRAMES) -> bytes:
    """PNG bytes of the AU and expression timelines per face. ``table``: a path or a DataFrame;
    ``min_frames`` as in :func:`au_events`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = read_table(table) if isinstance(table, (str, Path)) else table
    faces = faces_by_frames(df, min_frames)[:MAX_FACES]
    n = max(1, len(faces))
    fig, axes = plt.subplots(2 * n, 1, figsize=(11, 3.2 * n + 0.6), squeeze=False, sharex=True)
    if not faces:
        axes[0, 0].text(0.5, 0.5, "no face found in any frame", ha="center", va="center")
        axes[1, 0].set_axis_off()
    for k, fid in enumerate(faces):
        d = df[df.face_id == fid].sort_values("frame")
        ok = d.success.to_numpy() == 1
        t = d.timestamp.to_numpy(dtype=float)
        au = np.array(d[[f"{c}_r" for c in AU_COLS]], dtype=float)  # a copy: parquet arrays are read-only
        au[~ok] = np.nan
        peaks = np.nan_to_num(np.nanmax(np.where(np.isnan(au), -1, au), 0), nan=-1)
        shown = [i for i in np.argsort(-peaks) if peaks[i] >= PRESENCE_THRESHOLD][:MAX_AUS]
        ex = np.array(d[list(EXPR_COLS)], dtype=float)
        ex[~ok] = np.nan
        tt, au_t = _thin(t, au)
        _, ex_t = _thin(t, ex)
        ax = axes[2 * k, 0]
        for i in sorted(shown):
            ax.plot(tt, au_t[:, i], lw=1.2, label=f"AU{int(AU_COLS[i][2:])}")
        ax.axhline(PRESENCE_THRESHOLD, color="0.7", lw=0.8, ls="--")
        ax.set_ylim(0, 5.2)
        ax.set_ylabel("AU intensity")
        ax.set_title(f"face {fid}" + (" - no AU reaches presence" if not shown else ""), loc="left", fontsize=10)
        if shown:
            ax.legend(ncol=min(len(shown), 8), fontsize=8, loc="upper right")
        ax2 = axes[2 * k + 1, 0]
        for j, c in enumerate(EXPR_COLS):
            ax2.plot(tt, ex_t[:, j], lw=1.1, label=c[5:])
        ax2.set_ylim(0, 1.02)
        ax2.set_ylabel("expression p")
        ax2.legend(ncol=7, fontsize=8, loc="upper right")
    axes[-1, 0].set_xlabel("time (s)")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()
