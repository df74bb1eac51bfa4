"""verify() rejects planted bad records, each with a reason naming the problem."""

from __future__ import annotations

import pytest

from affectllm.perception.observations import AUObs, AudioObs, FaceObs, Observations
from affectllm.explanation.template import write_rationale
from data_engine.export import sft_record
from data_engine.sample import Sample
from data_engine.verify import au_claims, category, evidence_prosody, verify, verify_text

FACE = FaceObs(box=(0, 0, 90, 90), score=0.9, expression={"happy": 0.7, "neutral": 0.2, "sad": 0.1},
               aus=[AUObs("AU6", 2.7, True), AUObs("AU12", 3.6, True), AUObs("AU1", 0.2, False),
                    AUObs("AU4", 0.1, False), AUObs("AU15", 0.1, False), AUObs("AU9", 0.2, False)])
AUDIO = AudioObs(duration_s=2.0, transcript="that is great news",
                 descriptors={"pitch": "high, variable pitch", "loudness": "loud", "rate": "fast speech"})
OBS = Observations(file="/d/clip.mp4", faces=[FACE], audio=AUDIO)
SAMPLE = Sample(id="t/clip", media={"video": "/d/clip.mp4"}, labels=["happiness"], source="t", split="train")

GOOD = """<think>
Observations:
- AU12 lip corner puller, intensity D (pronounced): pulled-up lip corners
- AU6 cheek raiser, intensity C (marked): raised cheeks
- Pitch: high, variable pitch
- Loudness: loud
- The word "great" points to happiness
Interpretation: AU6 and AU12 match the EMFACS happiness prototype closely, but the brow lowerer is not active. The expression classifier agrees, rating happiness highest (0.70). A raised pitch and a loud voice point to high arousal.
Conclusion: The speaker most likely expresses happiness.
</think>
<answer>happiness</answer>"""


def record(text: str = GOOD, **changes) -> dict:
    r = sft_record(SAMPLE, OBS, text, labels=["happiness"], taxonomy="ekman7")
    r.update(changes)
    return r


def test_good_handwritten_and_templated_records_pass():
    assert verify(record()) == []
    assert verify(record(), OBS) == []
    for seed in range(5):
        text = write_rationale(SAMPLE.id, OBS, ["happiness"], seed=seed, media=("video",)).render()
        assert verify(record(text)) == []


PLANTED = [
    ("wrong answer", ("<answer>happiness</answer>", "<answer>sadness</answer>"), "label"),
    ("wrong conclusion", ("expresses happiness.", "expresses anger."), "label"),
    ("invented AU", ("AU6 cheek raiser, intensity C", "AU9 nose wrinkler, intensity C"), "au"),
    ("invented AU in interpretation", ("AU6 and AU12 match", "AU6, AU12 and AU20 match"), "au"),
    ("wrong intensity letter", ("intensity D (pronounced)", "intensity B (pronounced)"), "intensity"),
    ("wrong intensity word", ("intensity D (pronounced)", "intensity D (slight)"), "intensity"),
    ("present AU called absent", ("but the brow lowerer is", "but AU12 is"), "au"),
    ("present AU called absent by name", ("but the brow lowerer is", "but the lip corner puller is"), "au"),
    ("unestimated AU called absent", ("but the brow lowerer is", "but the chin raiser is"), "au"),
    ("absent AU cited by number", ("but the brow lowerer is", "but AU4 is"), "au"),
    ("contradicting pitch", ("Pitch: high, variable pitch", "Pitch: low, variable pitch"), "prosody"),
    ("contradicting loudness", ("Loudness: loud", "Loudness: quiet"), "prosody"),
    ("negated true cue", ("Loudness: loud", "The voice is not loud"), "prosody"),
    ("unmeasured pauses", ("Loudness: loud", "Pauses: many pauses"), "prosody"),
    ("classifier misquoted", ("rating happiness highest", "rating sadness highest"), "classifier"),
    ("invented number", ("(0.70)", "(0.37)"), "number"),
    ("time without a video", ("A raised pitch", "From 0.40 s, a raised pitch"), "time"),
    ("invented quote", ('"great"', '"wonderful"'), "quote"),
    ("broken format: no answer", ("\n<answer>happiness</answer>", ""), "format"),
    ("broken format: parts out of order", ("Interpretation:", "Conclusion-ish:"), "format"),
    ("broken format: no prefix", ("<think>\nObservations:", "<think>\nNotes:"), "format"),
]


@pytest.mark.parametrize("name,edit,cat", PLANTED, ids=[p[0] for p in PLANTED])
def test_planted_bad_records_are_rejected_with_a_reason(name, edit, cat):
    old, new = edit
    assert old in GOOD
    reasons = verify(record(GOOD.replace(old, new)))
    assert reasons, name
    assert cat in {category(r) for r in reasons}, reasons


def test_prosody_claims_need_a_voice():
    obs = Observations(file="/d/f.jpg", faces=[FACE])
    text = GOOD.replace('- The word "great" points to happiness\n', "")
    reasons = verify_text(text, obs, ["happiness"])
    assert any("no voice was perceived" in r for r in reasons)


def test_record_level_checks():
    assert any(r.startswith("record:") for r in verify(record(evidence_aus=["AU6"])))
    assert verify({"id": "x"}) == ["record: x: record carries no observations"]
    bad = record()
    bad["messages"] = bad["messages"][:2]
    assert verify(bad) == ["record: messages must be system, user, ..., assistant"]
    assert verify(record(labels=["anger"], label="anger"))  # gold label changed under the text


def test_claim_reader():
    claims = au_claims("AU12 and AU6 match, but AU1 and AU2 are not active. Without AU4 the brow is smooth. "
                       "AU6 (cheek raiser) is absent. A marked AU12 here. AU25C is present.")
    assert [(c["au"], c["absent"]) for c in claims] == [
        ("AU12", False), ("AU6", False), ("AU1", True), ("AU2", True), ("AU4", True), ("AU6", True),
        ("AU12", False), ("AU25", False)]
    assert claims[6]["word"] == "marked" and claims[7]["letter"] == "C"
    assert evidence_prosody(OBS) == {"pitch": 1, "melody": 1, "loudness": 1, "rate": 1, "pauses": None,
                                     "quality": 0}
