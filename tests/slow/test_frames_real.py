"""Per-frame face table on videos synthesised from London Set photos: two people keep their ids,
a face that leaves gets success=0 rows and comes back under its id, a killed CLI run resumes."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from affectllm.paths import PYFEAT_CLIP

import numpy as np
import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def load(path, side=240):
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB").resize((side, side)))


def write(path, frames, fps=10):
    import av

    with av.open(str(path), "w") as out:
        vs = out.add_stream("mpeg4", rate=fps)
        vs.height, vs.width = frames[0].shape[:2]
        vs.pix_fmt = "yuv420p"
        for f in frames:
            for pkt in vs.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
    return path


def sway(img, i, amp=6):
    """The photo shifted a few pixels along a slow circle: the tracker must follow a moving face."""
    dx, dy = int(round(amp * np.sin(i / 5))), int(round(amp * np.cos(i / 7)))
    return np.roll(np.roll(img, dx, 1), dy, 0)


@pytest.fixture(scope="module")
def face():
    from affectllm.perception.face import FacePerceiver

    fp = FacePerceiver()
    yield fp
    fp.close()


@pytest.fixture(scope="module")
def london(shared_data):
    root = shared_data / "faces_london"
    return {k: (load(root / "neutral" / f"{k}_03.jpg"), load(root / "smiling" / f"{k}_08.jpg"))
            for k in ("002", "005")}


def two_person_frames(london, n=60):
    """Person 002 left (neutral -> smiling), person 005 right (smiling -> neutral: the same clip
    mirrored in time), side by side."""
    (a0, a1), (b0, b1) = london["002"], london["005"]
    out = []
    for i in range(n):
        left = sway(a0 if i < n // 2 else a1, i)
        right = sway(b1 if i < n // 2 else b0, n - 1 - i)
        out.append(np.concatenate([left, right], 1))
    return out


def test_two_people_keep_their_ids(tmp_path, face, london):
    from affectllm.perception.frames import FrameAnalyzer

    v = write(tmp_path / "two.mp4", two_person_frames(london))
    frames = list(FrameAnalyzer(face, max_faces=4).rows(v))
    assert len(frames) == 60
    left_ids, right_ids = [], []
    for rows in frames:
        seen = [r for r in rows if r["success"]]
        left_ids += [r["face_id"] for r in seen if r["box_x1"] < 240]
        right_ids += [r["face_id"] for r in seen if r["box_x0"] > 240]
    assert len(left_ids) >= 59 and len(right_ids) >= 59
    main_l = max(set(left_ids), key=left_ids.count)
    main_r = max(set(right_ids), key=right_ids.count)
    assert main_l != main_r
    assert left_ids.count(main_l) >= 0.99 * 60 and right_ids.count(main_r) >= 0.99 * 60
    # the left person smiles in the second half, the right one in the first: AU12 follows
    au12 = {fid: [r["AU12_s"] for rows in frames for r in rows if r["face_id"] == fid and r["success"]]
            for fid in (main_l, main_r)}
    assert np.mean(au12[main_l][35:]) > np.mean(au12[main_l][:25])
    assert np.mean(au12[main_r][:25]) > np.mean(au12[main_r][35:])


def test_face_leaves_and_returns_under_its_id(tmp_path, face, london):
    from affectllm.perception.frames import FrameAnalyzer

    a0 = london["002"][0]
    blank = np.full_like(a0, 90)
    frames = [sway(a0, i) for i in range(15)] + [blank] * 10 + [sway(a0, i) for i in range(15)]
    rows = [r for fr in FrameAnalyzer(face).rows(write(tmp_path / "gap.mp4", frames)) for r in fr]
    assert len(rows) == 40  # one row per frame: the lost face keeps its id for tracking.TTL_S
    assert {r["face_id"] for r in rows} == {0}
    ok = [r["success"] for r in rows]
    assert ok[:15] == [1] * 15 and ok[15:25] == [0] * 10 and ok[25:] == [1] * 15
    assert all(np.isnan(r.get("AU12_r", np.nan)) for r in rows[15:25])


def test_killed_cli_run_resumes(tmp_path, london):
    from affectllm.perception.frame_table import read_table

    a0, a1 = london["002"]
    v = write(tmp_path / "long.mp4", [sway(a0 if (i // 40) % 2 else a1, i) for i in range(400)])
    out = tmp_path / "long.csv"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "affectllm.cli", "perceive", str(v), "--frames", str(out), "--no-progress"]
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = tmp_path / "long.csv.partial"
    deadline = time.time() + 240
    while time.time() < deadline and p.poll() is None:
        if partial.is_file() and partial.read_text().count("\n") > 130:  # two chunks of 64 frames
            break
        time.sleep(0.05)
    assert p.poll() is None, "the run finished before it could be killed"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert not out.exists()
    r = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-1000:]
    df = read_table(out)
    assert df.frame.tolist() == list(range(1, 401)) and set(df.face_id) == {0} and df.success.all()


def test_pyfeat_clip_every_frame_if_present(tmp_path, face):
    clip = PYFEAT_CLIP
    if not clip.is_file():
        pytest.skip(f"{clip} not downloaded (see benchmarks/frames_throughput.py)")
    from affectllm.commands.perceive import frames_to_table
    from affectllm.perception.frame_table import COLUMNS, read_table

    path, n = frames_to_table(str(clip), str(tmp_path / "c.parquet"), max_faces=1, progress=False, face=face)
    df = read_table(path)
    assert list(df.columns) == list(COLUMNS) and n == 472
    assert df.frame.tolist() == list(range(1, 473)) and (df.face_id == 0).all()


def test_live_bars_follow_the_face(london):
    from affectllm.perception.live import LiveFaces

    a0, a1 = london["002"]
    live = LiveFaces(max_faces=1)
    au12 = []
    for i in range(40):
        live.update(sway(a0 if i < 20 else a1, i), t=i / 10)
        au12.append(live.bars()["aus"]["AU12"])
    assert np.mean(au12[25:]) > np.mean(au12[:15]) + 0.5  # the bar rises when the smile appears
    ev = live.events(5.0)
    assert "AU12" in ev[0] and ev[0]["AU12"]["onset_s"] >= 2.0
    live.close()
