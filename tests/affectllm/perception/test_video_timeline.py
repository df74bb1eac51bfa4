"""A perceived video's per-frame timeline: kept on VideoObs, serialised and cached, turned back into
the frame table whose onsets and apexes are the summary's, and drawn for the UI without a decode."""

from __future__ import annotations

import math

import numpy as np
import pytest

from affectllm.perception.au import AU_ORDER
from affectllm.perception.frame_table import COLUMNS, column_dtypes, video_table
from affectllm.perception.observations import Observations, VideoObs, observations_from_dict
from affectllm.perception.timeline import au_events, timeline_png
from affectllm.perception.video import frames_timeline, summarise_frames


def synthetic_frames(n: int = 24, gap=(5, 6)) -> list[dict]:
    """Frames as perceive_video builds them: a smile (AU12, AU6) rising and falling, a brief AU25,
    no face in the ``gap`` frames; values with more than 3 decimals, as the AU rules give them."""
    frames = []
    for i in range(n):
        t = round(i * 0.2, 3)
        if i in gap:
            frames.append({"t": t, "face": False, "aus": {}})
            continue
        smile = 3.2 * math.exp(-((i - 12) / 4.0) ** 2)
        aus = {au: 0.1234 for au in AU_ORDER}
        aus.update(AU12=smile + 0.01234, AU6=0.8 * smile, AU25=0.7 if i == 3 else 0.2,
                   AU4=0.49961)  # rounds to 0.5: presence is judged on the kept (rounded) values
        p = min(0.9, smile / 3.5)
        frames.append({"t": t, "face": True, "aus": aus,
                       "expression": {"happy": p, "neutral": 1 - p - 0.01, "sad": 0.01, "angry": 0.0,
                                      "disgust": 0.0, "fear": 0.0, "surprise": 0.0}})
    return frames


@pytest.fixture()
def video() -> VideoObs:
    frames = synthetic_frames()
    summary = summarise_frames(frames)
    return VideoObs(fps=5.0, n_frames=len(frames), duration_s=4.8, au_summary=summary,
                    timeline=frames_timeline(frames, summary), face_frame_s=2.4)


def test_timeline_is_compact_and_marks_frames_without_a_face(video):
    tl = video.timeline
    assert set(tl) == {"t", "aus", "expression"} and len(tl["t"]) == 24
    assert list(tl["aus"]) == list(video.au_summary) and set(tl["aus"]) == {"AU4", "AU6", "AU12", "AU25"}
    assert tl["aus"]["AU12"][5] is None and tl["expression"]["happy"][6] is None
    assert tl["aus"]["AU12"][0] == round(3.2 * math.exp(-9) + 0.01234, 3)  # 3 decimals
    assert all(v is None or v == round(v, 3) for s in tl["expression"].values() for v in s)


def test_table_from_the_timeline_gives_the_summary_onsets_and_apexes(video):
    df = video_table(video)
    assert list(df.columns) == list(COLUMNS) and dict(df.dtypes.astype(str)) == column_dtypes()
    assert len(df) == 24 and set(df.face_id) == {0} and list(df.success[4:8]) == [1, 0, 0, 1]
    assert np.isnan(df.AU12_r[5]) and df.AU12_c[12] == 1 and df.AU12_c[0] == 0
    assert np.isnan(df.AU01_r[0]) and df.AU01_c[0] == 0  # not kept: empty, not a made-up 0
    events = au_events(df, min_frames=1)[0]
    assert set(events) == set(video.au_summary)
    for au, s in video.au_summary.items():
        e = events[au]
        assert (e["onset_s"], e["apex_s"], e["peak"]) == (s["onset_s"], s["apex_s"], s["peak"]), au
    assert video.au_summary["AU12"]["apex_s"] == 2.4 and video.au_summary["AU25"]["onset_s"] == 0.6


def test_timeline_round_trips_through_to_dict_and_old_dicts_still_load(video):
    obs = Observations(file="/d/v.mp4", video=video)
    back = observations_from_dict(obs.to_dict())
    assert back.video == video
    old = obs.to_dict()
    del old["video"]["timeline"], old["video"]["face_frame_s"]
    legacy = observations_from_dict(old).video
    assert legacy.timeline == {} and legacy.face_frame_s is None and legacy.au_summary == video.au_summary
    with pytest.raises(ValueError, match="no per-frame timeline"):
        video_table(legacy)


def test_evidence_text_names_onset_and_apex(video):
    text = video.to_text()
    s = video.au_summary["AU12"]
    assert f"AU12 lip corner puller from {s['onset_s']:.2f} s, peaking at {s['peak']:.1f} at {s['apex_s']:.2f} s" \
        in text
    assert "read at 2.40 s" in text and text.startswith("Video over 4.8 s")


def test_obs_timeline_draws_without_decoding(video):
    from affectllm.ui.timeline import VideoTimeline, obs_timeline

    tl = obs_timeline(Observations(file="/up/smile.mp4", video=video))
    assert isinstance(tl, VideoTimeline) and tl.png[:8] == b"\x89PNG\r\n\x1a\n" and tl.n_rows == 24
    assert tl.events[0]["AU12"]["apex_s"] == video.au_summary["AU12"]["apex_s"]
    assert tl.text.startswith("face 0 (22 frames): AU12 (lip corner puller) onset ")
    assert f"apex {video.au_summary['AU12']['apex_s']:.2f} s" in tl.text
    assert obs_timeline(Observations(file="x.jpg")) is None
    assert obs_timeline(Observations(video=VideoObs(fps=5.0, n_frames=3, duration_s=1.0))) is None
    few = synthetic_frames(n=3, gap=())  # fewer face frames than the crowd filter's 5: still drawn
    s = summarise_frames(few)
    tl3 = obs_timeline(Observations(video=VideoObs(5.0, 3, 0.6, s, timeline=frames_timeline(few, s))))
    assert tl3 is not None and tl3.events[0] and "face 0 (3 frames)" in tl3.text
    assert timeline_png(video_table(video), min_frames=1)[:4] == b"\x89PNG"


def test_perception_cache_keeps_the_timeline(tmp_path, video):
    """A cache hit gives back the timeline and apex-frame time (the perceiver is a stand-in)."""
    import av

    from affectllm.perception.pipeline import Perception

    path = tmp_path / "grey.mp4"
    with av.open(str(path), "w") as out:
        vs = out.add_stream("mpeg4", rate=10)
        vs.width = vs.height = 32
        vs.pix_fmt = "yuv420p"
        for _ in range(5):
            for pkt in vs.encode(av.VideoFrame.from_ndarray(np.full((32, 32, 3), 90, np.uint8), format="rgb24")):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
    p = Perception(modalities=("face",), cache_root=tmp_path / "cache", gate=False)
    calls = []

    def fake_video(path, obs):
        calls.append(path)
        obs.video = video

    p._video = fake_video
    first, second = p.perceive(str(path)), p.perceive(str(path))
    assert len(calls) == 1 and second.video == first.video == video
