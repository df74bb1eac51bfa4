"""eval.generate and eval.runner on a tiny random model and hand-built observations (no real perception)."""

import json

import pytest
import torch

from affectllm.inference import Explainer
from affectllm.perception.observations import AUObs, AudioObs, FaceObs, Observations
from data_engine.sample import Sample
from eval.generate import drop_modality, generate, open_predictions
from eval.runner import evaluate

FACES = {  # id -> (gold, AU intensities, FER scores)
    "a": ("happiness", {"AU6": 2.8, "AU12": 3.5}, {"happy": 0.8, "neutral": 0.2}),
    "b": ("sadness", {"AU1": 2.0, "AU4": 2.2, "AU15": 2.5}, {"sad": 0.6, "angry": 0.4}),
    "c": ("anger", {"AU4": 3.0, "AU5": 1.5, "AU7": 2.0, "AU23": 2.0}, {"angry": 0.7, "disgust": 0.3}),
    "d": ("neutral", {}, {"neutral": 0.9, "sad": 0.1}),
    "e": ("surprise", {"AU1": 2.5, "AU2": 2.6, "AU5": 2.0, "AU26": 3.0}, {"surprise": 0.9, "fear": 0.1}),
}


def face_obs(key: str) -> Observations:
    _, aus, expr = FACES[key]
    g = torch.Generator().manual_seed(ord(key))
    face = FaceObs(box=(0, 0, 64, 64), score=0.95, expression=dict(expr), embedding=torch.randn(8, generator=g),
                   aus=[AUObs(au, aus.get(au, 0.1), aus.get(au, 0.1) >= 0.5)
                        for au in ("AU1", "AU2", "AU4", "AU5", "AU6", "AU7", "AU12", "AU15", "AU23", "AU26")])
    return Observations(file=f"{key}.jpg", faces=[face], text=f"item {key}")


class FakePerception:
    """Hand-built Observations by file stem; counts calls so tests see perception run once per item."""

    def __init__(self, fail=()):
        self.calls: list[str] = []
        self.fail = set(fail)

    def perceive(self, item):
        key = (item.image or item.id).rsplit("/", 1)[-1].split(".")[0].rstrip("0123456789")
        self.calls.append(key)
        if key in self.fail:
            raise RuntimeError(f"cannot read {key}")
        return face_obs(key)


@pytest.fixture
def make_explainer(tiny_affect_factory):
    def make(seed=0, perception=None, taxonomy="ekman7", batch_size=2):
        model = tiny_affect_factory("llama", seed=seed).eval()
        return Explainer(model, perception=perception or FakePerception(), taxonomy=taxonomy, max_new_tokens=12,
                         batch_size=batch_size, guided=True)
    return make


def samples(keys="abcde"):
    return [Sample(id=f"faces/{k}", media={"image": f"/nowhere/{k}.jpg"}, labels=[FACES[k][0]]) for k in keys]


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_lines_hold_gold_prediction_parts_and_timings(make_explainer, tmp_path):
    out = tmp_path / "p.jsonl"
    info = generate(samples("abc"), make_explainer(), out, "ekman7", model="tiny", progress=False)
    assert info["written"] == 3 and info["errors"] == 0
    recs = read(out)
    assert [r["id"] for r in recs] == ["faces/a", "faces/b", "faces/c"]
    a = recs[0]
    assert a["gold"] == ["happiness"] and a["pred"] in a["probabilities"] and a["error"] is None
    assert a["evidence_aus"] == ["AU6", "AU12"] and set(a["cited_aus"]) <= {"AU6", "AU12"}
    assert a["rationale"].startswith("<think>") and a["observations"] and "interpretation" in a
    assert a["timings"]["perception_s"] >= 0 and a["timings"]["llm_s"] > 0
    assert (a["system"], a["model"], a["taxonomy"]) == ("model", "tiny", "ekman7")


def test_resume_after_kill_finishes_without_loss_or_duplicates(make_explainer, tmp_path):
    full = tmp_path / "full.jsonl"
    generate(samples(), make_explainer(), full, "ekman7", model="tiny", progress=False)
    lines = full.read_bytes().splitlines(keepends=True)
    killed = tmp_path / "killed.jsonl"
    # Killed while writing line 3: two whole lines and half a third one.
    killed.write_bytes(lines[0] + lines[1] + lines[2][: len(lines[2]) // 2])
    perception = FakePerception()
    info = generate(samples(), make_explainer(perception=perception), killed, "ekman7", model="tiny", progress=False)
    assert info == {**info, "written": 3, "skipped": 2}
    assert sorted(perception.calls) == ["c", "d", "e"]  # done items are not perceived again
    after = killed.read_bytes().splitlines(keepends=True)
    assert after[:2] == lines[:2]  # finished lines kept byte for byte
    recs = read(killed)
    assert [r["id"] for r in recs] == [f"faces/{k}" for k in "abcde"]  # no duplicate, none lost
    for new, ref in zip(recs[2:], read(full)[2:]):
        assert new["rationale"] == ref["rationale"] and new["pred"] == ref["pred"]
    # A rerun on the finished file writes nothing.
    again = generate(samples(), make_explainer(), killed, "ekman7", model="tiny", progress=False)
    assert again["written"] == 0 and killed.read_bytes() == b"".join(after)


def test_failing_item_gets_an_error_line_and_the_run_goes_on(make_explainer, tmp_path):
    out = tmp_path / "p.jsonl"
    ex = make_explainer(perception=FakePerception(fail={"b"}))
    info = generate(samples("abc"), ex, out, "ekman7", model="tiny", progress=False)
    recs = read(out)
    assert info["errors"] == 1 and [r["id"] for r in recs] == ["faces/a", "faces/b", "faces/c"]
    assert recs[1]["pred"] is None and "cannot read b" in recs[1]["error"] and recs[1]["gold"] == ["sadness"]
    assert recs[0]["error"] is None and recs[2]["error"] is None


def test_resume_refuses_another_model_or_taxonomy(make_explainer, tmp_path):
    out = tmp_path / "p.jsonl"
    generate(samples("a"), make_explainer(), out, "ekman7", model="tiny", progress=False)
    with pytest.raises(ValueError, match="system/model/taxonomy"):
        open_predictions(out, "model", "other", "ekman7")
    with pytest.raises(ValueError, match="answers in"):
        generate(samples("a"), make_explainer(), out, "emodb7", model="tiny", progress=False)
    generate(samples("ab"), make_explainer(), out, "ekman7", False, model="other", progress=False)  # restart
    assert [r["model"] for r in read(out)] == ["other", "other"]


def test_drop_modality_copies_without_touching_the_original():
    obs = face_obs("a")
    obs.audio = AudioObs(duration_s=1.0, transcript="hi")
    assert drop_modality(obs, "face").faces == [] and obs.faces
    assert drop_modality(obs, "audio").audio is None and obs.audio is not None
    assert drop_modality(obs, "text").text is None and obs.text == "item a"
    with pytest.raises(ValueError):
        drop_modality(obs, "smell")


def _manifest(tmp_path):
    rows = [("a", "dev"), ("b", "dev"), ("c", "dev"), ("d", "dev"),
            ("a", "train"), ("b", "train"), ("e", "train"), ("e", "train")]
    lines = []
    for i, (k, split) in enumerate(rows):
        (tmp_path / f"{k}{i}.jpg").write_bytes(b"\xff\xd8\xff")  # the fake perception never opens it
        lines.append(json.dumps({"id": f"{k}{i}", "image": f"{k}{i}.jpg", "label": FACES[k][0], "split": split}))
    (tmp_path / "m.jsonl").write_text("\n".join(lines) + "\n")
    return f"manifest:{tmp_path / 'm.jsonl'}"


def test_runner_scores_model_and_baselines_on_one_perception(make_explainer, tmp_path):
    source = _manifest(tmp_path)
    perception = FakePerception()
    made = []

    def factory(name, taxonomy, perc):
        made.append(name)
        return make_explainer(seed=1 if name == "base" else 0, perception=perc, taxonomy=taxonomy)

    out = tmp_path / "run"
    m = evaluate(source, out, split="dev", model="tiny", drop=["face"], perception=perception,
                 explainer_factory=factory, progress=False, command="affectllm eval run ...")
    assert sorted(perception.calls) == ["a", "b", "c", "d"]  # once per item, shared by all systems
    assert made == ["tiny", "base"]  # the chosen model is reused by its ablation
    assert set(m["baselines"]) == {"majority", "fer", "prototype", "experts", "base", "drop-face"}
    assert m["n"] == 4 and m["taxonomy"] == "ekman7" and m["model"] == "tiny"
    run = json.loads((out / "run.json").read_text())
    assert set(run["seconds"]) == {"perceive", "model", "majority", "fer", "prototype", "experts", "base", "drop-face"}
    assert run["llm_weights"] == {"model": "float16", "drop-face": "float16", "base": "float16"}  # the config default
    assert run["prior_from"].startswith("the train split") and run["majority_label"] == "surprise"
    assert run["skipped"]["voice"] == "no item has audio or video"
    maj = read(out / "baselines" / "majority.jsonl")
    assert {r["pred"] for r in maj} == {"surprise"} and maj[0]["probabilities"]["surprise"] == 0.5
    fer = {r["id"]: r["pred"] for r in read(out / "baselines" / "fer.jsonl")}
    assert fer == {"manifest/a0": "happiness", "manifest/b1": "sadness", "manifest/c2": "anger",
                   "manifest/d3": "neutral"}
    proto = {r["id"]: r["pred"] for r in read(out / "baselines" / "prototype.jsonl")}
    assert proto["manifest/a0"] == "happiness" and proto["manifest/d3"] == "neutral"
    assert m["baselines"]["fer"]["accuracy"] == 1.0 and m["baselines"]["majority"]["accuracy"] == 0.0
    no_face = read(out / "baselines" / "drop-face.jsonl")
    assert all(r["evidence_aus"] == [] for r in no_face)  # the ablation saw no face
    assert (out / "report.md").read_text().count("affectllm eval run ...") == 1
    # Rerun: everything is done, nothing is rewritten; other settings are refused.
    before = (out / "predictions.jsonl").read_bytes()
    evaluate(source, out, split="dev", model="tiny", drop=["face"], perception=FakePerception(),
             explainer_factory=factory, progress=False)
    assert (out / "predictions.jsonl").read_bytes() == before
    with pytest.raises(ValueError, match="other settings"):
        evaluate(source, out, split="train", model="tiny", perception=FakePerception(),
                 explainer_factory=factory, progress=False)
    with pytest.raises(ValueError, match="other settings"):  # answers differ with the weights' storage
        evaluate(source, out, split="dev", model="tiny", drop=["face"], cpu_weights="int8-head",
                 perception=FakePerception(), explainer_factory=factory, progress=False)


def test_runner_without_train_split_uses_evaluated_items_and_skips_base(make_explainer, tmp_path):
    source = _manifest(tmp_path)
    out = tmp_path / "whole"
    m = evaluate(source, out, model="base", baselines=["majority", "base"], perception=FakePerception(),
                 explainer_factory=lambda n, t, p: make_explainer(perception=p, taxonomy=t), progress=False)
    run = json.loads((out / "run.json").read_text())
    assert m["n"] == 8 and "evaluated items" in run["prior_from"]
    assert "base" in run["skipped"] and set(m["baselines"]) == {"majority"}


def test_voice_baseline_maps_the_classifier_and_errors_without_speech():
    from eval.baselines import voice_record

    s = Sample(id="emodb/x", media={"audio": "/x.wav"}, labels=["sadness"])
    speech = Observations(file="/x.wav", audio=AudioObs(duration_s=2.0, expression={
        "sadness": 0.5, "boredom": 0.3, "anger": 0.2}))
    rec = voice_record(s, (speech, 0.1, None), "emodb7")
    assert rec["pred"] == "sadness" and rec["error"] is None
    assert rec["probabilities"]["boredom"] == 0.3 and rec["raw"]["anger"] == 0.2
    ekman = voice_record(s, (speech, 0.1, None), "ekman7")  # boredom has no Ekman label: renormalised
    assert ekman["probabilities"]["sadness"] == pytest.approx(0.5 / 0.7, abs=1e-4)
    silent = Observations(file="/x.wav", audio=AudioObs(duration_s=2.0, flags=["silent"]))
    bad = voice_record(s, (silent, 0.1, None), "emodb7")
    assert bad["pred"] is None and "emodb/x" in bad["error"] and "silent" in bad["error"]
