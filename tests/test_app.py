"""The chat app on a tiny saved model: the named ``/explain`` API through gradio_client, what the
server refuses to serve, login, the chat handler's streaming and follow-ups from the same
evidence, notes on missing evidence, and the which-channel-decided comparison."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import torch

from _app_server import REPO, load_app_module, serve
from _tiny_model import tiny_model_dir  # noqa: F401 - fixture
from affectllm.batch.job import ROW_FIRST
from affectllm.perception.observations import AudioObs, AUObs, FaceObs, Observations
from affectllm.ui.attribution import attribute, describe
from affectllm.ui.session import Conversation, notes, pretty


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    from PIL import Image

    d = tmp_path_factory.mktemp("examples")
    Image.new("RGB", (32, 32), (10, 200, 30)).save(d / "example.png")
    (d / "secret.txt").write_text("not for the web")
    return d


@pytest.fixture(scope="module")
def server(tiny_model_dir, example):  # noqa: F811
    s = serve([str(tiny_model_dir)], examples=[str(example / "example.png")], max_file_size="1mb")
    yield s
    s.close()


def _status(url: str) -> int:
    try:
        return urllib.request.urlopen(url, timeout=10).status
    except urllib.error.HTTPError as e:
        return e.code


def test_named_api_returns_the_batch_row(server):
    from gradio_client import Client

    c = Client(server.url, verbose=False)
    assert list(c.view_api(print_info=False, return_format="dict")["named_endpoints"]) == ["/explain"]
    row = c.predict(None, "I can't believe they cancelled it, this is so unfair!", "", api_name="/explain")
    assert set(ROW_FIRST) <= set(row) and row["error"] is None
    assert row["emotion"] == max(row["probabilities"], key=row["probabilities"].get)
    assert row["evidence"]["text"].startswith("I can't believe")
    empty = c.predict(None, "", "", api_name="/explain")
    assert empty["error"] and "nothing to explain" in empty["error"]


def test_queued_api_requests_are_batched_and_each_gets_its_own_row(server, tmp_path):
    from gradio_client import Client, handle_file

    ex = server.pool.get()
    sizes, real = [], ex.explain
    ex.explain = lambda inputs, *a, **k: sizes.append(len(inputs) if isinstance(inputs, list) else 1) or \
        real(inputs, *a, **k)
    bad = tmp_path / "empty.png"
    bad.write_bytes(b"")
    texts = ["I am furious about the delay", "what a lovely surprise", "I miss my old friends"]
    c = Client(server.url, verbose=False)
    try:
        with server.pool.run_lock:  # the first request waits here; the others queue up behind it
            jobs = [c.submit(None, t, "", api_name="/explain") for t in texts]
            jobs.append(c.submit(handle_file(str(bad)), "", "", api_name="/explain"))
            jobs.append(c.submit(None, "so tired of waiting", "why not anger?", api_name="/explain"))
            time.sleep(3)
        rows = [j.result(timeout=120) for j in jobs]
    finally:
        ex.explain = real
    assert [r["evidence"]["text"] for r in rows[:3]] == texts and all(r["error"] is None for r in rows[:3])
    assert "empty.png" in rows[3]["error"] and "empty file" in rows[3]["error"]
    assert rows[4]["evidence"]["text"] == "so tired of waiting"
    assert max(sizes) >= 2  # queued requests with the same question shared one explain call


def test_binds_localhost_and_serves_only_the_examples(server, example):
    assert server.url.startswith("http://127.0.0.1:")
    base = server.url.rstrip("/")
    assert _status(f"{base}/gradio_api/file={example / 'example.png'}") == 200
    for path in (example / "secret.txt", REPO / "app.py", "/etc/passwd"):
        assert _status(f"{base}/gradio_api/file={path}") in (403, 404), path
    assert _status(f"{base}/monitoring") in (403, 404)
    assert _status(base + "/") == 200


def test_login_required_with_auth(tiny_model_dir):  # noqa: F811
    from gradio_client import Client

    s = serve([str(tiny_model_dir)], auth=("ann", "pw-123"))
    try:
        with pytest.raises(Exception):
            Client(s.url, verbose=False)
        row = Client(s.url, auth=("ann", "pw-123"), verbose=False).predict(None, "hi", "", api_name="/explain")
        assert row["error"] is None
    finally:
        s.close()


def test_chat_streams_then_follow_up_reuses_the_evidence(server):
    app = load_app_module()
    ui = app.UI(server.pool)
    perceived = []
    real = server.pool.perception.perceive
    server.pool.perception.perceive = lambda item, *a, **k: perceived.append(item) or real(item, *a, **k)
    try:
        outs = list(ui.respond({"text": "I am so angry, this is unfair!", "files": []}, None, "", None, [],
                               Conversation()))
        chat, conv = outs[-1][0], outs[-1][1]
        assert len(outs) > 3  # streamed: several updates before the final one
        assert chat[0] == {"role": "user", "content": "I am so angry, this is unfair!"}
        assert "**Emotion:" in chat[-1]["content"] and "**Observations:**" in chat[-1]["content"]
        label, decision, row = outs[-1][4], outs[-1][9], outs[-1][10]
        assert abs(sum(label.values()) - 1) < 1e-3 and "words" in decision and row["emotion"] in label
        outs = list(ui.respond({"text": "Why not sadness?", "files": []}, None, "", None, chat, conv))
        chat2, conv2 = outs[-1][0], outs[-1][1]
        assert len(perceived) == 1  # the follow-up did not perceive again
        assert conv2.obs is conv.obs and [t["role"] for t in conv2.turns] == ["assistant", "user", "assistant"]
        assert conv2.turns[1]["content"] == "Why not sadness?" and "**Emotion:" in chat2[-1]["content"]
    finally:
        server.pool.perception.perceive = real


def test_chat_bad_upload_says_why_and_keeps_the_conversation(server, tmp_path):
    app = load_app_module()
    ui = app.UI(server.pool)
    bad = tmp_path / "photo.jpg"
    bad.write_text("just words")
    conv = Conversation()
    outs = list(ui.respond({"text": "", "files": [str(bad)]}, None, "", None, [], conv))
    msg = outs[-1][0][-1]["content"]
    assert "photo.jpg" in msg and "content is text" in msg and str(tmp_path) not in msg


def test_explain_this_moment_answers_from_the_live_stream_with_its_timeline(server):
    from _live_fakes import FakeLive

    from affectllm.ui.live import _Stream

    app = load_app_module()
    ui = app.UI(server.pool, attribution=False)
    outs = list(ui.explain_moment(None, [], Conversation(), None))  # before the webcam started
    assert "Cannot use this input" in outs[-1][0][-1]["content"] and "has not started" in outs[-1][0][-1]["content"]
    fake = FakeLive()
    for x in (0.0, 0.0, 0.4, 1.2, 2.5, 3.1, 2.0, 1.0):  # a smile rising and falling
        fake.update(x)
    ui.live._streams["local"] = _Stream(fake)
    outs = list(ui.explain_moment(None, [], Conversation(), None))
    chat, conv = outs[-1][0], outs[-1][1]
    assert chat[0]["content"].startswith("Explain this moment") and "**Emotion:" in chat[-1]["content"]
    assert conv.obs.video.au_summary["AU12"]["apex_s"] == 0.5  # the sixth frame, 0.1 s apart
    timeline, decision = outs[-1][7], outs[-1][9]
    assert timeline is not None and timeline.size[0] > 300  # the chart of the moment (a PIL image)
    assert "AU12 (lip corner puller) onset 0.30 s, apex 0.50 s" in decision


def test_notes_say_when_face_or_voice_is_missing():
    from affectllm.io.item import Item

    obs = Observations(file="/x/pic.jpg")
    assert any("No face was found in pic.jpg" in n for n in notes(obs, item=Item("pic", image="/x/pic.jpg")))
    obs = Observations(file="/x/a.wav", audio=AudioObs(duration_s=2.0, flags=["silent", "no_speech"]))
    assert any("No speech was heard in a.wav" in n for n in notes(obs))
    obs = Observations(file="/x/v.mp4", errors=["/x/v.mp4: video has no audio track (face evidence only)"])
    n = notes(obs, item=Item("v", video="/x/v.mp4"))
    assert any("No voice could be used" in x for x in n) and any("no audio track" in x for x in n)
    from affectllm.inference import ExplainResult
    from affectllm.explanation.parse import parse

    text = "<think>\nObservations:\n- AU12\nInterpretation: a smile\nConclusion: The face shows happiness.\n</think>\n"
    mixed = ExplainResult("x", parse(text + "<answer>anger</answer>", "ekman7"), Observations(text="hi"))
    assert any("leans to happiness, but the scored answer is anger" in x for x in notes(mixed.observations, mixed))
    same = ExplainResult("x", parse(text + "<answer>happiness</answer>", "ekman7"), Observations(text="hi"))
    assert not any("disagree" in x for x in notes(same.observations, same))


def test_attribution_compares_label_probability_without_each_channel(server):
    ex = server.pool.get()
    face = FaceObs(box=(0, 0, 50, 50), score=0.9, aus=[AUObs("AU6", 2.5, True), AUObs("AU12", 3.5, True)],
                   expression={"happy": 0.8, "neutral": 0.2}, embedding=torch.zeros(8))
    obs = Observations(file="a.jpg", faces=[face], text="This is the worst day of my life.")
    res = ex.explain(obs)
    att = attribute(ex, obs, res.emotion)
    assert att["present"] == ["face", "words"] and set(att["p_without"]) == {"face", "words"}
    assert 0 <= att["p_all"] <= 1 and all(0 <= p <= 1 for p in att["p_without"].values())
    assert len({att["p_all"], *att["p_without"].values()}) > 1  # dropping evidence moves the scores
    drops = {c: att["p_all"] - p for c, p in att["p_without"].items()}
    best = max(drops, key=drops.get)
    assert att["decided_by"] == (best if drops[best] >= 0.05 else "no single channel")
    assert f"p({res.emotion}) with all evidence" in describe(att, res.emotion)
    single = attribute(ex, Observations(text="hello"), res.emotion)
    assert single["decided_by"] == "words" and "Only the **words**" in describe(single, res.emotion)


def test_pretty_turns_tags_into_markdown():
    s = pretty("<think>\nObservations:\n- AU12\nInterpretation: x\nConclusion: y\n</think>\n<answer>joy</answer>")
    assert "<" not in s and "**Observations:**" in s and s.endswith("**Answer:** joy")


def test_app_help_runs():
    res = subprocess.run([sys.executable, str(REPO / "app.py"), "--help"], capture_output=True, text=True,
                         timeout=120, env={"GRADIO_ANALYTICS_ENABLED": "False", "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr[-2000:]
    for opt in ("--host", "--port", "--auth", "--share", "--max-file-size", "--max-seconds"):
        assert opt in res.stdout
