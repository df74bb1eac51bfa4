"""DecisionPool: label mapping, uncovered labels, missing-channel invariance, the guard, the asset."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from decision_synthetic import FER_NAMES

from affectllm.decision.pool import DecisionPool, channel_distribution, channel_evidence, load_pool
from affectllm.knowledge.taxonomy import get_taxonomy

EKMAN = get_taxonomy("ekman7").labels
EMODB = get_taxonomy("emodb7").labels
FER_ON_EMODB = ["anger", "disgust", "fear", "happiness", "sadness", "neutral"]  # FER has no boredom


def emodb_pool(**kw) -> DecisionPool:
    return DecisionPool("emodb7", {"face": 1.3, "voice": 0.8, "llm": 0.4},
                        {y: 0.1 * i for i, y in enumerate(EMODB)}, temperature=1.2,
                        coverage={"face": FER_ON_EMODB, "voice": list(EMODB), "llm": list(EMODB)}, **kw)


def fer(**p) -> dict[str, float]:
    rest = (1.0 - sum(p.values())) / (len(FER_NAMES) - len(p))
    return {n: p.get(n, rest) for n in FER_NAMES}


def item_logits(pool: DecisionPool, channels: dict) -> np.ndarray:
    lifts, _ = pool.lift_tensor([pool.evidence(channels)])
    return pool.logits(lifts)[0]


def test_channel_label_names_map_onto_the_taxonomy():
    ev = channel_evidence("face", {"happy": 0.7, "sad": 0.2, "angry": 0.1}, "ekman7", 0.01)
    assert ev.top_label == "happiness" and ev.top_p == pytest.approx(0.7)
    joy = channel_evidence("text", {"joy": 0.6, "sadness": 0.4}, "ekman7", 0.01)
    assert joy.top_label == "happiness"
    # two names of one label from one channel add up
    both = channel_evidence("text", {"happy": 0.3, "joy": 0.3, "sad": 0.4}, "ekman7", 0.01)
    assert both.top_label == "happiness" and both.top_p == pytest.approx(0.6)
    # and the other way round: GoEmotions-Ekman calls it joy
    assert channel_evidence("face", {"happy": 0.9, "sad": 0.1}, "goemotions_ekman", 0.01).top_label == "joy"


def test_fer_does_not_push_down_boredom_which_it_cannot_name():
    pool = emodb_pool()
    voice = {y: 1 / 7 for y in EMODB}
    sad_face = fer(sad=0.85)
    delta = item_logits(pool, {"voice": voice, "face": sad_face}) - item_logits(pool, {"voice": voice})
    i = {y: EMODB.index(y) for y in EMODB}
    assert delta[i["boredom"]] == 0.0  # untouched by FER
    assert delta[i["sadness"]] > 0
    for y in ("anger", "disgust", "fear", "happiness", "neutral"):  # covered, rated below chance
        assert delta[i[y]] < 0
    # FER's surprise (not an EmoDB label) is dropped, not mistaken for anything
    assert pool.evidence({"face": fer(surprise=0.9)})["face"].top_label in FER_ON_EMODB
    # FER's own answer on EmoDB (its "alone" baseline): surprise dropped, boredom 0, renormalised
    alone = channel_distribution("face", fer(surprise=0.4, sad=0.3), "emodb7")
    assert alone[EMODB.index("boredom")] == 0.0 and alone.sum() == pytest.approx(1.0)
    assert alone[EMODB.index("sadness")] == pytest.approx(0.3 / 0.6)


def test_a_covered_label_missing_from_the_scores_counts_as_zero_and_unknown_labels_raise():
    pool = emodb_pool()
    sparse = pool.evidence({"voice": {"anger": 0.9, "sadness": 0.1}})["voice"]
    assert sparse.lift[EMODB.index("boredom")] < 0  # voice covers boredom and gave it nothing
    with pytest.raises(ValueError, match="face.*boredom"):
        pool.decide({"face": {"bored": 0.5, "happy": 0.5}})
    with pytest.raises(ValueError, match="no fitted weight.*text"):
        pool.decide({"text": {"anger": 1.0}})
    with pytest.raises(ValueError, match="voice.*not a probability"):
        pool.decide({"voice": {"anger": -0.1, "sadness": 1.1}})


def test_a_missing_channel_leaves_the_other_channels_terms_unchanged():
    rng = np.random.default_rng(0)
    pool = emodb_pool()
    for _ in range(50):
        channels = {"face": dict(zip(FER_NAMES, rng.dirichlet(np.ones(7)).tolist())),
                    "voice": dict(zip(EMODB, rng.dirichlet(np.ones(7)).tolist())),
                    "llm": dict(zip(EMODB, rng.dirichlet(np.ones(7) * 0.3).tolist()))}
        full = pool.evidence(channels)
        for gone in channels:
            rest = {c: s for c, s in channels.items() if c != gone}
            part = pool.evidence(rest)
            for c in rest:  # each remaining channel's message is the same
                np.testing.assert_array_equal(part[c].lift, full[c].lift)
            # and the pooled logits differ by exactly the missing channel's term
            term = pool.weights[gone] * full[gone].lift / pool.temperature
            np.testing.assert_allclose(item_logits(pool, channels) - item_logits(pool, rest), term, atol=1e-12)


def test_contributions_add_up_to_the_answer_logit():
    pool = emodb_pool()
    d = pool.decide({"face": fer(happy=0.6), "voice": {y: (0.5 if y == "happiness" else 0.5 / 6) for y in EMODB}})
    assert d.emotion == "happiness" and d.channels_used == ["face", "voice"]
    p = np.array(list(d.probabilities.values()))
    assert list(d.probabilities) == list(EMODB) and p.sum() == pytest.approx(1.0)
    logit = d.bias_for_answer + sum(c["log_support_for_answer"] for c in d.contributions.values())
    z = item_logits(pool, {"face": fer(happy=0.6), "voice": {y: (0.5 if y == "happiness" else 0.5 / 6)
                                                              for y in EMODB}})
    assert logit == pytest.approx(z[EMODB.index("happiness")])
    assert d.contributions["face"]["top_label"] == "happiness"
    assert d.contributions["face"]["weight"] == 1.3


def random_channel(rng: np.random.Generator, names, top_max: float) -> dict[str, float]:
    """A distribution over ``names`` whose largest value is at most ``top_max``."""
    while True:
        p = rng.dirichlet(np.full(len(names), rng.choice([0.05, 0.3, 1.0])))
        if p.max() <= top_max:
            return dict(zip(names, p.tolist()))


def test_no_confident_channel_never_gives_p_ge_099_however_the_pool_was_fitted():
    rng = np.random.default_rng(1234)
    fired = 0
    for case in range(1500):
        pool = DecisionPool("emodb7", {c: float(rng.uniform(0, 12)) for c in ("face", "voice", "text", "llm")},
                            {y: float(rng.normal(0, 4)) for y in EMODB}, temperature=float(rng.uniform(0.05, 3)),
                            coverage={"face": FER_ON_EMODB, "voice": list(EMODB), "text": list(EMODB),
                                      "llm": list(EMODB)})
        channels = {"face": random_channel(rng, FER_NAMES, 0.9), "voice": random_channel(rng, EMODB, 0.9),
                    "text": random_channel(rng, EMODB, 0.9),
                    "llm": {y: float(y == "anger") for y in EMODB}}  # the LLM's certainty unlocks nothing
        keep = [c for c in channels if rng.random() < 0.7]
        d = pool.decide({c: channels[c] for c in keep})
        top = max(d.probabilities.values())
        assert top < 0.99, f"case {case}: {d}"
        fired += d.guard_applied
        unguarded = int(np.argmax(item_logits(pool, {c: channels[c] for c in keep})))
        assert d.emotion == EMODB[unguarded]  # the guard lowers confidence, never changes the answer
    assert fired > 100  # the planted cases do reach the guard


def test_one_confident_expert_unlocks_high_confidence():
    pool = emodb_pool()
    voice = {y: (0.97 if y == "anger" else 0.005) for y in EMODB}
    d = pool.decide({"voice": voice, "face": fer(angry=0.95)})
    assert d.emotion == "anger" and d.probabilities["anger"] >= 0.99 and not d.guard_applied
    sharp = replace(pool, temperature=0.5)
    unsure = {"voice": {y: (0.88 if y == "anger" else 0.02) for y in EMODB}, "face": fer(angry=0.88)}
    z = item_logits(sharp, unsure)
    assert np.exp(z.max()) / np.exp(z).sum() > 0.995  # without the guard it would claim certainty
    locked = sharp.decide(unsure)
    assert locked.guard_applied and locked.emotion == "anger"
    assert locked.probabilities["anger"] == pytest.approx(pool.guard_cap, abs=1e-6)
    assert locked.effective_temperature > sharp.temperature


def test_save_and_load_round_trip(tmp_path):
    pool = emodb_pool(fitted_on={"weights": "train (10 rows)", "bias": "train", "temperature": "dev"})
    path = pool.save(tmp_path / "emodb7.json")
    data = json.loads(path.read_text())
    assert data["labels"] == list(EMODB) and data["fitted_on"]["temperature"] == "dev"
    loaded = load_pool("emodb7", path)
    assert loaded == pool
    item = {"face": fer(happy=0.5), "voice": {y: 1 / 7 for y in EMODB}}
    assert loaded.decide(item) == pool.decide(item)
    with pytest.raises(ValueError, match="not ekman7"):
        load_pool("ekman7", path)
    with pytest.raises(FileNotFoundError, match="fit_decision"):
        load_pool("ekman7", tmp_path / "missing.json")


def test_parameter_count_and_bad_parameters():
    assert emodb_pool().n_parameters == 3 + 7 + 1
    with pytest.raises(ValueError, match="weights"):
        DecisionPool("ekman7", {"face": -1.0}, {y: 0.0 for y in EKMAN})
    with pytest.raises(ValueError, match="bias labels"):
        DecisionPool("ekman7", {"face": 1.0}, {"anger": 0.0})
    with pytest.raises(ValueError, match="guard_cap"):
        DecisionPool("ekman7", {"face": 1.0}, {y: 0.0 for y in EKMAN}, guard_cap=0.995)
