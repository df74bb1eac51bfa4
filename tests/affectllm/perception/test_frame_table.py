"""The per-frame table: OpenFace column names, dtypes, chunked writing, Parquet, resume after a torn write."""

import numpy as np
import pytest

from affectllm.perception import frame_table as ft


def face_row(frame, fid, t=None, value=1.0):
    r = {c: value for c in ft.COLUMNS}
    r.update(frame=frame, face_id=fid, timestamp=frame / 25 if t is None else t, success=1)
    r.update({f"{a}_c": 1 for a in ft.AU_COLS})
    return r


def no_face_row(frame):
    return {"frame": frame, "timestamp": frame / 25, "face_id": -1, "confidence": 0.0, "success": 0,
            **{f"{a}_c": 0 for a in ft.AU_COLS}}


def test_columns_follow_openface_names_and_order():
    c = ft.COLUMNS
    assert c[:5] == ("frame", "timestamp", "face_id", "confidence", "success")
    assert ("pose_Rx", "pose_Ry", "pose_Rz") == c[c.index("pose_Rx"):c.index("pose_Rx") + 3]
    assert "AU01_r" in c and "AU12_c" in c and "AU12_s" in c and "AU43_r" in c and "AU1_r" not in c
    assert c.index("AU43_r") < c.index("AU01_c") < c.index("AU43_c") < c.index("AU01_s")
    assert len(set(c)) == len(c)
    from affectllm.weights import FER_LABELS

    assert ft.FER_LABELS == tuple(FER_LABELS)  # the table copies the label order without importing torch


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_written_table_reads_back_with_dtypes_and_nan_for_unmeasured(tmp_path, suffix):
    w = ft.FrameTableWriter(tmp_path / f"t{suffix}", {"video": "x"}, chunk_frames=2)
    w.write_frame([face_row(1, 0, value=0.25), face_row(1, 1, value=2.5)])
    w.write_frame([no_face_row(2)])
    w.write_frame([face_row(3, 0, value=-1.75)])
    out = w.finish()
    assert out.is_file() and not w.partial.exists() and not w.meta_path.exists()
    df = ft.read_table(out)
    assert list(df.columns) == list(ft.COLUMNS)
    assert {c: str(t) for c, t in df.dtypes.items()} == ft.column_dtypes()
    assert df.frame.tolist() == [1, 1, 2, 3] and df.face_id.tolist() == [0, 1, -1, 0]
    assert df.success.tolist() == [1, 1, 0, 1]
    assert np.isnan(df.loc[2, "AU12_r"]) and df.loc[2, "AU12_c"] == 0  # no face: not measured, not absent
    assert df.loc[1, "AU12_r"] == 2.5 and df.loc[3, "AU12_s"] == -1.75


def test_bad_suffix_is_refused(tmp_path):
    with pytest.raises(ValueError, match="csv or .parquet"):
        ft.FrameTableWriter(tmp_path / "t.json", {})


def test_resume_drops_torn_tail_and_last_frame(tmp_path):
    out = tmp_path / "t.csv"
    w = ft.FrameTableWriter(out, {"video": "x"}, chunk_frames=1)
    for n in range(1, 6):
        w.write_frame([face_row(n, 0), face_row(n, 3)])
    w.close()  # killed: the partial stays
    with open(w.partial, "a") as f:
        f.write("6,0.24,0,0.5,1,1,2")  # a torn line from the kill
    r = ft.FrameTableWriter(out, {"video": "x"}, resume=True)
    # frame 5 is the last present: it may be half-written in general, so it is recomputed
    assert r.resume_frame == 5 and r.n_rows == 8 and r.max_face_id == 3
    assert [int(x["face_id"]) for x in r.last_rows] == [0, 3] and r.last_rows[0]["frame"] == "4"
    r.write_frame([face_row(5, 0), face_row(5, 3)])
    df = ft.read_table(r.finish())
    assert df.frame.tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_resume_with_other_settings_names_them(tmp_path):
    out = tmp_path / "t.csv"
    w = ft.FrameTableWriter(out, {"video": "x", "fps": None})
    w.write_frame([face_row(1, 0)])
    w.close()
    with pytest.raises(ValueError, match="fps"):
        ft.FrameTableWriter(out, {"video": "x", "fps": 5.0}, resume=True)


def test_resume_without_partial_starts_fresh(tmp_path):
    w = ft.FrameTableWriter(tmp_path / "t.csv", {}, resume=True)
    assert w.resume_frame == 0 and w.last_rows == []
    w.write_frame([no_face_row(1)])
    assert len(ft.read_table(w.finish())) == 1
