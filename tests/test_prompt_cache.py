"""PromptCache: reusing one prompt's keys/values across guided calls changes nothing but the cost."""

import pytest
import torch

from affectllm.guided import Batch, PromptCache, generate_rationales, score_labels
from affectllm.inference import Explainer
from affectllm.taxonomy import get_taxonomy

PROMPT = "<|im_start|>user\nEvidence: AU12 lip corner puller, intensity D.<|im_end|>\n<|im_start|>assistant\n<think>\nObservations:\n-"


def _batch(model, with_face: bool):
    feats = {"face": torch.randn(1, 8, generator=torch.Generator().manual_seed(0))} if with_face else {}
    prompt = PROMPT
    if with_face:
        prompt = model.expand_placeholders(prompt.replace("Evidence:", "<face>\nEvidence:"), ["face"])
    return Batch([prompt], [feats], [["AU12 lip corner puller, intensity D:", "Words:"]])


@pytest.mark.parametrize("guided", [True, False])
@pytest.mark.parametrize("with_face", [False, True])
def test_cached_generation_and_scores_equal_uncached(tiny_affect_factory, guided, with_face):
    enc = {"face": {"evidence": "both"}} if with_face else {}
    model = tiny_affect_factory("llama", encoders=enc).eval()
    labels = get_taxonomy("ekman7").labels
    batch = _batch(model, with_face)
    plain = generate_rationales(model, batch, 32, guided=guided)
    cache = PromptCache()
    cached = generate_rationales(model, batch, 32, guided=guided, cache=cache)
    assert cached == plain
    assert cache.ids is not None and cache.cache.get_seq_length() == cache.ids.shape[1] > 0
    p_plain = score_labels(model, batch, plain, labels)
    p_cached = score_labels(model, batch, cached, labels, cache=cache)
    torch.testing.assert_close(p_cached, p_plain, atol=1e-5, rtol=1e-4)
    assert cache.cache is None  # used up by scoring


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
    from affectllm import guided
    from affectllm.observations import Observations

    model = tiny_affect_factory("llama").eval()
    ex = Explainer(model, max_new_tokens=24, guided=True)
    obs = [Observations(text="We got the keys today!!"), Observations(text="I miss her so much.")]
    batched = ex.explain(obs)  # two prompts: no cache
    used = []
    real = guided.PromptCache.reuse
    monkeypatch.setattr(guided.PromptCache, "reuse", lambda self, ids: used.append(1) or real(self, ids))
    single = [ex.explain(o) for o in obs]
    assert used  # the one-item path reused keys/values
    for b, s in zip(batched, single):
        assert b.explanation.text == s.explanation.text
        for k, v in b.explanation.probabilities.items():
            assert s.explanation.probabilities[k] == pytest.approx(v, abs=1e-4)
