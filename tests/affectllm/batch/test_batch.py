"""The batch job on a tiny model: input listing, one row per input in order, formats, resume after
SIGKILL, and sharding over two processes (in process and under ``accelerate launch``)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from _tiny_model import tiny_model_dir  # noqa: F401 - fixture
from affectllm.batch.job import error_reason, run_batch
from affectllm.batch.inputs import expand_inputs

REPO = Path(__file__).resolve().parents[3]
WORDS = ["I am furious about this!", "what a lovely day", "I miss her so much", "oh no, a spider",
         "that smell is revolting", "wow, I did not expect that", "the meeting is at noon"]


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "CUDA_VISIBLE_DEVICES": "",
            "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1",
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}


def _text_files(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = folder / f"t{i:03d}.txt"
        p.write_text(WORDS[i % len(WORDS)] + f" (note {i})\n")
        out.append(p)
    return out


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def explainer(tiny_model_dir):  # noqa: F811
    from affectllm.batch.job import load_explainer

    return load_explainer(str(tiny_model_dir), batch_size=4, max_new_tokens=12, cache=False)


def test_expand_inputs_folders_globs_manifests(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    for rel in ("d/b.txt", "d/a.txt", "d/sub/c.wav", "d/.hidden.txt"):
        (tmp_path / rel).write_text("x")
    (tmp_path / "m.csv").write_text("path,text,id\nd/a.txt,hello,first\n../outside.jpg,,esc\n"
                                    "/etc/passwd,,abs\nd/b.txt\n,only words,\n,,\n")
    (tmp_path / "m.jsonl").write_text('{"path": "d/a.txt", "id": "j1"}\n{broken\n{"text": 3}\n{"id": "none"}\n')
    items = expand_inputs([str(tmp_path / "d"), str(tmp_path / "d" / "*.txt"), str(tmp_path / "m.csv"),
                           str(tmp_path / "m.jsonl"), str(tmp_path / "nope.jpg"), str(tmp_path / "*.mp4")])
    ids = [i.id for i in items]
    assert len(ids) == len(set(ids))  # unique: the journal resumes by id
    names = [Path(i.path).name if i.path else None for i in items]
    assert names[:5] == ["a.txt", "b.txt", "c.wav", "a.txt", "b.txt"]  # sorted, recursive, hidden skipped
    assert ids[3].endswith("a.txt#2")
    by_id = {i.id: i for i in items}
    assert by_id["first"].text == "hello" and by_id["first"].path == str((tmp_path / "d/a.txt").resolve())
    assert "m.csv line 3" in by_id["esc"].error and "outside" in by_id["esc"].error
    assert "m.csv line 4" in by_id["abs"].error and "absolute" in by_id["abs"].error
    short = [i for i in items if i.where.endswith("m.csv line 5")][0]
    assert "missing column(s) text, id" in short.error
    assert [i.text for i in items if i.where.endswith("line 6")] == ["only words"]
    assert not [i for i in items if i.where.endswith("m.csv line 7")]  # blank row skipped
    jl = [i for i in items if "m.jsonl" in i.where]
    assert [i.error is None for i in jl] == [True, False, False, False]
    assert "not valid JSON" in jl[1].error and "must be strings" in jl[2].error and "needs a 'path'" in jl[3].error
    assert items[-2].error.endswith("file not found") and "matches no file" in items[-1].error


def test_rows_in_input_order_with_errors_and_summary(tmp_path, explainer):
    files = _text_files(tmp_path / "in", 5)
    (tmp_path / "in" / "empty.jpg").write_bytes(b"")
    (tmp_path / "in" / "words.jpg").write_text("hello there")
    out = tmp_path / "out" / "preds.jsonl"
    s = run_batch([str(tmp_path / "in"), str(tmp_path / "missing.wav")], out, explainer=explainer,
                  batch_size=3, progress=False)
    rows = _rows(out)
    expected = sorted(str(p) for p in tmp_path.joinpath("in").iterdir()) + [str(tmp_path / "missing.wav")]
    assert [r["id"] for r in rows] == expected
    for r in rows:
        for k in ("id", "emotion", "probabilities", "aus", "cues", "rationale", "timings", "error"):
            assert k in r
    ok = [r for r in rows if not r["error"]]
    assert len(ok) == len(files) and all(r["emotion"] in r["probabilities"] for r in ok)
    errs = {Path(r["id"]).name: r["error"] for r in rows if r["error"]}
    assert "empty file" in errs["empty.jpg"] and "content is text" in errs["words.jpg"]
    assert "file not found" in errs["missing.wav"]
    assert s["n"] == 8 and s["ok"] == 5 and s["errors"] == 3 and s["processed"] == 8
    assert set(s["by_reason"]) == {"empty file", "named like an image file", "file not found"}
    with pytest.raises(FileExistsError, match="--resume"):
        run_batch([str(tmp_path / "in")], out, explainer=explainer, progress=False)


def test_error_reason_groups_without_names_or_numbers():
    assert error_reason({"id": "a/x.jpg", "error": "a/x.jpg: image is only 1x1 pixels; at least 16x16"}) \
        == "image is only NxN pixels"
    assert error_reason({"id": "r7", "error": "m.csv line 9: '..' leads outside the dataset root /d (path 'x')"}) \
        == "'..' leads outside the dataset root PATH"
    assert error_reason({"id": "k", "error": "/d/c.wav: corrupt audio: decoding failed (x)"}) == "corrupt audio"


def test_evidence_flags_collect_caveats():
    from affectllm.batch.job import evidence_flags

    face = {"flags": ["small_face"], "aus": []}
    assert evidence_flags({"faces": [face], "audio": {"flags": ["silent", "no_speech"]}}) == \
        ["small_face", "silent", "no_speech"]
    assert evidence_flags({"faces": [], "video": {"has_audio": False}}) == ["no_face", "no_audio"]
    assert evidence_flags({"faces": [face], "video": {"has_audio": True}, "audio": {"flags": []}}) == ["small_face"]
    assert evidence_flags({}) == []


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_csv_and_parquet_written_at_the_end_from_the_journal(tmp_path, explainer, fmt):
    _text_files(tmp_path / "in", 3)
    (tmp_path / "in" / "zero.wav").write_bytes(b"")
    out = tmp_path / f"preds.{fmt}"
    run_batch([str(tmp_path / "in")], out, explainer=explainer, progress=False)
    df = pd.read_csv(out) if fmt == "csv" else pd.read_parquet(out)
    assert list(df["id"]) == [r["id"] for r in _rows(tmp_path / f"preds.{fmt}.jsonl")]
    assert len(df) == 4 and df["error"].notna().sum() == 1
    probs = json.loads(df["probabilities"].iloc[0])  # nested fields as JSON strings
    assert abs(sum(probs.values()) - 1) < 1e-2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", f"preds.{fmt}", f"preds.{fmt}.jsonl"]  # no temp


def test_shards_take_every_nth_item_and_rank0_merges_in_order(tmp_path, explainer):
    files = _text_files(tmp_path / "in", 5)
    out = tmp_path / "preds.jsonl"
    r1 = run_batch([str(tmp_path / "in")], out, explainer=explainer, progress=False, rank=1, world=2)
    shard = tmp_path / "preds.jsonl.shard1of2.jsonl"
    assert r1["n"] == 2 and [r["id"] for r in _rows(shard)] == [str(files[1]), str(files[3])]
    s = run_batch([str(tmp_path / "in")], out, explainer=explainer, progress=False, rank=0, world=2)
    assert [r["id"] for r in _rows(out)] == [str(f) for f in files]
    assert s["processed"] == 3 and not shard.exists()  # merged, then removed


def test_resume_after_sigkill_has_no_duplicate_and_no_missing_row(tmp_path, tiny_model_dir):  # noqa: F811
    files = _text_files(tmp_path / "in", 40)
    out = tmp_path / "preds.jsonl"
    cmd = [sys.executable, "-m", "affectllm.batch", str(tmp_path / "in"), "--out", str(out), "--model",
           str(tiny_model_dir), "--batch-size", "1", "--max-new-tokens", "8", "--no-cache", "--quiet"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and out.read_bytes().count(b"\n") >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = out.read_bytes().count(b"\n")
    assert 3 <= first < 40
    with open(out, "ab") as f:  # what a kill in the middle of a write leaves behind
        f.write(b'{"id": "' + str(files[first]).encode() + b'", "emotion": "ang')
    res = subprocess.run(cmd + ["--resume"], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "cut a torn last line" in res.stderr
    assert f"{40 - first} explained now, {first} done earlier" in res.stderr
    rows = _rows(out)
    assert [r["id"] for r in rows] == [str(f) for f in files]  # in order, none twice, none missing
    assert all(r["error"] is None and r["emotion"] for r in rows)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_accelerate_launch_two_cpu_processes(tmp_path, tiny_model_dir):  # noqa: F811
    files = _text_files(tmp_path / "in", 6)
    (tmp_path / "in" / "zz_empty.png").write_bytes(b"")
    out = tmp_path / "preds.csv"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
           str(REPO / "train" / "accelerate" / "multi_cpu.yaml"), "--num_processes", "2",
           "--main_process_port", str(_free_port()), "-m", "affectllm.batch", str(tmp_path / "in"),
           "--out", str(out), "--model", str(tiny_model_dir), "--max-new-tokens", "8", "--no-cache", "--quiet"]
    res = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    df = pd.read_csv(out)
    assert list(df["id"]) == [str(f) for f in files] + [str(tmp_path / "in" / "zz_empty.png")]
    assert df["error"].notna().sum() == 1 and df["emotion"].notna().sum() == 6
    assert "6 ok, 1 error(s) of 7" in res.stderr
    assert not list(tmp_path.glob("preds.csv.shard*"))
