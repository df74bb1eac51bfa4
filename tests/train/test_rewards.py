"""GRPO rewards on hand-written completions with known scores."""

from __future__ import annotations

import pytest

from train.rewards import (
    REWARDS, au_grounding_reward, completion_text, consistency_reward, emotion_reward, format_reward,
    get_reward, length_reward, parse_completions, quadrant_reward, verifier_reward)

GOOD = ("<think>\nObservations:\n- AU6 cheek raiser, intensity C (marked)\n"
        "- AU12 lip corner puller, intensity D (pronounced)\n"
        "Interpretation: Raised cheeks with pulled-up lip corners form a felt smile.\n"
        "Conclusion: The face most likely shows happiness.\n</think>\n<answer>happiness</answer>")
NO_TAGS = "Observations: AU12.\nInterpretation: smile.\nConclusion: happy."
TWO_ANSWERS = GOOD + "<answer>sadness</answer>"
CHATTY = "Sure! " + GOOD
UNKNOWN = GOOD.replace("<answer>happiness</answer>", "<answer>contempt</answer>")


def answer(label: str, cite: str = "AU12") -> str:
    return (f"<think>Observations: {cite}\nInterpretation: x\nConclusion: {label}</think>"
            f"<answer>{label}</answer>")


def test_format_partial_credit():
    scores = format_reward([GOOD, NO_TAGS, TWO_ANSWERS, CHATTY, UNKNOWN, "", "<answer>fear</answer>"])
    # NO_TAGS: 3 parts 0.3 + order 0.1; TWO_ANSWERS: 1.0 - 0.2; CHATTY: 1.0 - 0.1;
    # UNKNOWN: no answer in taxonomy (-0.2); bare answer: 0.2 answer + 0.2 in taxonomy
    assert scores == pytest.approx([1.0, 0.4, 0.8, 0.9, 0.8, 0.0, 0.4])


def test_chat_completions_and_content_parts():
    chat = [{"role": "assistant", "content": GOOD}]
    parts = [{"role": "assistant", "content": [{"type": "text", "text": GOOD}]}]
    assert completion_text(chat) == completion_text(parts) == GOOD
    assert format_reward([chat, parts]) == [1.0, 1.0]
    assert emotion_reward([chat], label=["happy"]) == [1.0]


def test_emotion_and_consistency():
    comps = [GOOD, NO_TAGS, TWO_ANSWERS, UNKNOWN, answer("joyful")]
    gold = ["happiness"] * 5
    # NO_TAGS earns emotion through the conclusion fallback but no consistency
    assert emotion_reward(comps, label=gold) == [1.0, 1.0, 0.0, 0.0, 1.0]
    assert consistency_reward(comps, label=gold) == [1.0, 0.0, 0.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="gold label"):
        emotion_reward([GOOD], label=["banana"])
    with pytest.raises(ValueError, match="column"):
        emotion_reward([GOOD, GOOD], label=["happiness"])


def test_quadrant():
    comps = [answer("fear"), answer("surprise"), answer("sadness"), answer("anger"), NO_TAGS.replace("happy", "?")]
    assert quadrant_reward(comps, label=["anger", "fear", "anger", "anger", "anger"]) == [0.5, 0.5, 0.0, 1.0, 0.0]


def test_au_grounding():
    comps = [GOOD, GOOD, answer("happiness", "AU6, AU9 and AU12"), answer("neutral", "nothing"),
             answer("neutral", "nothing"), GOOD, answer("fear", "AU1 AU2 AU4 AU5 AU6 AU7 AU9"),
             GOOD]
    evidence = [["AU6", "AU12"], ["AU12"], [], [], ["AU12"], None, [], {"AU12": 3.0, "AU6": 0.1}]
    scores = au_grounding_reward(comps, evidence_aus=evidence)
    assert scores[0] == pytest.approx(1.0)
    assert scores[1] == pytest.approx(2 * (2 / 3) - 1 - 0.25)  # F1 2/3, AU6 hallucinated
    assert scores[2] == pytest.approx(-1 - 0.75)  # nothing to cite, three cited
    assert scores[3] == 1.0  # nothing to cite, nothing cited
    assert scores[4] == -1.0  # AU12 there, not cited
    assert scores[5] is None  # no face: not applicable
    assert scores[6] == -2.0  # clipped
    assert scores[7] == pytest.approx(2 * (2 / 3) - 1 - 0.25)  # dict evidence: AU6 below threshold


def test_length():
    ten = " ".join(["w"] * 10)
    assert length_reward([ten, ten + " " + " ".join(["w"] * 5), ten * 3], budget=10) == [0.0, -0.5, -1.0]
    assert length_reward([GOOD]) == [0.0]
    with pytest.raises(ValueError):
        length_reward([GOOD], budget=0)


def test_response_prefix_from_prompt():
    prompt = "<|im_start|>assistant\n<think>\nObservations:"
    completion = " AU12 strong\nInterpretation: smile\nConclusion: happiness\n</think>\n<answer>happiness</answer>"
    assert format_reward([completion]) != [1.0]
    assert format_reward([completion], prompts=[prompt]) == [1.0]
    closed = "<think>done</think> now answer:"  # a closed think in the prompt adds nothing
    assert parse_completions([completion], prompts=[closed])[0].text == completion


def test_taxonomy_column_and_multilabel_gold():
    assert emotion_reward([answer("bored")], label=["boredom"], taxonomy=["emodb7"]) == [1.0]
    assert emotion_reward([answer("bored")], label=["neutral"]) == [0.0]  # not an Ekman-7 label
    assert emotion_reward([answer("love")], label=[["joy", "love"]], taxonomy=["goemotions28"]) == [1.0]
    bound = get_reward("emotion", taxonomy="emodb7")
    assert bound([answer("bored")], label=["boredom"]) == [1.0]


def test_registry():
    assert set(REWARDS) == {"format", "emotion", "quadrant", "au_grounding", "consistency", "length", "verifier"}
    assert get_reward("format") is format_reward
    short = get_reward("length", budget=5)
    assert short.__name__ == "length_reward" and short([" ".join(["w"] * 10)]) == [-1.0]
    with pytest.raises(ValueError, match="unknown reward"):
        get_reward("accuracy")


def _smiling_photo():
    from affectllm.perception.observations import AUObs, FaceObs, Observations

    face = FaceObs(box=(0, 0, 100, 100), score=0.99,
                   aus=[AUObs("AU6", 2.4, True), AUObs("AU12", 3.6, True), AUObs("AU4", 0.0, False)],
                   expression={"happy": 0.93, "neutral": 0.05, "sad": 0.02})
    return Observations(file="smile.jpg", faces=[face], image=None)


def test_verifier_reward_is_the_verifier_on_the_rows_observations():
    from affectllm.explanation.template import write_rationale
    from train.records import decode_json_columns, rl_dataset

    obs = _smiling_photo()
    good = write_rationale("smile", obs, ["happiness"], media=("image",)).render()  # ends in <answer>happiness</answer>
    voice = good.replace("Conclusion:", "The voice is low-pitched and flat. Conclusion:")
    invented = good.replace("happy 0.93", "happy 0.71")
    other = good.replace("<answer>happiness</answer>", "<answer>sadness</answer>")
    # The column arrives as the GRPO dataset packs it (a JSON string) and as grpo.py decodes it (a dict).
    rec = {"id": "smile", "label": "happiness", "messages": [{"role": "user", "content": "?"}],
           "observations": obs.to_dict(), "answer": "happiness"}
    row = rl_dataset([rec])[0]
    assert isinstance(row["observations"], str) and row["answer"] == "happiness"
    cols = decode_json_columns({k: [row[k]] * 4 for k in ("observations", "answer")})
    scores = verifier_reward([good, voice, invented, other], **cols)
    assert scores[0] == 1.0 and all(x < 1.0 for x in scores[1:]), scores
    assert verifier_reward([good], observations=[row["observations"]]) == [1.0]
    assert verifier_reward([good], observations=[None]) == [None]  # no observations: abstains
    # The decided answer (column) wins over the completion's own: concluding happiness is wrong here.
    assert verifier_reward([good], observations=[row["observations"]], answer=["sadness"])[0] < 1.0
