"""The one parser: well-formed text, every tolerated deviation, and the renderer round trip."""

from __future__ import annotations

import pytest

from affectllm.explanation.parse import FORMAT_INSTRUCTIONS, cited_aus, format_explanation, format_instructions, parse

GOOD = ("<think>\nObservations:\n- AU6 cheek raiser, intensity C (marked)\n"
        "- AU12 lip corner puller, intensity D (pronounced)\n"
        "Interpretation: Raised cheeks with pulled-up lip corners form a felt smile.\n"
        "Conclusion: The face most likely shows happiness.\n</think>\n<answer>happiness</answer>")


def test_well_formed():
    e = parse(GOOD)
    assert e.emotion == "happiness" and e.emotions == ["happiness"] and e.raw_answer == "happiness"
    assert e.cited_aus == ["AU6", "AU12"]
    assert e.cues == ["AU6 cheek raiser, intensity C (marked)", "AU12 lip corner puller, intensity D (pronounced)"]
    assert e.interpretation == "Raised cheeks with pulled-up lip corners form a felt smile."
    assert e.conclusion == "The face most likely shows happiness."
    assert e.conclusion_emotion == "happiness" and e.consistent
    assert e.has_think and e.has_answer and e.has_parts and e.answer_in_taxonomy
    assert e.well_formed and not e.multiple_answers and not e.extra_text and not e.answer_from_conclusion
    assert e.issues == [] and e.probabilities == {} and e.taxonomy == "ekman7"
    assert e.to_dict()["consistent"] is True


def test_bold_headings_one_line_and_case():
    text = ("<THINK>**Observations:** AU4 is marked. AU 23 tightens the lips. **Interpretation**: "
            "a glare. **CONCLUSION:** this is Anger.</THINK><Answer>ANGRY</Answer>")
    e = parse(text)
    assert e.well_formed and e.emotion == "anger" and e.conclusion_emotion == "anger"
    assert e.cues == ["AU4 is marked.", "AU 23 tightens the lips."]
    assert e.cited_aus == ["AU4", "AU23"]


def test_markdown_heading_lines_without_colons():
    text = ("<think>\n## Observations\n1. AU1 inner brow raiser\n2) AU15 lip corner depressor\n"
            "### Interpretation\ndrooping mouth\n**Conclusion**\nsadness\n</think>\n<answer>sad</answer>")
    e = parse(text)
    assert e.has_parts and e.well_formed and e.emotion == "sadness"
    assert e.cues == ["AU1 inner brow raiser", "AU15 lip corner depressor"]


def test_extra_text_before_and_after_is_tolerated_but_flagged():
    e = parse("Sure, here it is.\n" + GOOD + "\nHope this helps!")
    assert e.emotion == "happiness" and e.well_formed and e.extra_text and "extra_text" in e.issues


def test_missing_answer_falls_back_to_conclusion():
    e = parse(GOOD.split("<answer>")[0])
    assert e.emotion == "happiness" and e.answer_from_conclusion
    assert not e.has_answer and not e.well_formed and not e.consistent  # a fallback is not agreement
    assert not e.answer_in_taxonomy and "no_answer" in e.issues


def test_missing_tags_entirely():
    e = parse("Observations: AU12 strong.\nInterpretation: a smile.\nConclusion: joyful.")
    assert e.emotion == "happiness" and e.has_parts and not e.has_think and not e.has_answer
    assert {"no_think", "no_answer", "answer_from_conclusion"} <= set(e.issues)
    assert parse("I think this person is furious.").emotion == "anger"  # no structure at all
    assert parse("").emotion is None and parse(None).emotion is None


def test_answer_without_think():
    e = parse("<answer>fear</answer>")
    assert e.emotion == "fear" and e.has_answer and not e.has_think and not e.has_parts
    assert not e.well_formed and {"missing_observations", "missing_interpretation"} <= set(e.issues)


def test_unknown_label_is_none_and_flagged_without_fallback():
    e = parse(GOOD.replace("<answer>happiness</answer>", "<answer>contempt</answer>"))
    assert e.emotion is None and e.raw_answer == "contempt" and not e.answer_in_taxonomy
    assert not e.well_formed and "unknown_label" in e.issues
    assert e.conclusion_emotion == "happiness"  # still read, for diagnostics
    e = parse(GOOD.replace("<answer>happiness</answer>", "<answer>happy or sad</answer>"))
    assert e.emotion is None and "ambiguous_answer" in e.issues


def test_multiple_answers_take_the_last_and_flag():
    e = parse(GOOD + "<answer>sadness</answer>")
    assert e.emotion == "sadness" and e.multiple_answers and not e.well_formed
    assert "multiple_answers" in e.issues and "conclusion_disagrees" in e.issues


def test_unclosed_answer_still_read():
    e = parse(GOOD.replace("</answer>", ""))
    assert e.emotion == "happiness" and not e.has_answer and "unclosed_answer" in e.issues


def test_parts_out_of_order_and_missing():
    e = parse("<think>Conclusion: anger. Observations: AU4. Interpretation: glare.</think><answer>anger</answer>")
    assert not e.has_parts and "parts_out_of_order" in e.issues and not e.well_formed
    e = parse("<think>Observations: AU4.\nConclusion: anger.</think><answer>anger</answer>")
    assert not e.has_parts and "missing_interpretation" in e.issues


def test_conclusion_label_ignores_negations_and_takes_the_verdict():
    base = "<think>Observations: AU12.\nInterpretation: smile.\nConclusion: {}</think><answer>happiness</answer>"
    assert parse(base.format("It is happiness rather than surprise.")).conclusion_emotion == "happiness"
    assert parse(base.format("Not anger; the person is glad.")).conclusion_emotion == "happiness"
    assert parse(base.format("Surprise is possible, but overall happiness.")).conclusion_emotion == "happiness"
    assert parse(base.format("The evidence is unclear.")).conclusion_emotion is None


@pytest.mark.parametrize("text,aus", [
    ("AU12", ["AU12"]), ("AU 12 and AU-4", ["AU4", "AU12"]), ("action unit 6", ["AU6"]),
    ("Action Units 9 and 10", ["AU9", "AU10"]), ("AUs 1, 2 and 25", ["AU1", "AU2", "AU25"]),
    ("AU6+12", ["AU6", "AU12"]), ("AU1+AU2", ["AU1", "AU2"]), ("AU12C, AU5b", ["AU5", "AU12"]),
    ("AU3 and AU99 are not FACS", []), ("aus 7 and au 12 are words", []), ("AU12, 3 seconds", ["AU12"]),
    ("AU12 AU12 AU6", ["AU6", "AU12"]), ("no units at all", []),
])
def test_au_spellings(text, aus):
    assert cited_aus(text) == aus


def test_round_trip_with_format_explanation():
    obs = ["AU4 brow lowerer, intensity C (marked)", "Voice: loud, fast speech.", "Text: \"Get out!\""]
    text = format_explanation(obs, "Lowered brows with a loud voice signal anger.",
                              "The person is most likely angry.", "anger")
    e = parse(text)
    assert e.well_formed and e.cues == obs and e.emotion == "anger" and e.consistent
    assert e.interpretation == "Lowered brows with a loud voice signal anger."
    assert e.cited_aus == ["AU4"]
    multi = format_explanation(["joyful words"], "thanks and delight", "joy and gratitude", ["joy", "gratitude"])
    m = parse(multi, "goemotions28")
    assert m.emotions == ["joy", "gratitude"] and m.emotion == "joy" and m.well_formed


def test_format_explanation_taxonomy_checks_labels_and_conclusion():
    ok = format_explanation(["AU9 nose wrinkler"], "a wrinkled nose", "This is disgust.", "disgust", "ekman7")
    assert parse(ok).consistent
    with pytest.raises(ValueError, match="not in taxonomy"):
        format_explanation(["AU9"], "i", "This is joy.", "joy", "ekman7")
    with pytest.raises(ValueError, match="does not settle"):
        format_explanation(["AU9"], "i", "Probably anger.", "disgust", "ekman7")
    # without a taxonomy only the round trip is checked
    assert format_explanation(["AU9"], "i", "Probably anger.", "disgust")


@pytest.mark.parametrize("args", [
    ([], "i", "c", "anger"), (["x"], "", "c", "anger"), (["x"], "i", "c", ""),
    (["two\nlines"], "i", "c", "anger"), (["x"], "i Conclusion: sneaky", "c", "anger"),
    (["x"], "i", "c </think>", "anger"),
])
def test_format_explanation_refuses_what_would_not_read_back(args):
    with pytest.raises(ValueError):
        format_explanation(*args)


def test_response_prefix():
    completion = " AU12 strong\nInterpretation: smile\nConclusion: happy\n</think>\n<answer>happiness</answer>"
    assert not parse(completion).has_think
    e = parse(completion, prefix="<think>\nObservations:")
    assert e.well_formed and e.cues == ["AU12 strong"]
    assert parse(GOOD, prefix="<think>\nObservations:").text == GOOD  # not added twice


def test_format_instructions():
    assert "<think>" in FORMAT_INSTRUCTIONS and "<answer>" in FORMAT_INSTRUCTIONS
    assert "happiness" in FORMAT_INSTRUCTIONS
    assert "boredom" in format_instructions("emodb7")
    assert "Example" not in format_instructions(example=False)
    assert format_instructions(example=False).endswith("neutral.")
    example = FORMAT_INSTRUCTIONS.split("Example:\n", 1)[1]
    assert parse(example).well_formed  # the example obeys the format it teaches


def test_degenerate_generations_parse_in_linear_time():
    import time

    # each of these took seconds with a backtracking pattern (quadratic); linear is ~10-50 ms
    for text in ["<answer>" * 5000 + "x", "<think>" * 5000, "Observations" + " " * 20000 + "x",
                 "## Conclusion" + " \t" * 10000 + "x\n", "AU1+" * 5000, "x" * 100000]:
        start = time.perf_counter()
        parse(text)
        assert time.perf_counter() - start < 1.0, text[:30]
