"""Shared-prefix prefill: a batch's common prompt start run once gives the plain batch's output."""

import pytest
import torch

from affectllm.generation.guided import Batch, _tokenize, generate_rationales
from affectllm.generation.kv_cache import GrowingCache
from affectllm.generation.shared_prefix import common_prefix, start_shared

from _chat_prompts import TEXTS, chat_prompts as _prompts


def test_common_prefix_stops_at_placeholders_and_leaves_a_token():
    ids = torch.tensor([[0, 5, 6, 7, 8], [5, 6, 7, 9, 1]])
    mask = torch.tensor([[0, 1, 1, 1, 1], [1, 1, 1, 1, 1]])
    assert common_prefix(ids, mask) == 3
    assert common_prefix(ids, mask, stop_ids=(7,)) == 2
    same = torch.tensor([[5, 6, 7], [5, 6, 7]])
    assert common_prefix(same, torch.ones_like(same)) == 2  # each row keeps one token to run


def test_shared_layout_generates_what_the_plain_batch_does(tiny_affect_factory):
    model = tiny_affect_factory("llama").eval()
    ids, mask = _tokenize(model, _prompts())
    p = common_prefix(ids, mask)
    assert p >= 16
    new_ids, new_mask, cache = start_shared(model, ids, mask)
    assert cache.get_seq_length() == p
    for i in range(ids.shape[0]):  # same visible tokens, in the same order
        assert new_ids[i][new_mask[i].bool()].tolist() == ids[i][mask[i].bool()].tolist()
    assert bool(new_mask[:, -1].all())
    kw = dict(max_new_tokens=12, do_sample=False, output_scores=True, return_dict_in_generate=True)
    plain = model.llm.generate(inputs_embeds=model.embed_inputs(ids), attention_mask=mask,
                               past_key_values=GrowingCache(), **kw)
    shared = model.llm.generate(inputs_embeds=model.embed_inputs(new_ids), attention_mask=new_mask,
                                past_key_values=cache, **kw)
    assert shared.sequences.tolist() == plain.sequences.tolist()
    for a, b in zip(shared.scores, plain.scores):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_short_or_single_batches_are_left_as_they_are(tiny_affect_factory):
    model = tiny_affect_factory("llama").eval()
    ids, mask = _tokenize(model, _prompts()[:1])
    assert start_shared(model, ids, mask)[0] is ids  # one row: nothing to share
    ids, mask = _tokenize(model, ["abc def", "abc xyz"])
    new_ids, _, cache = start_shared(model, ids, mask)
    assert new_ids is ids and cache.get_seq_length() == 0


@pytest.mark.parametrize("guided", [True, False])
def test_batched_rationales_equal_one_by_one(tiny_affect_factory, guided):
    model = tiny_affect_factory("llama").eval()
    anchors = [["Words:"]] * len(TEXTS)
    batch = Batch(_prompts(), [{} for _ in TEXTS], anchors, [[] for _ in TEXTS])
    together = generate_rationales(model, batch, 24, guided=guided)
    alone = [generate_rationales(model, Batch([p], [{}], [a], [[]]), 24, guided=guided)[0]
             for p, a in zip(batch.prompts, anchors)]
    assert together == alone


@pytest.mark.parametrize("guided", [True, False])
def test_shared_prefix_before_soft_tokens(tiny_affect_factory, guided):
    """Rows with face features after the shared system prompt: the prefix stops before the
    placeholders, each row keeps its own features, and batched equals one by one."""
    model = tiny_affect_factory("llama", encoders={"face": {"evidence": "both"}}).eval()
    prompts = [model.expand_placeholders(p.replace("Words:", "<face>\nWords:"), ["face"]) for p in _prompts()]
    feats = [{"face": torch.randn(1, 8, generator=torch.Generator().manual_seed(i))} for i in range(len(prompts))]
    ids, mask = _tokenize(model, prompts)
    p = common_prefix(ids, mask, tuple(model.placeholder_ids.values()))
    assert p >= 16 and not bool((ids[0][mask[0].bool()][:p] == model.placeholder_ids["face"]).any())
    anchors = [["Words:"]] * len(prompts)
    batch = Batch(prompts, feats, anchors, [[] for _ in prompts])
    together = generate_rationales(model, batch, 24, guided=guided)
    alone = [generate_rationales(model, Batch([q], [f], [a], [[]]), 24, guided=guided)[0]
             for q, f, a in zip(prompts, feats, anchors)]
    assert together == alone
