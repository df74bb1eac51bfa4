"""The UI's live webcam mode: one ``LiveFaces`` per browser session, AU bars as HTML, and the
Observations of "this moment" for the explainer.

    live = LiveSessions(face=lambda: pool.perception.face)   # a FacePerceiver, or a function giving one
    html = live.frame(rgb, session="abc")     # AU bars + expression of the tracked face (an HTML string)
    obs = live.moment("abc", seconds=5.0)     # the last 5 s as Observations (apex face + AU onset/apex)

Why HTML bars: the stream answers every frame (>= 10 a second on 2 cores), and a matplotlib chart
costs tens of milliseconds to draw; a string of ``<div>`` widths costs nothing, and the browser
test reads the numbers from ``data-`` attributes (``data-updates``, ``data-au12``...).

"This moment": the rows of the last ``seconds`` of the session's stream for its main face (the
lowest face id measured in the newest frame). The face is described at the apex frame (largest
summed AU intensity), and the window's onset/apex times per AU (``video.summarise_frames``, times
counted from the window's start) go in a ``VideoObs``, as for an uploaded video: the explanation
cites when each AU started and peaked.

Not here: the per-frame analysis (``perception.live``), the gradio layout (``app.py``).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from affectllm.errors import InputError
from affectllm.knowledge.facs import AU_NAMES, PRESENCE_THRESHOLD
from affectllm.perception.observations import FaceObs, Observations, VideoObs

MAX_SESSIONS = 4  # live streams kept at once (each holds a MediaPipe graph); the oldest is closed
BARS = ("AU1", "AU2", "AU4", "AU5", "AU6", "AU7", "AU9", "AU10", "AU12", "AU15", "AU17", "AU20", "AU23",
        "AU25", "AU26", "AU43")  # shown in this order; AUs outside the list are not drawn
RATE_WINDOW_S = 2.0


_ROW = "display:flex;align-items:center;gap:6px;font-size:12px;line-height:16px"
_NAME = "flex:0 0 190px;white-space:nowrap;overflow:hidden"
_TRACK = "flex:1;height:10px;background:#eef0f3;border-radius:3px;overflow:hidden"


def _bar(name: str, value: float, scale: float, colour: str, attr: str) -> str:
    width = max(0.0, min(1.0, value / scale)) * 100
    return (f'<div style="{_ROW}" data-{attr}="{value:.3f}"><span style="{_NAME}">{name}</span>'
            f'<span style="{_TRACK}"><span style="display:block;height:100%;width:{width:.0f}%;'
            f'background:{colour}"></span></span><span style="flex:0 0 36px;text-align:right">{value:.2f}</span></div>')


def bars_html(bars: dict, updates: int, rate: float) -> str:
    """The bars panel for ``LiveFaces.bars()`` output (``{}``: no face in view)."""
    head = f'<div id="live-bars" data-updates="{updates}" data-rate="{rate:.1f}">'
    status = f'<div style="font-size:12px;color:#666">{rate:.1f} updates/s'
    if not bars:
        return head + status + " \u00b7 no face in view</div></div>"
    status += f" \u00b7 face {bars['face_id']} \u00b7 {bars['t']:.1f} s</div>"
    aus = bars["aus"]
    rows = [_bar(f"{au} {AU_NAMES.get(au, '')}", float(aus.get(au) or 0.0), 5.0,
                 "#d9534f" if (aus.get(au) or 0.0) >= PRESENCE_THRESHOLD else "#9aa5b1", au.lower())
            for au in BARS]
    expr = sorted(((k, float(v or 0.0)) for k, v in bars["expression"].items()), key=lambda kv: -kv[1])
    rows += ['<div style="font-size:12px;font-weight:600;margin-top:4px">Expression</div>']
    rows += [_bar(k, v, 1.0, "#337ab7", f"expr-{k}") for k, v in expr]
    return head + status + "".join(rows) + "</div>"


@dataclass
class _Stream:
    live: object  # LiveFaces
    times: deque = field(default_factory=deque)  # monotonic times of recent updates (the rate)
    lock: threading.Lock = field(default_factory=threading.Lock)  # one frame at a time per stream


class LiveSessions:
    """Live streams by browser session (module doc). Thread-safe: gradio may call from several threads;
    a frame that arrives while the session's previous one is still being analysed is dropped (None)."""

    def __init__(self, face=None, max_faces: int = 1, max_sessions: int = MAX_SESSIONS):
        self.face, self.max_faces, self.max_sessions = face, max_faces, max_sessions
        self._streams: OrderedDict[str, _Stream] = OrderedDict()
        self._lock = threading.Lock()
        self._analyzer = None

    def _get(self, session: str) -> _Stream:
        from affectllm.perception.frames import FrameAnalyzer
        from affectllm.perception.live import LiveFaces

        with self._lock:
            if session in self._streams:
                self._streams.move_to_end(session)
                return self._streams[session]
            if self._analyzer is None:  # one analyzer (FER network, reference shape) for all sessions
                face = self.face() if callable(self.face) else self.face
                self._analyzer = FrameAnalyzer(face, max_faces=self.max_faces)
            while len(self._streams) >= self.max_sessions:
                self._streams.popitem(last=False)[1].live.close()
            st = self._streams[session] = _Stream(LiveFaces(self._analyzer, max_faces=self.max_faces))
            return st

    def frame(self, rgb, session: str) -> str | None:
        """Analyse one webcam frame of ``session``; returns the bars panel (None: frame dropped, busy)."""
        if rgb is None:
            return bars_html({}, 0, 0.0)
        st = self._get(session)
        if not st.lock.acquire(blocking=False):
            return None
        try:
            st.live.update(rgb)
            now = time.monotonic()
            st.times.append(now)
            while now - st.times[0] > RATE_WINDOW_S:
                st.times.popleft()
            span = st.times[-1] - st.times[0]
            rate = (len(st.times) - 1) / span if span > 0 else 0.0
            return bars_html(st.live.bars(), st.live.n_frames, rate)
        finally:
            st.lock.release()

    def moment(self, session: str, seconds: float = 5.0) -> Observations:
        """The last ``seconds`` of ``session``'s stream as Observations (module doc). Raises ``InputError``."""
        st = self._streams.get(session)
        if st is None or not st.live.history:
            raise InputError("webcam", "the live stream has not started: open the live webcam and start it first")
        with st.lock:
            rows, face_id = st.live.window(seconds), st.live.bars().get("face_id")
        return moment_observations(rows, face_id, seconds)

    def close(self, session: str | None = None) -> None:
        """Close one session's stream (None: all)."""
        with self._lock:
            for key in [session] if session is not None else list(self._streams):
                st = self._streams.pop(key, None)
                if st is not None:
                    with st.lock:
                        st.live.close()


def moment_observations(rows: list[dict], face_id: int | None, seconds: float) -> Observations:
    """Observations of a window of live rows (module doc). Raises ``InputError`` without a measured face.

    The rows become the per-frame records ``perception.video`` keeps for an uploaded video, so the
    AU summary and the timeline come from the same code (``summarise_frames``, ``frames_timeline``).
    """
    from affectllm.perception.au import AU_ORDER, to_au_obs
    from affectllm.perception.frame_table import EXPR_COLS, au_column
    from affectllm.perception.video import frames_timeline, summarise_frames

    mine = {r["timestamp"]: r for r in rows if r.get("success") and r["face_id"] == face_id}
    if face_id is None or not mine:
        raise InputError("webcam", f"no face was measured in the last {seconds:g} s: face the camera and try again")
    t0 = rows[0]["timestamp"]
    frames = []  # one per frame of the window (a frame's rows share its timestamp), oldest first
    for t in dict.fromkeys(r["timestamp"] for r in rows):
        r = mine.get(t)
        frames.append({"t": round(t - t0, 3), "face": False, "aus": {}} if r is None else
                      {"t": round(t - t0, 3), "face": True, "row": r,
                       "aus": {a: float(r.get(f"{au_column(a)}_r") or 0.0) for a in AU_ORDER},
                       "expression": {c[5:]: float(r.get(c) or 0.0) for c in EXPR_COLS}})
    apex = max((f for f in frames if f["face"]), key=lambda f: sum(f["aus"].values()))
    r = apex["row"]
    face = FaceObs(box=tuple(float(r.get(c) or 0.0) for c in ("box_x0", "box_y0", "box_x1", "box_y1")),
                   score=float(r.get("confidence") or 0.0),
                   pose={k: round(-math.degrees(float(r.get(c) or 0.0)), 1)  # frames.py: radians, negated
                         for k, c in (("pitch", "pose_Rx"), ("yaw", "pose_Ry"), ("roll", "pose_Rz"))},
                   aus=to_au_obs(apex["aus"]), expression=dict(apex["expression"]))
    span = frames[-1]["t"]
    fps = (len(mine) - 1) / span if span > 0 and len(mine) > 1 else 0.0
    summary = summarise_frames(frames)
    video = VideoObs(fps=round(fps, 2), n_frames=len(mine), duration_s=float(span), au_summary=summary,
                     timeline=frames_timeline(frames, summary), face_frame_s=apex["t"])
    return Observations(file=f"webcam (last {seconds:g} s)", faces=[face], video=video)
