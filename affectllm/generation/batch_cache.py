"""BatchCache: a batched generation's keys/values, reused by the label scoring that follows it.

After a batch writes its rationales, the labels are scored after ``prompt + rationale +
</think><answer>``. Without a cache that scoring re-reads every prompt and rationale (8 x ~350
tokens: a third of a batched explanation's time on CPU). A :class:`PromptCache` crops its
cache to the shared prefix, which a batch cannot do (each row shares a different length with
its re-tokenised text), so this class *masks* instead: each row keeps the cached columns of its
longest common token prefix with the text to score, the rest of its columns are hidden from
attention, and only each row's remaining tokens (a few, right padded) and the labels are run.
Positions count only visible columns, so the result equals the uncached scoring up to float
rounding (tested).

Only the last generate call that covered every row is kept (a guided batch's Conclusion call).
"""

from __future__ import annotations

import torch


class BatchCache:
    """Keys/values of the latest generate call over a whole left-padded batch."""

    def __init__(self):
        self.cache = None
        self.ids = None   # [b x L] token ids whose keys/values the cache holds
        self.mask = None  # [b x L] 1 where those ids are real (not left padding)

    def start(self, cache) -> None:
        """Keep ``cache``, the ``past_key_values`` of a generate call over the whole batch
        (then :meth:`record` what it holds)."""
        self.cache = cache

    def record(self, ids: torch.Tensor, mask: torch.Tensor, new: torch.Tensor) -> None:
        """After generating ``new`` [b x g] from ``ids``/``mask`` [b x s]: what the cache holds."""
        n = self.cache.get_seq_length()
        self.ids = torch.cat([ids, new.to(ids.device)], 1)[:, :n]
        self.mask = torch.cat([mask, torch.ones_like(new, device=mask.device)], 1)[:, :n].bool()

    def drop(self) -> None:
        self.cache = self.ids = self.mask = None

    def layout(self, ids: torch.Tensor, mask: torch.Tensor, pad_id: int, placeholder_ids=()):
        """For scoring the left-padded texts ``ids``/``mask`` [b x s]: ``(input_ids, mask)`` of
        ``[cached columns, remaining tokens right padded]`` (cached columns outside each row's
        common prefix are masked out), or None when a row cannot use the cache (a feature
        placeholder would have to be run again)."""
        if self.cache is None or ids.shape[0] != self.ids.shape[0]:
            return None
        keep = torch.zeros_like(self.mask)
        rests = []
        for i in range(ids.shape[0]):
            want = ids[i][mask[i].bool()]
            cols = self.mask[i].nonzero().flatten()
            have = self.ids[i, cols]
            k = min(len(want) - 1, len(have))
            common = int((have[:k] == want[:k]).long().cumprod(0).sum()) if k > 0 else 0
            keep[i, cols[:common]] = True
            rests.append(want[common:])
            if any(int(t) in placeholder_ids for t in rests[-1]):
                return None
        r = max(len(x) for x in rests)
        rest_ids = torch.full((len(rests), r), pad_id, dtype=ids.dtype, device=ids.device)
        rest_mask = torch.zeros(len(rests), r, dtype=torch.bool, device=ids.device)
        for i, x in enumerate(rests):
            rest_ids[i, :len(x)] = x
            rest_mask[i, :len(x)] = True
        return torch.cat([self.ids, rest_ids], 1), torch.cat([keep, rest_mask], 1).long()
