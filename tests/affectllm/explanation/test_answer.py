"""explanation.answer.settle: the decided label, and a rationale that passed the verifier or says it did not."""

from __future__ import annotations

from affectllm.decision.pool import DecisionPool, prior_pool
from affectllm.explanation.answer import settle
from affectllm.explanation.template import write_rationale
from affectllm.perception.observations import AUObs, FaceObs, Observations

LLM_ANGER = {"anger": 0.97, "disgust": 0.01, "fear": 0.0, "happiness": 0.01, "sadness": 0.0, "surprise": 0.01,
             "neutral": 0.0}


def _happy_face() -> Observations:
    face = FaceObs(box=(0, 0, 50, 50), score=0.9, aus=[AUObs("AU6", 2.4, True), AUObs("AU12", 3.6, True)],
                   expression={"happy": 0.96, "neutral": 0.03, "angry": 0.01})
    return Observations(file="baby.jpg", faces=[face])


def _body(text: str) -> str:
    """A rendered template without RESPONSE_PREFIX and the answer tag: what generation returns."""
    from affectllm.explanation.format import ANSWER_PREFIX, RESPONSE_PREFIX

    return text[len(RESPONSE_PREFIX):text.index(ANSWER_PREFIX)]


def test_the_face_expert_outvotes_an_llm_without_weight():
    obs = _happy_face()
    ans = settle("baby", obs, [], LLM_ANGER, "ekman7", pool=prior_pool("ekman7"))
    assert ans.emotion == "happiness" and ans.llm_emotion == "anger"
    assert ans.decision.contributions["llm"]["log_support_for_answer"] == 0.0
    assert ans.text.endswith("<answer>happiness</answer>")


def test_a_verified_model_rationale_is_shown_as_the_models():
    obs = _happy_face()
    good = _body(write_rationale("baby", obs, ["happiness"], taxonomy="ekman7", media=("image",)).render())
    ans = settle("baby", obs, [good], LLM_ANGER, "ekman7", pool=prior_pool("ekman7"))
    assert ans.rationale_source == "model" and ans.flags == [] and ans.rejected == []


def test_a_contradicting_rationale_is_replaced_by_the_template_and_its_flags_kept():
    obs = _happy_face()
    bad = ("Observations:\n- The voice is low-pitched and flat\n- AU25 lips part, intensity D: 0.23\n"
           "Interpretation: Anger fits better.\nConclusion: The person is angry.\n</think>\n")
    ans = settle("baby", obs, [bad], LLM_ANGER, "ekman7", pool=prior_pool("ekman7"))
    assert ans.rationale_source == "template"
    codes = {f["code"] for f in ans.rejected[0]["flags"]}
    assert {"wrong_modality", "conclusion_mismatch"} <= codes
    assert ans.flags == []  # the template for the same evidence passes
    assert "voice" not in ans.text.lower() and ans.text.endswith("<answer>happiness</answer>")


def test_no_confident_channel_never_gives_p_099():
    obs = _happy_face()
    obs.faces[0].expression = {"happy": 0.5, "neutral": 0.3, "angry": 0.2}
    sharp = DecisionPool("ekman7", weights={"face": 8.0, "llm": 0.0},
                         bias={y: 0.0 for y in prior_pool("ekman7").labels}, temperature=0.2)
    ans = settle("baby", obs, [], LLM_ANGER, "ekman7", pool=sharp)
    assert max(ans.probabilities.values()) < 0.99 and ans.decision.guard_applied


def test_a_channel_the_pool_was_not_fitted_with_is_left_out():
    obs = _happy_face()
    obs.text, obs.text_expression = "Der Lappen liegt auf dem Eisschrank.", {"neutral": 0.9, "anger": 0.1}
    face_only = DecisionPool("ekman7", weights={"face": 1.0}, bias={y: 0.0 for y in prior_pool("ekman7").labels})
    ans = settle("clip", obs, [], None, "ekman7", pool=face_only)
    assert ans.decision.channels_used == ["face"] and ans.emotion == "happiness"
    assert "text classifier" not in ans.text.lower() and ans.flags == []  # nor does the rationale use it


def test_a_low_probability_answer_gets_a_hedged_conclusion_that_still_verifies():
    obs = _happy_face()
    obs.faces[0].expression = {"happy": 0.41, "angry": 0.28, "neutral": 0.31}  # the classifier barely leans
    ans = settle("moment", obs, [], LLM_ANGER, "ekman7", pool=prior_pool("ekman7"))
    p = ans.probabilities[ans.emotion]
    assert ans.emotion == "happiness" and p < 0.5 and ans.rationale_source == "template" and ans.flags == []
    conclusion = ans.text.split("Conclusion:")[1]
    assert "uncertain" in conclusion or "not a confident one" in conclusion
    sure = settle("baby", _happy_face(), [], LLM_ANGER, "ekman7", pool=prior_pool("ekman7"))
    assert "uncertain" not in sure.text and "not a confident" not in sure.text


def test_a_confident_decision_is_never_called_weak_or_uncertain_by_the_template():
    """Read off real records: a calibrated decision at p 0.96 over a voice classifier at 0.7 was
    written up as "... which makes sadness uncertain here" (a confidence mismatch the verifier caught)."""
    from affectllm.explanation.verify import verify
    from affectllm.perception.observations import AudioObs

    voice = AudioObs(duration_s=2.0, descriptors={"pitch": "high, variable pitch", "loudness": "loud",
                                                  "rate": "fast speech"},
                     expression={"sadness": 0.7, "anger": 0.2, "neutral": 0.1})
    obs = Observations(file="a.wav", audio=voice)
    for p, hedged in ((0.96, False), (0.6, True)):
        text = write_rationale("c", obs, ["sadness"], taxonomy="emodb7", probability=p, media=("audio",)).render()
        says = any(w in text for w in ("uncertain", "weak", "low confidence", "not a confident"))
        assert says == hedged, (p, text)
        assert verify(text, obs, "sadness", p, "emodb7").ok, text


def test_passing_candidates_are_ranked_by_the_training_rewards():
    from affectllm.explanation.answer import best_candidate

    obs = _happy_face()
    both = ("<think>\nObservations:\n- AU12 lip corner puller, intensity D (pronounced)\n- AU6 cheek raiser, "
            "intensity B (slight)\nInterpretation: A smile with raised cheeks.\nConclusion: This reads as "
            "happiness.\n</think>\n<answer>happiness</answer>")
    one = both.replace("- AU6 cheek raiser, intensity B (slight)\n", "")
    assert best_candidate([one, both], obs, "ekman7") == both  # cites all the face's AUs: better grounding
    assert best_candidate([both, both], obs, "ekman7") is not None
    assert best_candidate([one], obs, "ekman7") == one
