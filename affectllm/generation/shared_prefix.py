"""Shared-prefix prefill: a batch's common prompt start is run once, not once per row.

Every prompt of a batch begins with the same system prompt and instructions (106 of the ~146
tokens of a text item); its keys and values depend only on the tokens and their positions, so
they are the same in every row. Running them 8 times was a quarter of a batched explanation
on CPU (a prefill is compute-bound: 1.5 s of 5 s). Here the common prefix is run once at batch
size 1, its cache is repeated for each row, and the rows are laid out as
``[prefix][left padding][rest of the prompt]`` with the padding masked out. Positions come from
the attention mask (transformers counts only visible columns), so every row sees exactly what
it sees left padded, and the result equals the plain batch up to float rounding (tested).

The prefix stops before the first feature placeholder (those carry each row's own features).
"""

from __future__ import annotations

import torch

from affectllm.generation.kv_cache import GrowingCache

MIN_SHARED = 16  # shorter common starts are not worth a separate forward


def common_prefix(ids: torch.Tensor, mask: torch.Tensor, stop_ids=()) -> int:
    """Tokens every row of the left-padded ``ids``/``mask`` [b x s] starts with, before any
    ``stop_ids`` token and leaving each row at least one token of its own."""
    rows = [r[m.bool()] for r, m in zip(ids, mask)]
    n = min(len(r) for r in rows) - 1
    if n <= 0:
        return 0
    head = torch.stack([r[:n] for r in rows])  # [b x n]
    same = (head == head[:1]).all(0)
    for t in stop_ids:
        same &= head[0] != t
    return int(same.long().cumprod(0).sum())


def start_shared(model, ids: torch.Tensor, mask: torch.Tensor, min_shared: int = MIN_SHARED):
    """``(ids, mask, cache)`` for a generate call over the left-padded batch ``ids``/``mask``:
    when its rows share at least ``min_shared`` leading tokens, the rows re-laid out as
    ``[prefix][padding][rest]`` and a cache already holding the prefix; otherwise the inputs
    unchanged and an empty cache."""
    cache = GrowingCache()
    p = common_prefix(ids, mask, tuple(model.placeholder_ids.values())) if ids.shape[0] > 1 else 0
    if p < min_shared:
        return ids, mask, cache
    prefix = ids[0][mask[0].bool()][None, :p]  # [1 x p]
    with torch.no_grad():
        model.llm(inputs_embeds=model.embed_inputs(prefix), past_key_values=cache, use_cache=True,
                  logits_to_keep=1)
    cache.batch_repeat_interleave(ids.shape[0])
    width = ids.shape[1] - p  # every row's rest (after its padding) fits in the old width minus p
    new_ids = torch.full((ids.shape[0], p + width), model.safe_id, dtype=ids.dtype, device=ids.device)
    new_mask = torch.zeros_like(new_ids, dtype=mask.dtype)
    new_ids[:, :p], new_mask[:, :p] = prefix, 1
    for i in range(ids.shape[0]):
        rest = ids[i][mask[i].bool()][p:]
        new_ids[i, new_ids.shape[1] - len(rest):] = rest
        new_mask[i, new_mask.shape[1] - len(rest):] = 1
    return new_ids, new_mask, cache
