"""Affect knowledge tables and the AU-prototype rule, with hand-computed scores."""

from __future__ import annotations

import pytest

from affectllm.knowledge.facs import AU_NAMES
from affectllm.knowledge.emfacs import (
    AU_EMOTION_WEIGHTS, AU_SIGNALS, EMFACS_PROTOTYPES, FACS_AU_NAMES, FACS_AU_NUMBERS, PROSODY_CUES,
    PROTOTYPE_EMOTIONS, activation, au_name, describe_au, load_au_table, match_prototypes,
    prototype_aus, prototype_rule)
from affectllm.knowledge.taxonomy import EKMAN7


def test_au_tables():
    assert set(AU_NAMES) <= set(FACS_AU_NAMES)  # the estimated AUs keep their names
    assert 3 not in FACS_AU_NUMBERS and 99 not in FACS_AU_NUMBERS and {1, 12, 45, 66} <= FACS_AU_NUMBERS
    assert set(AU_SIGNALS) >= set(AU_NAMES)  # every estimated AU has a reading
    assert au_name(12) == au_name("au 12") == "lip corner puller"
    with pytest.raises(ValueError):
        au_name("AU3")
    assert describe_au("AU12").startswith("AU12 lip corner puller (zygomaticus major): ")


def test_emfacs_prototypes_and_weights():
    assert prototype_aus("happiness") == ("AU6", "AU12")
    assert prototype_aus("fear") == ("AU1", "AU2", "AU4", "AU5", "AU7", "AU20", "AU26")
    assert str(EMFACS_PROTOTYPES["surprise"][2]) == "5B"
    assert str(EMFACS_PROTOTYPES["contempt"][0]) == "R12A"
    assert set(PROTOTYPE_EMOTIONS) | {"neutral"} == set(EKMAN7.labels)
    assert AU_EMOTION_WEIGHTS["AU12"] == {"contempt": 1.0, "happiness": 1.0}
    assert AU_EMOTION_WEIGHTS["AU17"]["disgust"] == 1.0  # from the published 9+15+17 variant
    assert AU_EMOTION_WEIGHTS["AU25"]["surprise"] == 0.5  # related, not prototypical
    with pytest.raises(ValueError):
        prototype_aus("boredom")


def test_activation():
    assert activation(0.0) == 0.0 and activation(0.5) == 0.0
    assert activation(1.5) == pytest.approx(0.5) and activation(2.5) == 1.0 and activation(5) == 1.0


def test_match_prototypes_hand_computed():
    # AU6, AU12 full (1.0), AU25 at 1.0 -> activation 0.25: happiness = 2 / (2 + 0.5 * 0.25)
    ranked = match_prototypes({"AU6": 3, "AU12": 3, "AU25": 1})
    assert ranked[0] == ("happiness", pytest.approx(2 / 2.125))
    assert dict(ranked)["neutral"] == 0.0
    assert [e for e, _ in ranked] == ["happiness", "anger", "disgust", "fear", "sadness", "surprise", "neutral"]

    zeros = dict.fromkeys(["AU1", "AU2", "AU4", "AU5", "AU6", "AU7", "AU9", "AU12", "AU15", "AU17",
                           "AU20", "AU23", "AU25", "AU26"], 0.0)
    scores = dict(match_prototypes({**zeros, "AU1": 2.5, "AU4": 2.5, "AU15": 2.5}))
    assert scores["sadness"] == 1.0
    assert scores["fear"] == pytest.approx(2 / 7.5)  # hit 2, miss 5, extra 1 (AU15)
    assert scores["disgust"] == pytest.approx(1 / 3)  # AU16 unobserved: 9+15 -> hit 1, miss 1, extra 2
    assert scores["anger"] == pytest.approx(0.2) and scores["surprise"] == pytest.approx(0.2)
    assert scores["happiness"] == 0.0 and scores["neutral"] == 0.0


def test_match_prototypes_neutral_ties_and_options():
    assert prototype_rule({"AU12": 0.2, "AU4": 0.0}) == "neutral"
    assert prototype_rule({}) == "neutral"
    # half a happiness prototype ties neutral at 0.5: the prototype comes first
    assert match_prototypes({"AU12": 1.5})[:2] == [("happiness", 0.5), ("neutral", 0.5)]
    # AU6 observed absent counts against it: 0.5 / (0.5 + (0.5 + 1))
    assert dict(match_prototypes({"AU12": 1.5, "AU6": 0.0}))["happiness"] == 0.25
    ranked = match_prototypes({"AU12": 3, "AU14": 3}, emotions=["happiness", "contempt"], include_neutral=False)
    assert [e for e, _ in ranked] == ["contempt", "happiness"]
    assert match_prototypes({"au 9": 3, "15": 3})[0] == ("disgust", 1.0)  # any AU spelling


def test_prosody_cues():
    assert PROSODY_CUES["slow"].arousal == -1 and "sadness" in PROSODY_CUES["slow"].emotions
    assert PROSODY_CUES["loud"].arousal == 1


def test_load_au_table_absent_file(tmp_path):
    assert load_au_table(tmp_path / "missing.csv") == {}
