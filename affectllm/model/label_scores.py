"""Score every taxonomy label after a prefix in ONE forward pass (label probabilities).

The prefix (e.g. a prompt ending in ``<answer>``) is run once; all L candidate labels follow it
in the same row, each allowed to see the prefix and its own earlier tokens only (a 4D "tree"
attention mask, positions restarting after the prefix for every label). So one forward of
``s + sum(len(label) - 1)`` tokens replaces L forwards of ``s + len(label)`` tokens (a label's
last token is scored from the logits before it, so it is never run), and the result equals the
separate computations up to float rounding (tested).

Works on any Hugging Face causal LM (plain or peft-wrapped) whose attention takes an additive
float 4D mask: eager and sdpa do (Llama, Qwen2); flash-attention does not. Deliberately knows
nothing about placeholders or features: ``AffectLLM.label_logprobs`` builds the prefix
embeddings and calls :func:`label_logprobs`.
"""

from __future__ import annotations

from typing import Sequence

import torch


def encode_labels(tokenizer, labels: Sequence[str]) -> list[list[int]]:
    """Token ids of each label text, without special tokens.

    The prefix should end at a token boundary (a special token such as ``<answer>`` or a space
    that the labels then start without), so that the label's tokens are the ones the model
    would produce in context.
    """
    out = []
    for lab in labels:
        ids = tokenizer(lab, add_special_tokens=False)["input_ids"]
        if not ids:
            raise ValueError(f"label {lab!r} encodes to no tokens")
        out.append(list(ids))
    return out


def positions_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """[b x s] 0/1 mask -> [b x s] position ids counting real tokens only (pads get 0).

    The same rule transformers' generate uses, so a left-padded row sees the same positions
    as the unpadded sequence.
    """
    pos = attention_mask.long().cumsum(-1) - 1
    return pos.clamp(min=0)


@torch.no_grad()
def label_logprobs(
    llm,
    prefix_embeds: torch.Tensor,
    prefix_mask: torch.Tensor,
    label_ids: Sequence[Sequence[int]],
    past_key_values=None,
) -> torch.Tensor:
    """Sum of log p(label tokens | prefix) for every label, in one forward pass.

    Args:
        llm: a causal LM taking ``inputs_embeds``, a 4D additive mask and ``position_ids``.
        prefix_embeds: [b x s x d] input embeddings of the prefixes (left or right padded).
        prefix_mask: [b x s] 1 for real tokens; every row needs at least one.
        label_ids: L token-id lists (see :func:`encode_labels`).
        past_key_values: a cache holding the keys/values of the first P < s prefix columns: only
            the rest of the prefix and the labels are run. Cached columns the mask hides are not
            seen (how a batch drops each row's stale tail, see ``affectllm.generation.batch_cache``); every
            row needs a real token after column P. The cache is extended (crop it before reuse).
    Returns:
        [b x L] float32 log-probabilities; ``.softmax(-1)`` gives a distribution over labels.
    """
    if prefix_embeds.dim() != 3 or prefix_mask.shape != prefix_embeds.shape[:2]:
        raise ValueError(f"prefix_embeds [b x s x d] and prefix_mask [b x s] disagree: "
                         f"{tuple(prefix_embeds.shape)} vs {tuple(prefix_mask.shape)}")
    if not label_ids or any(len(x) == 0 for x in label_ids):
        raise ValueError("label_ids needs at least one label, each with at least one token")
    prefix_mask = prefix_mask.bool()
    if not bool(prefix_mask.any(dim=1).all()):
        raise ValueError("a prefix row has no real tokens")
    b, s, _ = prefix_embeds.shape
    dev, dtype = prefix_embeds.device, prefix_embeds.dtype
    # A label's last token is scored but never run: no later token needs its output. So only
    # each label's tokens but its last are fed (none for one-token labels).
    lens = [len(x) for x in label_ids]
    fed = [len(x) - 1 for x in label_ids]
    n, m = sum(lens), sum(fed)
    T = s + m

    flat = torch.tensor([t for x in label_ids for t in x], device=dev, dtype=torch.long)  # [n] scored
    fed_ids = torch.tensor([t for x in label_ids for t in x[:-1]], device=dev, dtype=torch.long)  # [m]
    lab_emb = llm.get_input_embeddings()(fed_ids).to(dtype)  # [m x d]
    embeds = torch.cat([prefix_embeds, lab_emb[None].expand(b, -1, -1)], dim=1)  # [b x T x d]

    # Segment of every column (0 = prefix, i+1 = label i) and index within the segment.
    seg = torch.cat([torch.zeros(s, dtype=torch.long),
                     torch.repeat_interleave(torch.arange(1, len(fed) + 1), torch.tensor(fed))]).to(dev)
    within = torch.cat([torch.arange(s)] + [torch.arange(k) for k in fed]).to(dev)
    same = seg[:, None] == seg[None, :]
    causal = within[None, :] <= within[:, None]
    sees_prefix = (seg[None, :] == 0) & (seg[:, None] != 0)
    allowed = (same & causal) | sees_prefix  # [T x T] query x key
    key_ok = torch.cat([prefix_mask, torch.ones(b, m, dtype=torch.bool, device=dev)], dim=1)
    allowed = allowed[None] & key_ok[:, None, :]  # [b x T x T]
    mask4d = torch.zeros(b, 1, T, T, dtype=dtype, device=dev)
    mask4d.masked_fill_(~allowed[:, None], torch.finfo(dtype).min)

    n_real = prefix_mask.long().sum(1)  # [b]
    pos = torch.cat([positions_from_mask(prefix_mask),
                     n_real[:, None] + within[s:][None].expand(b, -1)], dim=1)  # [b x T]

    # Which logits predict which label token: the first from the last real prefix token,
    # token j > 0 from the label's fed token j - 1.
    last = (torch.arange(s, device=dev)[None] * prefix_mask).argmax(1)  # [b]
    fed_start = [0]
    for k in fed[:-1]:
        fed_start.append(fed_start[-1] + k)
    src_label = [-1 if j == 0 else s + fed_start[i] + j - 1 for i, k in enumerate(lens) for j in range(k)]
    src = torch.tensor(src_label, device=dev)
    src = torch.where(src[None] < 0, last[:, None], src[None].expand(b, -1))  # [b x n]
    keep = torch.unique(src)  # only these rows of logits are computed (saves b x T x V)
    P = 0
    if past_key_values is not None:
        P = past_key_values.get_seq_length()
        if P >= s or bool((last < P).any()):
            raise ValueError(f"a cache of {P} tokens needs every prefix row to go on after it (prefix of {s})")
        embeds, mask4d, pos = embeds[:, P:], mask4d[:, :, P:], pos[:, P:]  # queries after the cache
    out = llm(inputs_embeds=embeds, attention_mask=mask4d, position_ids=pos, logits_to_keep=keep - P,
              past_key_values=past_key_values, use_cache=past_key_values is not None)
    logp = out.logits.float().log_softmax(-1)  # [b x K x V]
    col = torch.searchsorted(keep, src)  # [b x n] index into K
    tok_lp = logp[torch.arange(b, device=dev)[:, None], col, flat[None]]  # [b x n]
    label_of = torch.repeat_interleave(torch.arange(len(lens)), torch.tensor(lens)).to(dev)  # [n]
    result = torch.zeros(b, len(lens), dtype=torch.float32, device=dev)
    return result.index_add_(1, label_of, tok_lp)
