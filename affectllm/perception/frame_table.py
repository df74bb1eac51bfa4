"""The per-frame face table: its columns, and a streaming writer that can resume after a kill.

Columns (documented for users in ``docs/frames.md``), OpenFace FeatureExtraction names where the
concept is the same:

    frame, timestamp, face_id, confidence, success,
    box_x0, box_y0, box_x1, box_y1,
    pose_Rx, pose_Ry, pose_Rz,
    AU01_r ... AU43_r   (0-5 intensity)   AU01_c ... AU43_c (presence 0/1)
    AU01_s ... AU43_s   (continuous, unclipped score for ranking)
    expr_angry ... expr_neutral (FER2013 probabilities)

How the writer streams: rows go to ``OUT.partial`` (always CSV) in chunks of whole frames, each
chunk flushed and fsynced, so a killed run leaves complete frames plus at most one torn chunk.
``OUT.partial.json`` records what produced the rows (video size and mtime, fps, max faces,
column list). On resume the torn tail and the last frame present are dropped (that frame may be
half-written when it has several faces), and the caller restarts from that frame. ``finish``
turns the partial into ``OUT`` atomically: a rename for ``.csv``, a streamed CSV -> Parquet
conversion (pyarrow, block by block) for ``.parquet``.

``video_table(obs.video)`` gives the same table, face 0 only, from a ``VideoObs.timeline`` (what
``perception.video`` kept of its frames), so a perceived video is plotted without a second decode.

Not here: computing the values (``frames``), plotting them (``timeline``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from affectllm.perception.au import AU_ORDER

FER_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # weights.FER_LABELS order


def au_column(au: str) -> str:
    """"AU1" -> "AU01" (OpenFace's two-digit spelling)."""
    return f"AU{int(au[2:]):02d}"


AU_COLS = tuple(au_column(a) for a in AU_ORDER)
BOX_COLS = ("box_x0", "box_y0", "box_x1", "box_y1")
POSE_COLS = ("pose_Rx", "pose_Ry", "pose_Rz")
EXPR_COLS = tuple(f"expr_{x}" for x in FER_LABELS)
COLUMNS: tuple[str, ...] = (
    ("frame", "timestamp", "face_id", "confidence", "success") + BOX_COLS + POSE_COLS
    + tuple(f"{a}_r" for a in AU_COLS) + tuple(f"{a}_c" for a in AU_COLS)
    + tuple(f"{a}_s" for a in AU_COLS) + EXPR_COLS)
INT_COLUMNS = frozenset({"frame", "face_id", "success"} | {f"{a}_c" for a in AU_COLS})
SCHEMA_VERSION = 1


def column_dtypes() -> dict[str, str]:
    """Column -> numpy dtype name: int64 for counters and ids, int8 for flags, float64 otherwise."""
    out = {}
    for c in COLUMNS:
        out[c] = "int64" if c in ("frame", "face_id") else "int8" if c in INT_COLUMNS else "float64"
    return out


def _fmt(v) -> str:
    if v is None:
        return ""  # not measured (no face): empty cell, read back as NaN
    if isinstance(v, (int,)) and not isinstance(v, bool):
        return str(v)
    if isinstance(v, bool):
        return "1" if v else "0"
    f = float(v)
    return "" if f != f else f"{f:.4f}".rstrip("0").rstrip(".") if abs(f) < 1e6 else repr(f)


class FrameTableWriter:
    """Append whole frames of rows to ``OUT.partial``; ``finish()`` publishes ``OUT``.

    ``meta``: what produced the rows (compared on resume). ``chunk_frames``: frames per flush.
    After construction, :attr:`resume_frame` is the first frame number still to compute (0: all)
    and :attr:`last_rows` the rows of the last complete frame kept (for tracker state).
    """

    def __init__(self, out: str | os.PathLike, meta: dict, resume: bool = False, chunk_frames: int = 64):
        self.out = Path(out)
        if self.out.suffix.lower() not in (".csv", ".parquet"):
            raise ValueError(f"{self.out}: frame table must end in .csv or .parquet")
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.partial = self.out.with_name(self.out.name + ".partial")
        self.meta_path = self.out.with_name(self.out.name + ".partial.json")
        self.meta = {**meta, "columns": list(COLUMNS), "schema": SCHEMA_VERSION}
        self.chunk_frames = chunk_frames
        self.resume_frame = 0
        self.last_rows: list[dict] = []
        self.max_face_id = -1  # largest face id in the kept rows (new faces after a resume get larger ones)
        self.n_rows = 0
        self._buf: list[str] = []
        self._buf_frames = 0
        if resume and self.partial.is_file() and self.meta_path.is_file():
            old = json.loads(self.meta_path.read_text())
            if old != self.meta:
                diff = sorted(k for k in set(old) | set(self.meta) if old.get(k) != self.meta.get(k))
                raise ValueError(f"{self.partial}: cannot resume, it was made with other settings ({', '.join(diff)});"
                                 " run without --resume to start again")
            self._truncate_to_complete()
            self._f = open(self.partial, "a", encoding="utf-8", newline="")
        else:
            self._f = open(self.partial, "w", encoding="utf-8", newline="")
            self._f.write(",".join(COLUMNS) + "\n")
            self._f.flush()
            self.meta_path.write_text(json.dumps(self.meta) + "\n")

    def _truncate_to_complete(self) -> None:
        """Drop a torn last line and every row of the last frame present; set resume state."""
        n_cols = len(COLUMNS)
        good_end = 0  # byte offset after the last row of the frame before the current one
        cur_frame, cur_start, cur_rows, prev_rows = None, 0, [], []
        n_rows, n_cur, max_id, cur_max = 0, 0, -1, -1
        with open(self.partial, "rb") as f:
            header = f.readline()
            if header.decode("utf-8").rstrip("\n").split(",") != list(COLUMNS):
                raise ValueError(f"{self.partial}: header differs from this version's columns; run without --resume")
            pos = len(header)
            good_end = pos
            for line in f:
                if not line.endswith(b"\n"):
                    break  # torn by the kill
                cells = line.decode("utf-8").rstrip("\n").split(",")
                if len(cells) != n_cols:
                    break
                fr = int(cells[0])
                if fr != cur_frame:
                    if cur_frame is not None:
                        good_end, prev_rows = cur_start, cur_rows
                        n_rows += n_cur
                        max_id = max(max_id, cur_max)
                    cur_frame, cur_start, cur_rows, n_cur, cur_max = fr, pos, [], 0, -1
                cur_rows.append(dict(zip(COLUMNS, cells)))
                cur_max = max(cur_max, int(cells[2]))
                n_cur += 1
                pos += len(line)
        # The last frame seen may be incomplete (several faces, killed mid-chunk): recompute it.
        good_end = good_end if cur_frame is None else cur_start
        with open(self.partial, "r+b") as f:
            f.truncate(good_end)
        self.n_rows = n_rows
        self.max_face_id = max_id
        self.resume_frame = cur_frame or 0
        self.last_rows = prev_rows

    def write_frame(self, rows: list[dict]) -> None:
        """Rows of one frame (dicts keyed by :data:`COLUMNS`; missing keys are empty cells)."""
        for r in rows:
            self._buf.append(",".join(_fmt(r.get(c)) for c in COLUMNS))
        self.n_rows += len(rows)
        self._buf_frames += 1
        if self._buf_frames >= self.chunk_frames:
            self.flush()

    def flush(self) -> None:
        if self._buf:
            self._f.write("\n".join(self._buf) + "\n")
            self._f.flush()
            os.fsync(self._f.fileno())
        self._buf, self._buf_frames = [], 0

    def close(self) -> None:
        """Flush and close without publishing (the partial stays for ``--resume``)."""
        if not self._f.closed:
            self.flush()
            self._f.close()

    def finish(self) -> Path:
        """Publish ``OUT`` atomically and remove the partial files."""
        self.close()
        if self.out.suffix.lower() == ".csv":
            os.replace(self.partial, self.out)
        else:
            tmp = self.out.with_name(f".{self.out.name}.tmp")
            csv_to_parquet(self.partial, tmp)
            os.replace(tmp, self.out)
            self.partial.unlink()
        self.meta_path.unlink(missing_ok=True)
        return self.out


def arrow_schema():
    import pyarrow as pa

    kinds = {"int64": pa.int64(), "int8": pa.int8(), "float64": pa.float64()}
    return pa.schema([(c, kinds[t]) for c, t in column_dtypes().items()])


def csv_to_parquet(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Stream a frame-table CSV into Parquet block by block (memory stays at one block)."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    schema = arrow_schema()
    reader = pacsv.open_csv(str(src), read_options=pacsv.ReadOptions(block_size=8 << 20),
                            convert_options=pacsv.ConvertOptions(column_types=schema))
    with pq.ParquetWriter(str(dst), schema) as w:
        for batch in reader:
            w.write_batch(batch)


def read_table(path: str | os.PathLike):
    """A finished frame table (.csv or .parquet) as a pandas DataFrame with :func:`column_dtypes`."""
    import pandas as pd

    p = Path(path)
    if p.suffix.lower() == ".parquet":
        return pd.read_parquet(p)
    dt = {c: ("float64" if t != "int64" and c not in INT_COLUMNS else t) for c, t in column_dtypes().items()}
    df = pd.read_csv(p, dtype=dt)
    return df.astype({c: t for c, t in column_dtypes().items() if t == "int8"})


def video_table(video):
    """The per-frame table (:data:`COLUMNS`, :func:`column_dtypes`) of a ``VideoObs.timeline``.

    One row per analysed frame, face_id 0; frames without a face have success 0 and empty (NaN)
    measures. The timeline keeps only AUs that reach presence (intensity and presence columns) and
    no boxes, poses, confidences or unclipped scores: those cells are NaN (other presence columns 0).
    Raises ValueError when ``video`` has no timeline.
    """
    import numpy as np
    import pandas as pd

    from affectllm.knowledge.facs import PRESENCE_THRESHOLD

    tl = getattr(video, "timeline", None) or {}
    t = tl.get("t") or []
    if not t:
        raise ValueError("the video has no per-frame timeline (perceived before timelines were kept?)")
    n = len(t)
    aus, expr = tl.get("aus") or {}, tl.get("expression") or {}
    face = np.zeros(n, bool)
    for series in list(aus.values()) + list(expr.values()):
        face |= np.array([v is not None for v in series], bool)

    def col(series):
        return np.array([np.nan if v is None else float(v) for v in series], float)

    data = {c: np.full(n, np.nan) for c in COLUMNS}
    data.update(frame=np.arange(n), timestamp=np.array(t, float), face_id=np.zeros(n, int),
                success=face.astype(int))
    for c in COLUMNS:
        if c.endswith("_c"):
            data[c] = np.zeros(n, int)
    for au, series in aus.items():
        v = col(series)
        data[f"{au_column(au)}_r"] = v
        data[f"{au_column(au)}_c"] = (np.nan_to_num(v, nan=0.0) >= PRESENCE_THRESHOLD).astype(int)
    for lab, series in expr.items():
        if f"expr_{lab}" in data:
            data[f"expr_{lab}"] = col(series)
    return pd.DataFrame(data, columns=list(COLUMNS)).astype(column_dtypes())
