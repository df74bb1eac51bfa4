"""train.collator: answer-only labels, placeholder expansion, features from cache or inline."""

from __future__ import annotations

import pytest
import torch

from _train_data import DIMS, answer, make_records
from affectllm.errors import InputError
from affectllm.perception.cache import FeatureCache
from train.collator import IGNORE_INDEX, AffectCollator


def test_labels_cover_exactly_the_answer(tiny_affect_factory):
    model = tiny_affect_factory()
    coll = AffectCollator(model)
    rec = make_records(1, modalities=("face",))[0]
    batch = coll([rec])
    ids, labels = batch["input_ids"][0], batch["labels"][0]
    trained = labels != IGNORE_INDEX
    # The trained tokens decode to the assistant content plus the template's end of turn.
    text = model.tokenizer.decode(ids[trained])
    assert text == answer(rec["label"]) + "<|im_end|>\n"
    # Everything before the answer (system, user, placeholders) is masked, nothing after it.
    first = int(trained.nonzero()[0])
    assert not trained[:first].any() and trained[first:].all()
    face_id = model.placeholder_ids["face"]
    assert int((ids == face_id).sum()) == model.num_tokens("face") == 2
    assert not trained[ids == face_id].any()
    assert batch["features"]["face"].shape == (1, 1, DIMS["face"])


def test_batch_runs_through_the_model_with_padding_and_masks(tiny_affect_factory):
    model = tiny_affect_factory()
    coll = AffectCollator(model)
    recs = make_records(2, modalities=("face", "audio"), frames=(3, 5))
    batch = coll(recs)
    assert batch["features"]["audio"].shape == (2, 5, DIMS["audio"])
    assert batch["feature_masks"]["audio"].sum(1).tolist() == [3, 5]
    assert "face" not in batch.get("feature_masks", {})  # same length: no mask needed
    # Right padding: the shorter row ends in pads with mask 0 and labels -100.
    lengths = batch["attention_mask"].sum(1)
    short = int(lengths.argmin())
    n = int(lengths[short])
    if n < batch["input_ids"].shape[1]:
        assert (batch["input_ids"][short, n:] == coll.pad_id).all()
        assert (batch["labels"][short, n:] == IGNORE_INDEX).all()
    out = model(**batch)
    assert torch.isfinite(out.loss)


def test_features_from_the_cache_and_bad_records_are_skipped(tiny_affect_factory, tmp_path, caplog):
    model = tiny_affect_factory()
    cache = FeatureCache(tmp_path / "features")
    recs = make_records(3, modalities=("face",), cache=cache)
    recs[1]["features"]["face"] = "missing-key"
    coll = AffectCollator(model, feature_cache=cache)
    batch = coll([{"record": __import__("json").dumps(r)} for r in recs])
    assert batch["input_ids"].shape[0] == 2  # the record with the missing feature was dropped
    assert "not in the feature cache" in caplog.text
    x0 = cache.load(recs[0]["features"]["face"])[0]["face"]
    assert torch.equal(batch["features"]["face"][0], x0)
    with pytest.raises(InputError, match="none of its 1 records"):
        coll([recs[1]])


def test_placeholder_without_projector_is_dropped_and_max_length_truncates_answer(tiny_affect_factory):
    model = tiny_affect_factory(encoders={"image": {"evidence": "text"}})  # image: no projector
    coll = AffectCollator(model, max_length=None)
    rec = make_records(1, modalities=("face", "image"))[0]
    batch = coll([rec])
    assert "image" not in batch["features"]
    full = batch["input_ids"].shape[1]
    n_prompt = int((batch["labels"][0] == IGNORE_INDEX).sum())
    short = AffectCollator(model, max_length=n_prompt + 3)([rec])
    assert short["input_ids"].shape[1] == n_prompt + 3 < full
    assert int((short["labels"][0] != IGNORE_INDEX).sum()) == 3
    with pytest.raises(InputError):
        AffectCollator(model, max_length=n_prompt)([rec])


def test_record_without_answer_or_features_is_rejected(tiny_affect_factory):
    model = tiny_affect_factory()
    coll = AffectCollator(model)
    rec = make_records(1, modalities=("face",))[0]
    with pytest.raises(InputError, match="assistant"):
        coll.encode({**rec, "messages": rec["messages"][:-1]})
    with pytest.raises(InputError, match="no face features"):
        coll.encode({**rec, "features": {}})
