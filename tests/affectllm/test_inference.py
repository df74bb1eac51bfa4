"""Explainer on a tiny random model: structure, grounding, batching, streaming, per-item errors."""

import pytest
import torch

from affectllm.inference import Explainer, ExplainResult, evidence_anchors
from affectllm.perception.observations import AUObs, AudioObs, FaceObs, Observations


def _face_obs(name, aus, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    face = FaceObs(box=(0, 0, 50, 50), score=0.9, aus=[AUObs(a, i, i >= 0.5) for a, i in aus],
                   expression={"happy": 0.7, "neutral": 0.3}, embedding=torch.randn(d, generator=g))
    return Observations(file=name, faces=[face])


@pytest.fixture
def explainer(tiny_affect_factory):
    model = tiny_affect_factory("llama").eval()
    return Explainer(model, perception=None, max_new_tokens=24, guided=True)


def test_guided_result_is_grounded_and_scored(explainer):
    obs = _face_obs("happy.jpg", [("AU6", 2.8), ("AU12", 3.6), ("AU4", 0.2)])
    res = explainer.explain(obs)
    assert isinstance(res, ExplainResult) and res.error is None
    d = res.to_dict()
    assert set(d["cited_aus"]) <= set(d["evidence_aus"]) == {"AU6", "AU12"}
    assert d["emotion"] in d["probabilities"]
    assert sum(d["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert d["emotion"] == max(d["probabilities"], key=d["probabilities"].get)
    assert d["rationale"].startswith("<think>\nObservations:\n- AU12")  # strongest AU first
    assert "<answer>" in d["rationale"] and d["rationale"].endswith("</answer>")


def test_soft_face_tokens_change_the_answer_scores(tiny_affect_factory):
    model = tiny_affect_factory("llama", encoders={"face": {"evidence": "both"}}).eval()
    ex = Explainer(model, max_new_tokens=8)
    a = ex.explain(_face_obs("a.jpg", [("AU12", 3.0)], seed=1)).answer.llm_probabilities
    b = ex.explain(_face_obs("a.jpg", [("AU12", 3.0)], seed=2)).answer.llm_probabilities
    assert a != b  # only the face embedding differs, so soft tokens reached the LLM's own scores


def test_batched_equals_one_by_one(explainer):
    items = [_face_obs("a.jpg", [("AU6", 2.0), ("AU12", 3.0)]),
             _face_obs("b.jpg", [("AU1", 3.0), ("AU4", 2.5), ("AU15", 2.0)], seed=3),
             Observations(text="I can't believe they cancelled it, this is so unfair!")]
    batched = [r.to_dict() for r in explainer.explain(items)]
    single = [explainer.explain(x).to_dict() for x in items]
    for b, s in zip(batched, single):
        assert b["rationale"] == s["rationale"]
        assert b["emotion"] == s["emotion"]
        for k in b["probabilities"]:
            assert b["probabilities"][k] == pytest.approx(s["probabilities"][k], abs=1e-4)


def test_stream_yields_the_same_text_as_batch(explainer):
    obs = _face_obs("a.jpg", [("AU6", 2.0), ("AU12", 3.0)])
    pieces = list(explainer.explain(obs, stream=True))
    final = pieces[-1]
    assert isinstance(final, ExplainResult)
    assert final.explanation.text == explainer.explain(obs).explanation.text
    streamed = "".join(pieces[:-1])  # the model's draft, closed by the decided answer's tag
    assert streamed.endswith(f"<answer>{final.emotion}</answer>")
    if final.answer.rationale_source == "model":
        assert streamed == final.explanation.text
    else:  # the draft failed the verifier: the result says so and holds the template
        assert final.answer.rejected and final.answer.rejected[0]["flags"]


def test_item_without_evidence_errors_and_batch_goes_on(explainer):
    bad = Observations(file="broken.jpg", errors=["broken.jpg: not an image (starts with text)"])
    good = _face_obs("ok.jpg", [("AU12", 3.0)])
    res = explainer.explain([bad, good])
    assert res[0].error and "broken.jpg" in res[0].error and res[0].explanation is None
    assert res[1].error is None and res[1].emotion is not None


def test_prompt_length_guard(explainer):
    explainer.config.llm.max_prompt_tokens = 64
    res = explainer.explain(Observations(text="word " * 500))
    assert res.error and "exceeds the limit" in res.error


def test_anchors_follow_evidence_mode():
    obs = _face_obs("a.jpg", [("AU6", 2.0), ("AU12", 3.0)])
    obs.audio = AudioObs(duration_s=2.0, transcript="hello", descriptors={"pitch": "high pitch"})
    assert evidence_anchors(obs, {}) == ["AU12 lip corner puller, intensity C:",
                                         "AU6 cheek raiser, intensity B:", "Voice:", "Words spoken:"]
    assert evidence_anchors(obs, {"face": "soft", "audio": "soft"}) == []


def test_unreadable_path_is_an_error_row_not_a_crash(explainer, tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    res = explainer.explain([str(empty), Observations(text="What a lovely surprise!")])
    assert res[0].error and "empty.jpg" in res[0].error
    assert res[1].error is None and res[1].emotion is not None
    single = explainer.explain(str(empty))
    assert single.error and single.explanation is None


def test_untrained_modality_items_are_guided_others_free(tiny_affect_factory):
    model = tiny_affect_factory("llama", prompting={"guided_modalities": ["face"]},
                                encoders={"face": {"evidence": "text"}}).eval()
    ex = Explainer(model, max_new_tokens=24)
    assert ex.guided is False  # LoRA present: free generation by default
    face, text = ex.explain([_face_obs("a.jpg", [("AU12", 3.0)]), Observations(text="So unfair!")])
    assert face.explanation.text.startswith("<think>\nObservations:\n- AU12")  # anchored on evidence
    assert not text.explanation.text.startswith("<think>\nObservations:\n- Words:")  # free, no anchor


def test_the_prompt_carries_the_decided_answer_when_the_llm_has_no_say(explainer, monkeypatch):
    """The experts decide before generation (the shipped pools give the LLM no weight), so the LLM is
    asked to explain that answer; the shown answer is the decision whatever the LLM scores."""
    import affectllm.generation.guided as guided

    seen = []
    real = guided.generate_rationales

    def spy(model, batch, *a, **k):
        seen.extend(batch.prompts)
        return real(model, batch, *a, **k)

    monkeypatch.setattr(guided, "generate_rationales", spy)
    res = explainer.explain(_face_obs("happy.jpg", [("AU6", 2.8), ("AU12", 3.6)]))
    p = res.answer.probabilities[res.emotion]
    assert res.emotion == "happiness" and res.answer.decision.emotion == "happiness"
    assert f"Decided answer: happiness (probability {p:.2f})." in seen[0]
    assert seen[0].index("Evidence:") < seen[0].index("Decided answer:")


def test_a_failed_greedy_rationale_gets_sampled_candidates_before_the_template(tiny_affect_factory):
    model = tiny_affect_factory("llama").eval()
    obs = _face_obs("happy.jpg", [("AU6", 2.8), ("AU12", 3.6)])
    one = Explainer(model, max_new_tokens=16, guided=True, candidates=1).explain(obs)
    three = Explainer(model, max_new_tokens=16, guided=True, candidates=3, merge_lora=False).explain(obs)
    # a random tiny model never passes the verifier: 1 and 3 rejected candidates, then the template
    assert one.to_dict()["rationale_source"] == three.to_dict()["rationale_source"] == "template"
    assert len(one.answer.rejected) == 1 and len(three.answer.rejected) == 3
    assert three.to_dict()["rationale"] == one.to_dict()["rationale"]  # the same verified template
    with pytest.raises(ValueError, match="candidates must be at least 1"):
        Explainer(model, candidates=0, merge_lora=False)


def test_template_modalities_skip_drafts_for_those_items_only(tiny_affect_factory, monkeypatch):
    import affectllm.generation.guided as guided

    model = tiny_affect_factory("llama").eval()
    face = _face_obs("happy.jpg", [("AU6", 2.8), ("AU12", 3.6)])
    drafted = Explainer(model, max_new_tokens=8, guided=True, candidates=1, merge_lora=False).explain(face)
    assert len(drafted.answer.rejected) == 1  # without the setting, the face item is drafted

    calls = []
    real = guided.generate_rationales
    monkeypatch.setattr(guided, "generate_rationales", lambda *a, **k: calls.append(1) or real(*a, **k))
    exp = Explainer(model, max_new_tokens=8, guided=True, candidates=1, merge_lora=False,
                    template_modalities=["face"])
    res = exp.explain(face)
    assert calls == []  # no draft for a face-only item
    assert res.to_dict()["rationale_source"] == "template" and res.answer.rejected == []
    assert res.to_dict()["rationale"] == drafted.to_dict()["rationale"]  # the same verified template
    assert any("drafts no rationale for face input" in w for w in res.warnings)
    streamed = list(exp.explain(face, stream=True))
    assert calls == [] and streamed[-1].to_dict()["rationale"] == res.to_dict()["rationale"]
    # a first-turn question gets the template too; a follow-up goes to the LLM, so does a face with words
    exp.explain(face, question="What emotion is this?")
    assert calls == []
    exp.explain(face, question="Why not sadness?",
                history=[{"role": "user", "content": "What emotion is this?"},
                         {"role": "assistant", "content": res.to_dict()["rationale"]}])
    assert len(calls) == 1
    with_text = _face_obs("happy.jpg", [("AU6", 2.8), ("AU12", 3.6)])
    with_text.text = "what a lovely day"
    Explainer(model, max_new_tokens=8, guided=True, candidates=1, merge_lora=False, text_expert=False,
              template_modalities=["face"]).explain(with_text)
    assert len(calls) == 2


def test_the_decision_panel_says_why_the_template_is_shown(tiny_affect_factory):
    from affectllm.ui.decision_panel import decision_markdown

    model = tiny_affect_factory("llama").eval()
    face = _face_obs("happy.jpg", [("AU6", 2.8), ("AU12", 3.6)])
    failed = Explainer(model, max_new_tokens=8, guided=True, candidates=1, merge_lora=False).explain(face)
    skipped = Explainer(model, max_new_tokens=8, guided=True, candidates=1, merge_lora=False,
                        template_modalities=["face"]).explain(face)
    assert "failed the verifier" in decision_markdown(failed)
    said = decision_markdown(skipped)
    assert "failed the verifier" not in said and "none was written" in said
