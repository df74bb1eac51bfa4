"""PromptCache: reusing one prompt's keys/values across guided calls changes nothing but the cost."""

import pytest
import torch

from affectllm.generation.batch_cache import BatchCache
from affectllm.generation.guided import Batch, generate_rationales, score_labels
from affectllm.generation.prompt_cache import PromptCache
from affectllm.inference import Explainer
from affectllm.generation.kv_cache import GrowingCache
from affectllm.knowledge.taxonomy import get_taxonomy

PROMPT = "<|im_start|>user\nEvidence: AU12 lip corner puller, intensity D.<|im_end|>\n<|im_start|>assistant\n<think>\nObservations:\n-"


def _batch(model, with_face: bool):
    feats = {"face": torch.randn(1, 8, generator=torch.Generator().manual_seed(0))} if with_face else {}
    prompt = PROMPT
    if with_face:
        prompt = model.expand_placeholders(prompt.replace("Evidence:", "<face>\nEvidence:"), ["face"])
    return Batch([prompt], [feats], [["AU12 lip corner puller, intensity D:", "Words:"]])


def _assert_cached_equals_uncached(model, batch, guided, cache, filled):
    """Rationales with ``cache`` equal those without; ``filled()`` holds after generation; the
    label probabilities scored through the cache equal the uncached ones; scoring uses it up."""
    labels = get_taxonomy("ekman7").labels
    plain = generate_rationales(model, batch, 32, guided=guided)
    cached = generate_rationales(model, batch, 32, guided=guided, cache=cache)
    assert cached == plain
    assert filled()
    p_plain = score_labels(model, batch, plain, labels)
    p_cached = score_labels(model, batch, cached, labels, cache=cache)
    torch.testing.assert_close(p_cached, p_plain, atol=1e-5, rtol=1e-4)
    assert cache.cache is None  # used up by scoring


@pytest.mark.parametrize("guided", [True, False])
@pytest.mark.parametrize("with_face", [False, True])
def test_cached_generation_and_scores_equal_uncached(tiny_affect_factory, guided, with_face):
    enc = {"face": {"evidence": "both"}} if with_face else {}
    model = tiny_affect_factory("llama", encoders=enc).eval()
    batch = _batch(model, with_face)
    cache = PromptCache()
    _assert_cached_equals_uncached(model, batch, guided, cache,
                                   lambda: cache.ids is not None
                                   and cache.cache.get_seq_length() == cache.ids.shape[1] > 0)


def test_cache_keeps_only_the_shared_prefix(tiny_affect_factory):
    model = tiny_affect_factory("llama").eval()
    ids = model.tokenizer(PROMPT, return_tensors="pt", add_special_tokens=False)["input_ids"]
    cache = PromptCache()
    out = model.generate(ids, torch.ones_like(ids), max_new_tokens=5, do_sample=False, **cache.reuse(ids))
    cache.update(ids, out)
    n = cache.ids.shape[1]
    assert n >= ids.shape[1]
    other = ids.clone()
    other[0, 10] = (other[0, 10] + 1) % 50  # differs from token 10 on
    cache.reuse(other)
    assert cache.ids.shape[1] == cache.cache.get_seq_length() == 10
    cache.reuse(ids[:, :4])  # a shorter text keeps at most all but its last token
    assert cache.cache.get_seq_length() == 3


def test_cache_refuses_batches(tiny_affect_factory):
    model = tiny_affect_factory("llama").eval()
    batch = Batch([PROMPT, PROMPT + " x"], [{}, {}], None)
    with pytest.raises(ValueError, match="one-prompt"):
        generate_rationales(model, batch, 8, guided=False, cache=PromptCache())


def test_explainer_single_item_uses_the_cache_and_matches_batch(tiny_affect_factory, monkeypatch):
    from affectllm.generation import guided
    from affectllm.perception.observations import Observations

    model = tiny_affect_factory("llama").eval()
    ex = Explainer(model, max_new_tokens=24, guided=True)
    obs = [Observations(text="We got the keys today!!"), Observations(text="I miss her so much.")]
    batched = ex.explain(obs)  # two prompts: no cache
    used = []
    real = PromptCache.reuse
    monkeypatch.setattr(PromptCache, "reuse", lambda self, ids: used.append(1) or real(self, ids))
    single = [ex.explain(o) for o in obs]
    assert used  # the one-item path reused keys/values
    for b, s in zip(batched, single):
        assert b.explanation.text == s.explanation.text
        for k, v in b.explanation.probabilities.items():
            assert s.explanation.probabilities[k] == pytest.approx(v, abs=1e-4)


@pytest.mark.parametrize("guided", [True, False])
@pytest.mark.parametrize("with_face", [False, True])
def test_batch_cache_scores_equal_uncached(tiny_affect_factory, guided, with_face):
    """A left-padded batch of unequal prompts: scoring through the BatchCache (masked columns,
    right-padded rests) gives the uncached probabilities and the same rationales."""
    enc = {"face": {"evidence": "both"}} if with_face else {}
    model = tiny_affect_factory("llama", encoders=enc).eval()
    one = _batch(model, with_face)
    short = PROMPT.replace("Evidence: AU12 lip corner puller, intensity D.", "Words: calm")
    batch = Batch([one.prompts[0], short, one.prompts[0] + " smile"],
                  [one.item_features[0], {}, one.item_features[0]],
                  [one.anchors[0], ["Words:"], one.anchors[0][:1]])
    if with_face:  # every prompt of a batch has features for the soft modality
        batch.prompts[1] = one.prompts[0].replace("AU12 lip corner puller, intensity D.", "Words: calm")
        batch.item_features[1] = {"face": torch.ones(1, 8)}
    cache = BatchCache()
    _assert_cached_equals_uncached(model, batch, guided, cache, lambda: cache.cache is not None)


def test_batch_cache_keeps_each_rows_common_prefix(tiny_affect_factory):
    model = tiny_affect_factory("llama").eval()
    tok = model.tokenizer
    tok.padding_side = "left"
    enc = tok([PROMPT, PROMPT[:60]], return_tensors="pt", padding=True, add_special_tokens=False)
    cache = BatchCache()
    cache.start(GrowingCache())
    out = model.generate(enc["input_ids"], enc["attention_mask"], max_new_tokens=4, do_sample=False,
                         past_key_values=cache.cache)
    cache.record(enc["input_ids"], enc["attention_mask"], out)
    texts = [PROMPT + tok.decode(out[0]), PROMPT[:60] + " sad"]  # row 1 left its generated tail
    enc2 = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    ids, mask = cache.layout(enc2["input_ids"], enc2["attention_mask"], tok.pad_token_id)
    L = cache.ids.shape[1]
    n_prompt1 = int(enc["attention_mask"][1].sum())
    assert int(mask[1, :L].sum()) <= n_prompt1 + 1 < int(mask[0, :L].sum())  # row 1 hides its stale tail
    for i in range(2):  # visible cached tokens + rest == the text to score
        seen = torch.cat([ids[i, :L][mask[i, :L].bool()], ids[i, L:][mask[i, L:].bool()]])
        assert seen.tolist() == enc2["input_ids"][i][enc2["attention_mask"][i].bool()].tolist()
