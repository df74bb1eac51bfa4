"""The bad-input battery through the batch job and through the app's ``/explain`` API.

Zero-byte, truncated and mislabelled images, a 50-megapixel header, 1x1, CMYK, 16-bit and
animated images, 0.1 s / silent / 8 kHz stereo / corrupt audio, videos without sound or face,
100,000 characters of text, invalid UTF-8 and manifest rows escaping their folder or missing
columns: each gives an error or a flag naming that item, the output stays valid JSONL, and the
server keeps answering. Perception is real (mediapipe, Whisper) and runs once per file per path.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _app_server import serve
from _bad_files import EXPECT, LONG_TEXT_CHARS, make_battery, write_manifest
from _tiny_model import tiny_model_dir  # noqa: F401 - fixture
from affectllm.batch.job import ROW_FIRST, run_batch

DECODE_FAILURES = ("corrupt", "truncated", "not an image", "cannot read image")


def check(name: str, row: dict) -> None:
    """``row`` (a batch row or an API answer) meets ``EXPECT[name]``."""
    kind, words = EXPECT[name]
    err = row.get("error") or ""
    ev = row.get("evidence") or {}
    flags = row.get("flags") or []
    warnings = " ".join(row.get("warnings") or [])
    assert set(ROW_FIRST) <= set(row), name
    if kind == "error":
        assert err and name in err, (name, err)
        assert any(w in err for w in words), (name, err)
        assert row["emotion"] is None
    elif kind == "flag":
        assert not err, (name, err)
        assert any(w in flags for w in words), (name, flags)
    elif kind == "flag_or_error":
        assert (err and name in err) or any(w in flags for w in words), (name, err, flags)
    elif kind == "ok":
        assert not err and row["emotion"] and ev.get("audio"), (name, err)
    elif kind == "decoded":  # the image decodes; no face in it is then an error or an empty face list
        assert not any(w in err for w in DECODE_FAILURES), (name, err)
        assert (err and name in err) or ev.get("faces") == [], (name, err, ev.get("faces"))
    elif kind == "warning":
        assert any(w in warnings for w in words), (name, warnings)
        assert not err or "exceeds the limit" in err, (name, err)  # a tiny tokenizer may still overflow


@pytest.fixture(scope="module")
def battery(tmp_path_factory):
    folder = tmp_path_factory.mktemp("battery")
    files = make_battery(folder)
    return folder, files, write_manifest(folder, files)


@pytest.fixture(scope="module")
def server(tiny_model_dir):  # noqa: F811
    s = serve([str(tiny_model_dir)], max_seconds=30.0, max_file_size="2mb")
    yield s
    s.close()


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server.url, verbose=False)


def test_battery_through_the_batch_job(battery, server, tmp_path):
    folder, files, manifest = battery
    out = tmp_path / "preds.jsonl"
    # the server's Explainer: one set of perceivers (and Whisper loads) for both paths
    s = run_batch([str(manifest)], out, explainer=server.pool.get(), batch_size=4, progress=False)
    lines = out.read_text().splitlines()
    rows = [json.loads(line) for line in lines]  # valid JSONL, one object a line
    by_id = {r["id"]: r for r in rows}
    assert len(rows) == len(by_id) == len(files) + 4  # ",," is a blank row, not an item
    for name in files:
        check(name, by_id[name])
    assert "outside" in by_id["escape_up"]["error"] and "manifest.csv line" in by_id["escape_up"]["error"]
    assert "outside" in by_id["escape_mid"]["error"]
    assert "absolute" in by_id["escape_abs"]["error"]
    missing = [r for r in rows if r["id"].startswith(str(manifest))]
    assert len(missing) == 1 and "missing column(s) text, id" in missing[0]["error"]
    assert s["n"] == len(rows) and s["ok"] + s["errors"] == len(rows)
    assert s["by_reason"] and all(str(folder) not in r for r in s["by_reason"])


@pytest.mark.parametrize("name", list(EXPECT))
def test_battery_through_the_app_api(battery, client, name):
    from gradio_client import handle_file

    _, files, _ = battery
    row = client.predict(handle_file(str(files[name])), "", "", api_name="/explain")
    check(name, row)
    assert "/tmp/gradio" not in json.dumps(row)  # server paths are not shown to the client


def test_app_api_long_text_and_keeps_serving(client, battery):
    row = client.predict(None, "I feel great today! " * (LONG_TEXT_CHARS // 20), "", api_name="/explain")
    assert any("cut" in w for w in row["warnings"]), row["warnings"]
    assert not row["error"] or "exceeds the limit" in row["error"]
    ok = client.predict(None, "I am so happy to see you", "why?", api_name="/explain")
    assert ok["error"] is None and ok["emotion"] in ok["probabilities"]


def test_app_refuses_uploads_over_the_size_limit(client, tmp_path):
    from gradio_client import handle_file

    big = tmp_path / "big.wav"
    big.write_bytes(b"RIFF" + b"\0" * (3 << 20))  # 3 MB against a 2 MB limit
    with pytest.raises(Exception):
        client.predict(handle_file(str(big)), "", "", api_name="/explain")
    ok = client.predict(None, "still there?", "", api_name="/explain")
    assert ok["error"] is None


def test_app_refuses_clips_over_the_duration_limit(server, tmp_path):
    from gradio_client import Client, handle_file

    from _bad_files import _wav

    long = tmp_path / "long.wav"
    _wav(long, 31.0, sr=8000)
    row = Client(server.url, verbose=False).predict(handle_file(str(long)), "", "", api_name="/explain")
    assert row["error"] and "long.wav" in row["error"] and "limit" in row["error"]
    assert Path(row["id"]).name == "long.wav"
