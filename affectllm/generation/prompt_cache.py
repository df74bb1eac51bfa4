"""The key/value cache of ONE prompt across the several generate calls guided decoding makes on it.

Deliberately not here: batches (``generation.batch_cache``, ``generation.shared_prefix``) or the
cache storage itself (``generation.kv_cache.GrowingCache``).
"""

from __future__ import annotations

import torch

from affectllm.generation.kv_cache import GrowingCache


class PromptCache:
    """The key/value cache of one prompt's latest call, reused by the next call on the same text.

    Guided decoding calls ``generate`` up to eight times on one growing text (a bullet, the next
    bullet, Interpretation, Conclusion, then the label scores); without this every call re-reads
    the whole ~260-token prompt. Each call keeps the cached tokens its own token ids share with the
    cached ones (the longest common prefix: a cut rationale re-tokenises differently at its end)
    and runs only the rest. Single prompts only: a left-padded batch changes its padding between
    calls. The result equals the uncached computation up to float rounding (tested).
    """

    def __init__(self):
        self.cache = None
        self.ids = None  # [1 x n] token ids whose keys/values the cache holds

    def reuse(self, ids: torch.Tensor) -> dict:
        """``past_key_values`` for a call on ``ids`` [1 x m]: the cache cut to the shared prefix
        (at most m - 1 tokens, so the call has a token to run)."""
        if ids.shape[0] != 1:
            raise ValueError("PromptCache serves one prompt at a time")
        if self.cache is None:
            self.cache, self.ids = GrowingCache(), ids[:, :0]
        n, m = self.ids.shape[1], ids.shape[1]
        k = min(n, m)
        common = int((self.ids[0, :k] == ids[0, :k]).long().cumprod(0).sum()) if k else 0
        keep = min(common, m - 1)
        if n > keep:
            self.cache.crop(-(n - keep))
        self.ids = ids[:, :keep]
        return {"past_key_values": self.cache}

    def update(self, ids: torch.Tensor, new: torch.Tensor) -> None:
        """After a call on ``ids`` that generated ``new`` [1 x k]: the tokens now cached."""
        full = torch.cat([ids, new.to(ids.device)], dim=1)
        self.ids = full[:, :self.cache.get_seq_length()]
