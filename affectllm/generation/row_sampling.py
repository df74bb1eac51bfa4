"""Sampling whose draws belong to the row, not the batch: greedy search over Gumbel-perturbed logits.

``generate(do_sample=True)`` draws every row from one global random stream, so a row's sample
depends on what else is in its batch; batching the sampled candidates of several items would
change each item's candidates. Here each row has its own ``torch.Generator`` seeded from the row's
seed and the generate call's index, and sampling is done the Gumbel-max way: add Gumbel noise to
the tempered, nucleus-truncated logits and let greedy search take the argmax, which is an exact
draw from the truncated softmax (Gumbel 1954; the trick behind ``torch.distributions`` samplers).
So a row draws the same tokens alone or in any batch, and the candidates of all failing items can
share one batch.

Deliberately not here: which rows are sampled or how many (``affectllm.inference``).
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessor


class RowSampler(LogitsProcessor):
    """Per-row seeded temperature + top-p sampling as a logits processor for greedy ``generate``.

    ``seeds``: one int per row of the batch, in row order; ``call``: the index of this generate
    call within one rationale (guided decoding makes several), mixed into each row's seed so
    calls do not repeat their noise. Must come last among the processors.
    """

    def __init__(self, seeds: list[int], temperature: float, top_p: float, call: int = 0):
        if temperature <= 0 or not 0 < top_p <= 1:
            raise ValueError(f"temperature must be > 0 and top_p in (0, 1], got {temperature}, {top_p}")
        self.generators = [torch.Generator().manual_seed(int(s) * 1_000_003 + call) for s in seeds]
        self.temperature, self.top_p = float(temperature), float(top_p)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if scores.shape[0] != len(self.generators):
            raise ValueError(f"{scores.shape[0]} rows to sample but {len(self.generators)} seeds")
        scores = scores.float() / self.temperature
        ranked, order = scores.sort(dim=-1, descending=True)
        probs = ranked.softmax(dim=-1)
        drop = (probs.cumsum(dim=-1) - probs) > self.top_p  # the nucleus keeps at least the top token
        scores = scores.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), float("-inf"))
        u = torch.stack([torch.rand(scores.shape[-1], generator=g) for g in self.generators])
        gumbel = -torch.log(-torch.log(u.clamp(1e-20, 1.0 - 1e-7)))
        return scores + gumbel.to(scores.device)
