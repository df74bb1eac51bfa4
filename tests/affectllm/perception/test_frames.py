"""Streaming frame analysis on tiny generated videos: decoding order and sampling, rows for frames
without a face, resume of a stopped run (MediaPipe runs; the FER network is a random tiny one)."""

import numpy as np
import pytest

from affectllm.perception import frame_table as ft
from affectllm.perception.frames import FrameAnalyzer, count_frames, decode


def write_video(path, n, fps=10, side=64):
    """An MPEG-4 clip whose frame i is a flat grey of level 4*i (no face anywhere)."""
    import av

    with av.open(str(path), "w") as out:
        vs = out.add_stream("mpeg4", rate=fps)
        vs.width = vs.height = side
        vs.pix_fmt = "yuv420p"
        for i in range(n):
            img = np.full((side, side, 3), (4 * i) % 256, np.uint8)
            for pkt in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
    return path


@pytest.fixture(scope="module")
def face():
    from affectllm.perception.face import FacePerceiver
    from affectllm.weights import FerNet

    import torch

    torch.manual_seed(0)
    fp = FacePerceiver()
    fp.expressions._net = FerNet().eval()  # random weights: these tests are about rows, not expressions
    yield fp
    fp.close()


def test_decode_numbers_every_frame_samples_and_skips(tmp_path):
    v = write_video(tmp_path / "g.mp4", 30)
    got = list(decode(v))
    assert [n for n, *_ in got] == list(range(1, 31)) and count_frames(v) == 30
    assert np.allclose([t for _, t, *_ in got], np.arange(30) / 10, atol=1e-3)
    assert abs(int(got[7][2].mean()) - 28) <= 2  # frame 8 is grey level 28: frames arrive in order
    assert [n for n, *_ in decode(v, fps=2.0)] == [1, 6, 11, 16, 21, 26]
    assert [n for n, *_ in decode(v, fps=2.0, start=12)] == [16, 21, 26]  # same schedule after a resume


def test_frames_without_a_face_give_success_0_rows(tmp_path, face):
    v = write_video(tmp_path / "g.mp4", 12)
    frames = list(FrameAnalyzer(face, max_faces=2).rows(v))
    assert len(frames) == 12
    for n, rows in enumerate(frames, 1):
        assert rows == [{"frame": n, "timestamp": pytest.approx((n - 1) / 10, abs=1e-3), "face_id": -1,
                         "confidence": 0.0, "success": 0, **{f"{a}_c": 0 for a in ft.AU_COLS}}]


def test_missing_file_is_named(tmp_path, face):
    from affectllm.errors import InputError

    with pytest.raises(InputError, match="nope.mp4"):
        next(FrameAnalyzer(face).rows(tmp_path / "nope.mp4"))


def test_stopped_run_resumes_to_one_row_per_frame(tmp_path, face):
    from affectllm.commands.perceive import frames_to_table

    v = write_video(tmp_path / "g.mp4", 40)
    out = tmp_path / "g.csv"
    meta = {"video": str(v.resolve()), "size": v.stat().st_size, "mtime": int(v.stat().st_mtime),
            "fps": None, "max_faces": 4}
    w = ft.FrameTableWriter(out, meta, chunk_frames=8)
    for rows in FrameAnalyzer(face).rows(v):
        w.write_frame(rows)
        if rows[0]["frame"] == 21:
            break  # "killed": frames 1-16 were flushed, 17-21 were still buffered
    w._f.close()  # no flush: the buffered frames are lost as in a kill
    assert not out.exists()
    path, n = frames_to_table(str(v), str(out), resume=True, progress=False, face=face)
    df = ft.read_table(path)
    assert df.frame.tolist() == list(range(1, 41)) and n == 40
    assert (df.success == 0).all() and not out.with_name("g.csv.partial").exists()


def test_frozen_expression_matches_the_eager_classifier(face):
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (64, 64), dtype=np.uint8) for _ in range(37)]  # more than one batch
    probs, embs = FrameAnalyzer(face).expression(crops)
    ref_p, ref_e = face.expressions.run(crops)
    assert probs.shape == (37, 7) and embs.shape == (37, 128)
    assert np.allclose(probs, ref_p.numpy(), atol=1e-5) and np.allclose(embs, ref_e.numpy(), atol=1e-4)
    assert FrameAnalyzer(face).expression([])[0].shape == (0, 7)
