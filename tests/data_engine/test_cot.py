"""Templated rationales: varied by seed, always in the one format, always verified, never inventing."""

from __future__ import annotations

import pytest

from affectllm.perception.observations import AUObs, AudioObs, FaceObs, Observations
from affectllm.explanation.parse import parse
from affectllm.explanation.format import RESPONSE_PREFIX
from affectllm.knowledge.taxonomy import get_taxonomy
from affectllm.explanation.template import write_rationale
from affectllm.explanation.evidence_facts import analyse, overall, support
from data_engine.verify import au_claims, verify_text

ALL_AUS = ("AU1", "AU2", "AU4", "AU5", "AU6", "AU7", "AU9", "AU10", "AU12", "AU15", "AU20", "AU23", "AU25", "AU26")


def face(active: dict[str, float], expression: dict[str, float] | None = None) -> FaceObs:
    aus = [AUObs(au, active.get(au, 0.1), au in active) for au in ALL_AUS]
    return FaceObs(box=(0, 0, 100, 100), score=0.9, aus=aus, expression=expression or {})


SMILE = face({"AU6": 2.7, "AU12": 3.6, "AU25": 1.0}, {"happy": 0.8, "neutral": 0.15, "sad": 0.05})
LOUD_HAPPY = AudioObs(duration_s=2.0, transcript="I am so happy today!",
                      descriptors={"pitch": "high, variable pitch", "loudness": "loud", "rate": "moderate pace",
                                   "pauses": "few pauses"})
FLAT = AudioObs(duration_s=2.0, descriptors={"pitch": "low, monotone pitch", "loudness": "quiet",
                                             "rate": "slow speech", "pauses": "many pauses",
                                             "voice": "soft, dark voice"})
CASES = {
    "video": (Observations(file="x.mp4", faces=[SMILE], audio=LOUD_HAPPY), "ekman7", ("video",)),
    "rest": (Observations(file="f.jpg", faces=[face({})]), "ekman7", ("image",)),
    "speech": (Observations(file="a.wav", audio=FLAT, text="Der Lappen liegt auf dem Eisschrank."), "emodb7",
               ("audio",)),
    "text": (Observations(text="I HATE this so much, not happy at all!!"), "ekman7", ()),
    "noface": (Observations(file="g.jpg"), "ekman7", ("image",)),
}


@pytest.mark.parametrize("case", [c for c in CASES if c != "noface"])
def test_every_label_and_seed_renders_the_format_and_verifies(case):
    obs, tax, media = CASES[case]
    for label in get_taxonomy(tax).labels:
        for seed in range(8):
            text = write_rationale("item1", obs, [label], taxonomy=tax, seed=seed, media=media).render()
            assert text.startswith(RESPONSE_PREFIX)
            ex = parse(text, tax)
            assert ex.well_formed and not ex.issues, (label, seed, ex.issues)
            assert ex.emotion == label and ex.conclusion_emotion == label
            assert verify_text(text, obs, [label], tax) == [], (label, seed, text)


def test_wording_varies_with_seed_and_item_but_is_reproducible():
    obs, tax, media = CASES["video"]
    texts = {write_rationale("item1", obs, ["happiness"], seed=s, media=media).render() for s in range(12)}
    assert len(texts) >= 4  # several phrasings per slot
    per_item = {write_rationale(f"item{i}", obs, ["happiness"], seed=0, media=media).render() for i in range(12)}
    assert len(per_item) >= 4
    a = write_rationale("item1", obs, ["happiness"], seed=3, media=media).render()
    assert a == write_rationale("item1", obs, ["happiness"], seed=3, media=media).render()


def test_cites_only_active_aus_with_their_letters():
    obs, tax, media = CASES["video"]
    for seed in range(10):
        text = write_rationale("item1", obs, ["sadness"], seed=seed, media=media).render()
        active = {a.au: a.letter for a in SMILE.present_aus}
        for claim in au_claims(text.split("</think>")[0]):
            if claim["absent"]:
                assert claim["au"] not in active
            else:
                assert claim["au"] in active
                assert claim["letter"] in (None, active[claim["au"]])


def test_honest_when_the_face_shows_nothing():
    obs, tax, media = CASES["rest"]
    text = write_rationale("r1", obs, ["fear"], seed=0, media=media).render()
    assert not parse(text).cited_aus  # nothing invented
    assert "no action unit" in text.lower() or "few cues" in text.lower()
    assert "low confidence" in text or "low-confidence" in text
    neutral = write_rationale("r1", obs, ["neutral"], seed=0, media=media).render()
    assert "rest" in neutral and "low" not in neutral.split("Conclusion:")[1]


def test_honest_when_only_the_voice_carries_it():
    obs, tax, media = CASES["speech"]
    r = write_rationale("e1", obs, ["sadness"], taxonomy=tax, seed=0, media=media)
    text = r.render()
    assert "voice carries it" in text
    assert r.support == {"voice": "supports"} and r.level == "supported"
    assert "AU" not in text


def test_voice_that_contradicts_the_label_is_called_out():
    obs, tax, media = CASES["speech"]
    r = write_rationale("e1", obs, ["anger"], taxonomy=tax, seed=0, media=media)
    assert r.level in ("weak", "unsupported")
    assert "does not fit anger" in r.interpretation or "unusual for anger" in r.interpretation
    assert "low confidence" in r.conclusion or "low-confidence" in r.conclusion


def test_words_negation_and_quotes():
    obs, tax, media = CASES["text"]
    text = write_rationale("t1", obs, ["anger"], seed=0).render()
    assert '"HATE"' in text and "negated" in text
    ev = analyse(obs, tax)
    assert [(w.word, w.label, w.negated) for w in ev.words] == [("happy", "happiness", True), ("HATE", "anger", False)]
    assert support(ev, "anger") == {"words": "supports"} and overall(ev, "anger") == "supported"


def test_multi_label_answer_lists_all_and_concludes_on_the_primary():
    obs = Observations(text="I hate this and I am so sad about it")
    text = write_rationale("g1", obs, ["anger", "sadness"], taxonomy="goemotions_ekman").render()
    ex = parse(text, "goemotions_ekman")
    assert ex.emotions == ["anger", "sadness"] and ex.emotion == "anger" and ex.conclusion_emotion == "anger"
    assert verify_text(text, obs, ["anger", "sadness"], "goemotions_ekman") == []
    # a single-label taxonomy answers with the primary label only
    assert parse(write_rationale("g1", obs, ["anger", "sadness"]).render()).raw_answer == "anger"


def test_image_without_a_face_says_so_and_label_outside_taxonomy_raises():
    obs, tax, media = CASES["noface"]
    obs = Observations(file="g.jpg", text="what a day")
    text = write_rationale("n1", obs, ["surprise"], media=("image",)).render()
    assert "No face" in text
    with pytest.raises(ValueError, match="not in taxonomy"):
        write_rationale("n1", obs, ["boredom"], taxonomy="ekman7")


def test_templates_score_full_marks_on_the_training_rewards():
    """What SFT teaches must not be punished by GRPO: absent AUs are named, never numbered."""
    rewards = pytest.importorskip("train.rewards")
    obs, tax, media = CASES["video"]
    evidence = obs.evidence_aus()
    for label in ("happiness", "sadness", "fear"):
        for seed in range(4):
            text = write_rationale("item1", obs, [label], seed=seed, media=media).render()
            assert set(parse(text).cited_aus) <= set(evidence)
            cols = {"label": [label], "evidence_aus": [evidence], "taxonomy": [tax]}
            for name in ("format", "emotion", "consistency"):
                assert rewards.REWARDS[name]([text], **cols) == [1.0], (name, label, seed)
            assert rewards.REWARDS["au_grounding"]([text], **cols)[0] > 0.3
