"""Word tables behind :mod:`affectllm.knowledge.taxonomy`: free-text emotion words -> concepts.

A *concept* is an Ekman label (anger, disgust, fear, happiness, sadness, surprise, neutral),
``boredom``, ``contempt``, or one of the 27 GoEmotions fine labels. Taxonomies resolve concepts
to their own labels (see ``taxonomy.resolve_concept``); this module only holds data.

Words were chosen to be unambiguous emotion words: cue words such as "smile", "frown" or
"crying" are deliberately absent, since a rationale that says "the smile" has not named an
emotion. Keys are lower case; multi-word keys match across any whitespace.
"""

from __future__ import annotations

# GoEmotions fine label -> Ekman group, as published with the dataset (Demszky et al. 2020,
# google-research/goemotions data/ekman_mapping.json). Groups use the dataset's name "joy".
GOEMOTIONS_EKMAN_MAPPING: dict[str, str] = {
    **{w: "anger" for w in ("anger", "annoyance", "disapproval")},
    "disgust": "disgust",
    **{w: "fear" for w in ("fear", "nervousness")},
    **{w: "joy" for w in ("joy", "amusement", "approval", "excitement", "gratitude", "love", "optimism",
                          "relief", "pride", "admiration", "desire", "caring")},
    **{w: "sadness" for w in ("sadness", "disappointment", "embarrassment", "grief", "remorse")},
    **{w: "surprise" for w in ("surprise", "realization", "confusion", "curiosity")},
    "neutral": "neutral",
}

# FER2013 / mini-Xception class names (``affectllm.weights.FER_LABELS``) -> Ekman labels.
FER_SHORT_NAMES: dict[str, str] = {
    "angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "happiness", "sad": "sadness",
    "surprise": "surprise", "neutral": "neutral",
}

_GROUPS: dict[str, tuple[str, ...]] = {
    # Ekman labels
    "anger": ("anger", "angry", "angrily", "angered", "mad", "furious", "fury", "rage", "raging",
              "enraged", "irate", "livid", "outraged", "outrage", "hostile", "hostility", "wrath"),
    "disgust": ("disgust", "disgusted", "disgusting", "revulsion", "revolted", "repulsed", "repulsion",
                "grossed out", "nauseated", "loathing", "aversion"),
    "fear": ("fear", "fearful", "afraid", "scared", "frightened", "terrified", "terror", "panic",
             "panicked", "panicky", "alarmed", "horrified", "horror", "dread"),
    "happiness": ("happiness", "happy", "happily", "joyful", "joyous", "joyfully", "glad", "gladness",
                  "cheerful", "cheerfulness", "delighted", "delight", "elated", "elation",
                  "contentment", "pleased", "enjoyment"),
    "sadness": ("sadness", "sad", "sadly", "unhappy", "unhappiness", "sorrow", "sorrowful", "depressed",
                "miserable", "misery", "gloomy", "melancholy", "melancholic", "downcast", "dejected",
                "heartbroken", "despair", "despondent", "upset", "tearful"),
    "surprise": ("surprise", "surprised", "surprising", "astonished", "astonishment", "amazed",
                 "amazement", "shocked", "shock", "startled", "stunned"),
    "neutral": ("neutral", "neutrality", "expressionless", "impassive", "calm", "no emotion",
                "emotionless"),
    # Outside Ekman-7
    "boredom": ("boredom", "bored", "uninterested", "apathetic", "apathy", "listless", "weary",
                "disinterest", "disinterested", "indifferent", "indifference"),
    "contempt": ("contempt", "contemptuous", "scorn", "scornful", "disdain", "disdainful", "derision"),
    # GoEmotions fine labels (each resolves to its Ekman group in Ekman taxonomies)
    "joy": ("joy",),
    "admiration": ("admiration", "admiring", "admire", "awe", "impressed"),
    "amusement": ("amusement", "amused", "entertained"),
    "annoyance": ("annoyance", "annoyed", "irritated", "irritation", "irritable", "frustrated",
                  "frustration", "exasperated", "exasperation", "aggravated", "peeved", "fed up"),
    "approval": ("approval", "approving", "approve"),
    "caring": ("caring", "compassion", "compassionate", "sympathy", "sympathetic"),
    "confusion": ("confusion", "confused", "puzzled", "perplexed", "bewildered", "bewilderment"),
    "curiosity": ("curiosity", "curious", "intrigued", "inquisitive"),
    "desire": ("desire", "longing", "yearning", "craving"),
    "disappointment": ("disappointment", "disappointed", "let down", "dismayed", "dismay"),
    "disapproval": ("disapproval", "disapproving", "disapprove", "disagreement"),
    "embarrassment": ("embarrassment", "embarrassed", "ashamed", "shame", "humiliated", "humiliation",
                      "awkward", "sheepish", "self-conscious"),
    "excitement": ("excitement", "excited", "thrilled", "enthusiastic", "enthusiasm", "eager"),
    "gratitude": ("gratitude", "grateful", "thankful", "thankfulness"),
    "grief": ("grief", "grieving", "mourning", "bereaved", "anguish"),
    "love": ("love", "loving", "affection", "affectionate", "adoration", "fondness"),
    "nervousness": ("nervousness", "nervous", "anxious", "anxiety", "worried", "worry", "uneasy",
                    "unease", "apprehensive", "apprehension", "jittery"),
    "optimism": ("optimism", "optimistic", "hopeful"),
    "pride": ("pride", "proud"),
    "realization": ("realization", "realisation", "epiphany"),
    "relief": ("relief", "relieved"),
    "remorse": ("remorse", "remorseful", "regret", "regretful", "guilt", "guilty", "apologetic", "sorry"),
}

SYNONYMS: dict[str, str] = {}
for _concept, _words in _GROUPS.items():
    for _w in _words:
        if _w in SYNONYMS and SYNONYMS[_w] != _concept:
            raise AssertionError(f"synonym {_w!r} listed for {SYNONYMS[_w]} and {_concept}")
        SYNONYMS[_w] = _concept
for _short, _concept in FER_SHORT_NAMES.items():
    SYNONYMS.setdefault(_short, _concept)
