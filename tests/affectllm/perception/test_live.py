"""Live mode without a face (MediaPipe runs, random tiny FER net): rows per frame, bounded history,
empty bars and events; the UI timeline text of events."""

import numpy as np
import pytest

from affectllm.perception.frame_table import AU_COLS


@pytest.fixture(scope="module")
def live():
    import torch

    from affectllm.perception.face import FacePerceiver
    from affectllm.perception.frames import FrameAnalyzer
    from affectllm.perception.live import LiveFaces
    from affectllm.weights import FerNet

    torch.manual_seed(0)
    fp = FacePerceiver()
    fp.expressions._net = FerNet().eval()
    lv = LiveFaces(FrameAnalyzer(fp), history_s=1.0)
    yield lv
    lv.close()
    fp.close()


def test_blank_frames_give_no_face_rows_and_bounded_history(live):
    live.reset()
    for i in range(30):
        rows = live.update(np.full((720, 1280, 3), 40 + i, np.uint8), t=i / 10)
        assert rows == [{"frame": i + 1, "timestamp": i / 10, "face_id": -1, "confidence": 0.0, "success": 0,
                         **{f"{a}_c": 0 for a in AU_COLS}}]
    assert len(live.history) == 11  # 1 s of history at 10 frames a second (both ends kept)
    assert live.bars() == {} and live.events(5.0) == {}
    assert [r["frame"] for r in live.window(0.45)] == [26, 27, 28, 29, 30]


def test_events_text_names_onset_apex_and_letter():
    from affectllm.ui.timeline import events_text

    ev = {0: {"AU12": {"onset_s": 1.25, "apex_s": 2.0, "peak": 3.1, "frames": 9}}, 3: {}}
    text = events_text(ev, {0: 40, 3: 6})
    assert text.splitlines() == [
        "face 0 (40 frames): AU12 (lip corner puller) onset 1.25 s, apex 2.00 s, peak 3.1 (C)",
        "face 3 (6 frames): no AU reaches presence"]
    assert events_text({}) == "No face was found in the video."
