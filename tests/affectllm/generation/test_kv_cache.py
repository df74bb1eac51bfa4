"""GrowingCache: same keys/values and logits as DynamicCache, without a copy per token."""

import torch
from transformers import DynamicCache

from affectllm.generation.kv_cache import GrowingCache


def _steps(llm, cache, ids, n_steps=5):
    """Prefill ``ids`` then feed ``n_steps`` fixed tokens one at a time; logits of every call."""
    out = [llm(input_ids=ids, past_key_values=cache, use_cache=True).logits]
    for t in range(n_steps):
        nxt = torch.full((ids.shape[0], 1), 5 + t)
        out.append(llm(input_ids=nxt, past_key_values=cache, use_cache=True).logits)
    return out


def test_growing_cache_matches_dynamic_cache(tiny_llama):
    llm = tiny_llama[0]
    ids = torch.randint(3, 60, (2, 7))
    with torch.no_grad():
        ref, got = DynamicCache(), GrowingCache()
        for a, b in zip(_steps(llm, ref, ids), _steps(llm, got, ids)):
            torch.testing.assert_close(b, a)
        assert got.get_seq_length() == ref.get_seq_length() == 12
        for la, lb in zip(ref.layers, got.layers):
            torch.testing.assert_close(lb.keys, la.keys)
            torch.testing.assert_close(lb.values, la.values)


def test_growing_cache_writes_in_place_until_full(tiny_llama):
    llm = tiny_llama[0]
    with torch.no_grad():
        cache = GrowingCache()
        llm(input_ids=torch.randint(3, 60, (1, 4)), past_key_values=cache, use_cache=True)
        layer = cache.layers[0]
        buf, cap = layer._kbuf.data_ptr(), layer._kbuf.shape[-2]
        for t in range(cap - 4):
            llm(input_ids=torch.tensor([[7]]), past_key_values=cache, use_cache=True)
            assert layer._kbuf.data_ptr() == buf  # no reallocation, no copy of what is cached
        assert layer.keys.shape[-2] == cap
        llm(input_ids=torch.tensor([[7]]), past_key_values=cache, use_cache=True)
        assert layer._kbuf.shape[-2] >= 2 * (cap + 1)  # full: the buffer doubles
        assert layer.keys.shape[-2] == cap + 1


def test_crop_and_batch_select_then_continue_match_dynamic_cache(tiny_llama):
    llm = tiny_llama[0]
    ids = torch.randint(3, 60, (3, 6))
    with torch.no_grad():
        ref, got = DynamicCache(), GrowingCache()
        for c in (ref, got):
            _steps(llm, c, ids, 3)
            c.crop(-2)  # as PromptCache does for a re-tokenised tail
            c.batch_select_indices(torch.tensor([0, 2]))  # dropping a finished row
        a = _steps(llm, ref, torch.tensor([[9], [11]]), 3)
        b = _steps(llm, got, torch.tensor([[9], [11]]), 3)
    for x, y in zip(a, b):
        torch.testing.assert_close(y, x)
    assert got.get_seq_length() == ref.get_seq_length() == 6 + 3 - 2 + 4  # prefill + steps - crop + new
