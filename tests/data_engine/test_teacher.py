"""Teacher rewrite loop: accept, retry with feedback, drop; HTTP endpoint against a local stub server."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from affectllm.perception.observations import AUObs, AudioObs, FaceObs, Observations
from affectllm.explanation.format import RESPONSE_PREFIX
from affectllm.explanation.template import write_rationale
from data_engine.export import sft_record
from data_engine.sample import Sample
from data_engine.teacher import (HTTPGenerator, Rewriter, TeacherError, TransformersGenerator, canonical,
                                 self_improve)
from data_engine.verify import verify


FACE = FaceObs(box=(0, 0, 90, 90), score=0.9, expression={"happy": 0.7, "neutral": 0.3},
               aus=[AUObs("AU6", 2.7, True), AUObs("AU12", 3.6, True), AUObs("AU4", 0.1, False)])
OBS = Observations(file="/d/clip.mp4", faces=[FACE],
                   audio=AudioObs(duration_s=2.0, descriptors={"pitch": "high, variable pitch", "loudness": "loud"}))
SAMPLE = Sample(id="t/clip", media={"video": "/d/clip.mp4"}, labels=["happiness"], source="t", split="train")


def make_record(seed: int = 0) -> dict:
    text = write_rationale(SAMPLE.id, OBS, ["happiness"], seed=seed, media=("video",)).render()
    rec = sft_record(SAMPLE, OBS, text, labels=["happiness"], taxonomy="ekman7", meta={"generator": "template"})
    assert verify(rec, OBS) == []
    return rec


def draft_of(messages: list[dict]) -> str:
    user = messages[-1]["content"]
    return user.split("Draft rationale:\n", 1)[1].split("\n\nRewrite the draft.", 1)[0]


def good_rewrite(messages):
    d = draft_of(messages)
    return d.replace("Interpretation: ", "Interpretation: Reading the cues together: ")


class Scripted:
    """A deterministic stub generator replaying a list of behaviours, recording what it was sent."""

    def __init__(self, *outputs):
        self.outputs, self.seen = list(outputs), []

    def __call__(self, messages):
        self.seen.append(messages)
        out = self.outputs[min(len(self.seen), len(self.outputs)) - 1]
        return out(messages) if callable(out) else out


def test_accept_on_first_try_renders_canonically_and_verifies():
    gen = Scripted(good_rewrite)
    result = Rewriter(gen, k=3, name="stub")(make_record(), OBS)
    assert result.accepted and len(result.attempts) == 1
    text = result.record["messages"][-1]["content"]
    assert "Reading the cues together" in text and text.startswith("<think>\nObservations:")
    assert result.record["meta"]["generator"] == "teacher:stub" and result.record["meta"]["teacher_attempts"] == 1
    assert verify(result.record, OBS) == []


def test_retry_feeds_back_the_failure_reasons():
    bad = lambda m: good_rewrite(m).replace("AU6 cheek raiser", "AU9 nose wrinkler")  # noqa: E731
    gen = Scripted(bad, good_rewrite)
    result = Rewriter(gen, k=3)(make_record(), OBS)
    assert result.accepted and len(result.attempts) == 2
    assert any("AU9" in r for r in result.attempts[0]["reasons"])
    feedback = gen.seen[1][-1]["content"]
    assert "previous rewrite was rejected" in feedback and "AU9" in feedback


def test_drop_after_k_failures_keeps_the_template_or_drops_when_strict():
    wrong = lambda m: good_rewrite(m).replace("<answer>happiness", "<answer>sadness")  # noqa: E731
    rec = make_record()
    result = Rewriter(Scripted(wrong), k=3)(rec, OBS)
    assert not result.accepted and len(result.attempts) == 3
    assert any(r.startswith("label:") for r in result.reasons)
    assert result.record["messages"][-1]["content"] == rec["messages"][-1]["content"]
    assert result.record["meta"]["teacher"] == "dropped after 3 attempt(s)"
    strict = Rewriter(Scripted(wrong), k=2, strict=True)(rec, OBS)
    assert strict.record is None and len(strict.attempts) == 2


def test_output_continuing_from_the_prefix_and_garbage():
    draft = make_record()["messages"][-1]["content"]
    d = good_rewrite([{"role": "user", "content": f"Draft rationale:\n{draft}\n\nRewrite the draft."}])
    cont = d[len(RESPONSE_PREFIX):]  # a model that continued after the pre-filled prefix
    assert canonical(cont) == d
    with pytest.raises(ValueError, match="format"):
        canonical("I think the person is happy.")
    result = Rewriter(Scripted("I think the person is happy."), k=2)(make_record(), OBS)
    assert not result.accepted and result.reasons[0].startswith("format:")


def test_rewards_gate_the_rewrite():
    zero = lambda completions, **kw: [0.0 for _ in completions]  # noqa: E731
    result = Rewriter(Scripted(good_rewrite), k=1, rewards={"strict": zero})(make_record(), OBS)
    assert not result.accepted and result.reasons == ["reward: strict = 0.0 < 1.0"]
    rewards = pytest.importorskip("train.rewards").REWARDS
    chosen = {k: rewards[k] for k in ("format", "emotion", "consistency")}
    assert Rewriter(Scripted(good_rewrite), k=1, rewards=chosen)(make_record(), OBS).accepted


def test_self_improvement_keeps_only_passing_outputs():
    recs = [make_record(s) for s in range(4)]
    answers = iter([recs[0]["messages"][-1]["content"], "<think>\nObservations:\n- AU20 lip stretcher",
                    recs[2]["messages"][-1]["content"].replace("happiness</answer>", "fear</answer>"),
                    recs[3]["messages"][-1]["content"]])
    prompts = []

    def generate(messages):
        prompts.append(messages)
        return next(answers)

    kept = list(self_improve(recs, lambda r: OBS, generate))
    assert [r["meta"]["generator"] for r in kept] == ["teacher:self", "teacher:self"]
    assert all([m["role"] for m in p] == ["system", "user"] for p in prompts)


class _Handler(BaseHTTPRequestHandler):
    calls: list = []
    status = 200

    def do_POST(self):  # noqa: N802 - http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).calls.append((self.path, self.headers.get("Authorization"), body))
        if type(self).status != 200:
            self.send_response(type(self).status)
            self.end_headers()
            self.wfile.write(b"overloaded")
            return
        reply = {"choices": [{"message": {"role": "assistant", "content": good_rewrite(body["messages"])}}]}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def stub_server():
    _Handler.calls, _Handler.status = [], 200
    server = HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_http_teacher_against_a_local_stub(stub_server, monkeypatch):
    monkeypatch.setenv("STUB_KEY", "sk-test")
    gen = HTTPGenerator(stub_server, "stub-model", api_key_env="STUB_KEY", timeout=5)
    result = Rewriter(gen, k=2)(make_record(), OBS)
    assert result.accepted and result.record["meta"]["generator"] == "teacher:http:stub-model"
    path, auth, body = _Handler.calls[0]
    assert path == "/v1/chat/completions" and auth == "Bearer sk-test" and body["model"] == "stub-model"
    _Handler.status = 500
    with pytest.raises(TeacherError, match="HTTP 500"):
        gen([{"role": "user", "content": "hi"}])
    failed = Rewriter(gen, k=3)(make_record(), OBS)  # unreachable teacher: one try, template kept
    assert not failed.accepted and len(failed.attempts) == 1 and failed.record is not None
    monkeypatch.delenv("STUB_KEY")
    with pytest.raises(TeacherError, match="STUB_KEY"):
        gen([{"role": "user", "content": "hi"}])


def test_local_transformers_teacher_runs_the_loop(tiny_llama):
    model, tok = tiny_llama
    gen = TransformersGenerator("tiny", model=model, tokenizer=tok, max_new_tokens=12, temperature=0.0)
    result = Rewriter(gen, k=2)(make_record(), OBS)
    assert len(result.attempts) == 2 and isinstance(result.attempts[0]["text"], str)
    assert not result.accepted  # a random tiny model cannot write a valid rationale


def test_build_with_a_teacher(tmp_path):
    from data_fakes import make_manifest
    from data_fakes import fake_perceive
    from affectllm.io import jsonl
    from data_engine.build import build

    (tmp_path / "src").mkdir()
    src = make_manifest(tmp_path / "src", n=9)
    rep = build([src], tmp_path / "out", perceive=fake_perceive, hf=False, progress=False,
                teacher=Rewriter(Scripted(good_rewrite), k=2, name="stub"))
    recs = list(jsonl.read(tmp_path / "out" / "sft.jsonl"))
    assert rep["generators"] == {"teacher:stub": 9} and all(verify(r) == [] for r in recs)
    assert rep["config"]["teacher"] == "stub"
