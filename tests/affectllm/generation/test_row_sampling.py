"""Row-seeded sampling: a row draws the same tokens alone or in any batch, draws follow the tempered
softmax, and different seeds give different draws."""

from __future__ import annotations

import pytest
import torch

from affectllm.generation.guided import Batch, generate_rationales
from affectllm.generation.row_sampling import RowSampler

from _chat_prompts import chat_prompts as _prompts


def test_gumbel_draws_follow_the_softmax():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    counts = torch.zeros(4)
    for seed in range(4000):
        counts[int(RowSampler([seed], temperature=1.0, top_p=1.0)(None, logits.clone()).argmax())] += 1
    assert torch.allclose(counts / counts.sum(), logits.softmax(-1)[0], atol=0.03)


def test_the_nucleus_drops_the_tail_and_keeps_the_top():
    logits = torch.tensor([[5.0, 0.0, -5.0, -5.0]])
    picks = {int(RowSampler([s], temperature=1.0, top_p=0.5)(None, logits.clone()).argmax()) for s in range(200)}
    assert picks == {0}
    with pytest.raises(ValueError, match="seeds"):
        RowSampler([0], 1.0, 1.0)(None, torch.zeros(2, 4))


@pytest.mark.parametrize("guided", [True, False])
def test_sampled_rows_draw_alike_alone_or_batched(tiny_affect_factory, guided):
    model = tiny_affect_factory("llama").eval()
    prompts = _prompts()
    anchors = [["Words:"]] * len(prompts)
    seeds = [7 + i for i in range(len(prompts))]
    batch = Batch(prompts, [{} for _ in prompts], anchors, [[] for _ in prompts])
    together = generate_rationales(model, batch, 24, guided=guided, seeds=seeds)
    alone = [generate_rationales(model, Batch([p], [{}], [a], [[]]), 24, guided=guided, seeds=[s])[0]
             for p, a, s in zip(prompts, anchors, seeds)]
    assert together == alone
    greedy = generate_rationales(model, batch, 24, guided=guided)
    other = generate_rationales(model, batch, 24, guided=guided, seeds=[s + 100 for s in seeds])
    assert together != greedy and together != other  # sampling draws, and the seed matters
