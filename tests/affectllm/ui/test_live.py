"""The UI's live mode without a camera: the bars panel's numbers, "this moment" as Observations
(apex face, onset/apex counted from the window's start, other faces ignored), and the session
rules (one frame at a time per stream, a clear error before the stream starts, eviction closes)."""

import re
import threading

import pytest

from affectllm.errors import InputError
from affectllm.ui.live import LiveSessions, _Stream, bars_html, moment_observations
from _live_fakes import FakeLive, row as _row


def test_bars_html_carries_the_numbers_it_draws():
    bars = {"face_id": 0, "t": 3.25, "aus": {"AU12": 3.4, "AU6": 0.5, "AU4": None},
            "expression": {"happy": 0.8, "neutral": 0.2}}
    html = bars_html(bars, updates=42, rate=14.26)
    assert 'data-updates="42"' in html and 'data-rate="14.3"' in html and "14.3 updates/s" in html
    assert 'data-au12="3.400"' in html and 'data-au6="0.500"' in html and 'data-au4="0.000"' in html
    assert 'data-expr-happy="0.800"' in html
    widths = [int(w) for w in re.findall(r"width:(\d+)%", html)]
    assert max(widths) <= 100 and 68 in widths  # AU12 3.4 of 5 -> 68 %
    empty = bars_html({}, 0, 0.0)
    assert "no face in view" in empty and "data-au12" not in empty


def test_moment_is_the_apex_face_with_times_from_the_window_start():
    rows = [_row(10.0 + i / 10, au12=min(3.0, max(0.0, (i - 5) * 0.5)), au6=1.5 if i >= 8 else 0.0,
                 happy=0.2 + 0.05 * i) for i in range(15)]
    rows += [_row(10.5, face_id=1, au12=5.0), {"frame": 99, "timestamp": 11.45, "face_id": -1, "success": 0}]
    obs = moment_observations(rows, face_id=0, seconds=5.0)
    face = obs.main_face
    assert {a.au: a.intensity for a in face.present_aus} == {"AU12": 3.0, "AU6": 1.5}  # apex, not face 1's 5.0
    assert face.expression["happy"] == pytest.approx(0.2 + 0.05 * 11)  # the first frame at the largest AU sum
    assert face.box == (10.0, 20.0, 110.0, 140.0) and face.pose["yaw"] == pytest.approx(-5.7, abs=0.1)
    v = obs.video
    assert v.n_frames == 15 and v.duration_s == pytest.approx(1.45)
    assert v.au_summary["AU12"]["onset_s"] == pytest.approx(0.6)  # 0.5 * (6 - 5) reaches presence (0.5)
    assert v.au_summary["AU12"]["apex_s"] == pytest.approx(1.1) and v.au_summary["AU12"]["peak"] == 3.0
    assert v.au_summary["AU6"]["onset_s"] == pytest.approx(0.8)
    assert "webcam" in obs.file and obs.audio is None and obs.text is None
    assert v.face_frame_s == pytest.approx(1.1) and len(v.timeline["t"]) == 16  # 15 frames + the no-face one
    assert set(v.timeline["aus"]) == {"AU12", "AU6"} and v.timeline["aus"]["AU12"][-1] is None
    from affectllm.ui.timeline import obs_timeline

    tl = obs_timeline(obs)  # the chart and text an uploaded video gets, from the same numbers
    assert tl.png[:4] == b"\x89PNG" and "AU12 (lip corner puller) onset 0.60 s, apex 1.10 s" in tl.text
    with pytest.raises(InputError, match="no face was measured"):
        moment_observations(rows[-1:], face_id=None, seconds=5.0)


def test_sessions_one_frame_at_a_time_and_clear_errors():
    live = LiveSessions(max_sessions=2)
    with pytest.raises(InputError, match="has not started"):
        live.moment("a", 5.0)
    a, b, c = (_Stream(FakeLive()) for _ in range(3))
    live._streams.update(a=a, b=b)
    assert 'data-au12="2.000"' in live.frame(2.0, "a")
    got = []
    with a.lock:  # a's previous frame is still being analysed: the new one is dropped, not queued
        t = threading.Thread(target=lambda: got.append(live.frame(3.0, "a")))
        t.start()
        t.join()
    assert got == [None] and a.live.n_frames == 1
    assert live.moment("a", 5.0).main_face.aus  # from the fake stream's rows
    live._streams["c"] = c
    live._streams.move_to_end("a")
    live.close("b")
    assert b.live.closed and "b" not in live._streams
    live.close()
    assert a.live.closed and c.live.closed and not live._streams


def test_moment_rationale_says_an_au_active_from_the_window_start_has_no_onset():
    from affectllm.explanation.template import write_rationale
    from affectllm.explanation.verify import verify

    rows = [_row(3.0 + i / 10, au12=2.0 + 0.2 * i, au6=1.0, happy=0.9) for i in range(10)]
    obs = moment_observations(rows, face_id=0, seconds=5.0)
    text = write_rationale("moment", obs, ["happiness"], media=("video",)).render()
    assert "AU12 (lip corner puller) is already active at the start (0.00 s) and peaks at 0.90 s" in text
    assert "sets in" not in text and verify(text, obs, "happiness").ok, verify(text, obs, "happiness").flags
