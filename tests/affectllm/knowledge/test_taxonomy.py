"""Label taxonomies, the synonym table, and valence/arousal quadrants."""

from __future__ import annotations

import pytest

from affectllm.knowledge.synonyms import FER_SHORT_NAMES, GOEMOTIONS_EKMAN_MAPPING, SYNONYMS
from affectllm.knowledge.taxonomy import (
    EKMAN7, EMODB7, GOEMOTIONS28, GOEMOTIONS_EKMAN, TAXONOMIES, TO_EKMAN, find_labels, get_taxonomy,
    normalize_label, quadrant, resolve_concept, same_quadrant, valence_arousal)


def test_label_sets_and_registry():
    assert EKMAN7.labels == ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
    assert set(EMODB7.labels) == {"anger", "boredom", "disgust", "fear", "happiness", "sadness", "neutral"}
    assert len(GOEMOTIONS28) == 28 and GOEMOTIONS28.labels[-1] == "neutral"
    assert len(set(GOEMOTIONS28.labels)) == 28
    # Same order as the shipped labels.txt, so label ids index it directly.
    assert GOEMOTIONS_EKMAN.labels == ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")
    assert GOEMOTIONS_EKMAN.multi_label and not EKMAN7.multi_label
    assert get_taxonomy() is EKMAN7
    assert get_taxonomy("GoEmotions-Ekman") is GOEMOTIONS_EKMAN
    assert get_taxonomy(EMODB7) is EMODB7
    assert "happiness" in EKMAN7 and EKMAN7.index("neutral") == 6
    with pytest.raises(ValueError, match="unknown taxonomy"):
        get_taxonomy("plutchik8")


def test_goemotions_ekman_mapping_covers_every_fine_label():
    # The published mapping puts each of the 27 emotions (+ neutral) in exactly one group.
    assert set(GOEMOTIONS_EKMAN_MAPPING) == set(GOEMOTIONS28.labels)
    assert set(GOEMOTIONS_EKMAN_MAPPING.values()) == set(GOEMOTIONS_EKMAN.labels)
    assert GOEMOTIONS_EKMAN_MAPPING["amusement"] == "joy"
    assert GOEMOTIONS_EKMAN_MAPPING["nervousness"] == "fear"
    assert GOEMOTIONS_EKMAN_MAPPING["embarrassment"] == "sadness"
    assert GOEMOTIONS_EKMAN_MAPPING["confusion"] == "surprise"
    assert TO_EKMAN["joy"] == "happiness" and TO_EKMAN["annoyance"] == "anger"


@pytest.mark.parametrize("text,label", [
    ("happy", "happiness"), ("Joyful.", "happiness"), ("glad", "happiness"), ("joy", "happiness"),
    ("**Happiness**", "happiness"), ("angry", "anger"), ("FURIOUS", "anger"), ("sad", "sadness"),
    ("surprised", "surprise"), ("scared", "fear"), ("afraid", "fear"), ("disgusted", "disgust"),
    ("neutral", "neutral"), (" 'neutral' ", "neutral"), ("unhappy", "sadness"),
    ("The answer is: Surprise!", "surprise"), ("grossed   out", "disgust"),
    # GoEmotions fine labels land in their Ekman group
    ("amusement", "happiness"), ("annoyed", "anger"), ("nervous", "fear"), ("grief", "sadness"),
    ("confused", "surprise"),
])
def test_normalize_label_ekman(text, label):
    assert normalize_label(text, "ekman7") == label


def test_fer_short_names_map_to_ekman():
    for short, label in FER_SHORT_NAMES.items():
        assert normalize_label(short) == label


@pytest.mark.parametrize("text", [None, "", "   ", "...", "contempt", "bored", "happy or sad",
                                  "not angry", "banana", "smile"])
def test_normalize_label_refuses_unknown_ambiguous_negated(text):
    assert normalize_label(text, "ekman7") is None


def test_normalize_label_per_taxonomy():
    assert normalize_label("happy", "goemotions_ekman") == "joy"
    assert normalize_label("amused", "goemotions_ekman") == "joy"
    assert normalize_label("happy", "goemotions28") == "joy"
    assert normalize_label("amused", "goemotions28") == "amusement"
    assert normalize_label("irritated", "goemotions28") == "annoyance"
    assert normalize_label("bored", "emodb7") == "boredom"
    assert normalize_label("surprised", "emodb7") is None  # EmoDB has no surprise
    assert resolve_concept("joy", "ekman7") == "happiness"
    assert resolve_concept("boredom", "ekman7") is None


def test_word_boundaries_and_negation_in_free_text():
    assert find_labels("unhappy, not happy") == ["sadness"]
    assert find_labels("no sign of fear, but clear anger") == ["anger"]
    assert find_labels("more surprise than fear; happiness") == ["surprise", "happiness"]
    # negation does not cross a clause break
    assert find_labels("there is no smile, so sadness") == ["sadness"]
    assert find_labels("surprisingly calm") == ["neutral"]


def test_synonym_table_is_lower_case_and_resolves():
    for word, concept in SYNONYMS.items():
        assert word == word.lower()
        assert concept in GOEMOTIONS_EKMAN_MAPPING or concept in ("happiness", "boredom", "contempt")


def test_quadrants():
    assert quadrant("anger") == "negative/high"
    assert quadrant("sadness") == "negative/low"
    assert quadrant("happiness") == "positive/high"
    assert quadrant("neutral") == "neutral"
    assert valence_arousal("surprise") == ("ambiguous", "high")
    assert same_quadrant("anger", "fear") and same_quadrant("happiness", "joy")
    assert same_quadrant("surprise", "fear") and same_quadrant("surprise", "happiness")
    assert not same_quadrant("anger", "sadness") and not same_quadrant("happiness", "sadness")
    assert not same_quadrant("neutral", "surprise") and not same_quadrant(None, "anger")
    assert same_quadrant("neutral", "neutral")
    for tax in TAXONOMIES.values():  # every label of every taxonomy has a placement
        for label in tax:
            quadrant(label)
    with pytest.raises(ValueError):
        quadrant("banana")
