"""Projectors: map frozen-encoder tokens into the LLM's embedding space.

A small builder picks one by name, like LLaVA's ``multimodal_projector/builder.py``:

- ``linear``      one LLM token per encoder token       [b x n x d_in] -> [b x n x d_llm]
- ``mlp2x_gelu``  same, Linear-GELU-Linear (LLaVA-1.5) [b x n x d_in] -> [b x n x d_llm]
- ``resampler``   a few learned queries cross-attend over all encoder tokens (Flamingo's
                  Perceiver Resampler, one layer) and give a fixed count whatever n is:
                  [b x n x d_in] (+ key padding mask [b x n]) -> [b x t x d_llm].
                  For video (one face token per frame) and Whisper (up to 1500 frames).

Every projector takes ``forward(x, mask=None)`` where ``mask`` is ``[b x n]`` bool, True for
real tokens. Per-token projectors ignore it (padded tokens are projected but the caller only
places as many as the prompt has placeholders). This module holds no encoders and no LLM.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class TokenProjector(nn.Module):
    """Per-token projection: [b x n x d_in] -> [b x n x d_llm]; ``num_tokens`` is not fixed."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x)


def sinusoid(n: int, d: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Fixed sinusoidal positions [n x d] (Whisper/Transformer style); no parameters, any n."""
    pos = torch.arange(n, device=device, dtype=torch.float32)[:, None]
    half = d // 2
    freq = torch.exp(-math.log(10000.0) * torch.arange(half, device=device, dtype=torch.float32) / max(half - 1, 1))
    ang = pos * freq[None]
    out = torch.zeros(n, d, device=device, dtype=torch.float32)
    out[:, 0 : 2 * half : 2] = ang.sin()
    out[:, 1 : 2 * half : 2] = ang.cos()
    return out.to(dtype)


def _pick_heads(d: int) -> int:
    for h in (8, 6, 4, 3, 2, 1):
        if d % h == 0 and d // h >= 8:
            return h
    return 1


class Resampler(nn.Module):
    """Learned queries attend over encoder tokens: [b x n x d_in] -> [b x t x d_llm].

    One pre-norm cross-attention block plus an MLP, then a LayerNorm and a Linear so the
    output scale can be learned to match the LLM's embedding scale. Keys get fixed sinusoidal
    positions so order (frame time) is visible; Whisper's own positions are already inside its
    features, which this does no harm to.
    """

    def __init__(self, in_dim: int, out_dim: int, num_tokens: int, num_heads: int | None = None, ff_mult: int = 2):
        super().__init__()
        if num_tokens <= 0:
            raise ValueError(f"resampler needs num_tokens > 0, got {num_tokens}")
        self.num_tokens = num_tokens
        heads = num_heads or _pick_heads(out_dim)
        self.kv_proj = nn.Linear(in_dim, out_dim)
        self.queries = nn.Parameter(torch.randn(num_tokens, out_dim) * 0.02)
        self.ln_q = nn.LayerNorm(out_dim)
        self.ln_kv = nn.LayerNorm(out_dim)
        self.attn = nn.MultiheadAttention(out_dim, heads, batch_first=True)
        self.ln_ff = nn.LayerNorm(out_dim)
        # ff_mult 2 (not the usual 4): ~3M parameters per modality at d_llm 576 instead of ~4.5M.
        self.ff = nn.Sequential(nn.Linear(out_dim, ff_mult * out_dim), nn.GELU(), nn.Linear(ff_mult * out_dim, out_dim))
        self.ln_out = nn.LayerNorm(out_dim)
        self.out = nn.Linear(out_dim, out_dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x [b x n x d_in], mask [b x n] (True = real token) -> [b x t x d_llm]."""
        if x.dim() != 3:
            raise ValueError(f"resampler expects [b x n x d_in], got shape {tuple(x.shape)}")
        b, n, _ = x.shape
        kv = self.kv_proj(x)
        kv = self.ln_kv(kv + sinusoid(n, kv.shape[-1], kv.device, kv.dtype)[None])
        pad = None
        if mask is not None:
            if mask.shape != (b, n):
                raise ValueError(f"resampler mask must be [b x n] = {(b, n)}, got {tuple(mask.shape)}")
            if not bool(mask.any(dim=1).all()):
                raise ValueError("resampler: an item has no real tokens (its mask row is all False)")
            pad = ~mask.bool()  # nn.MultiheadAttention: True = ignore
        q = self.queries[None].expand(b, -1, -1)
        h = q + self.attn(self.ln_q(q), kv, kv, key_padding_mask=pad, need_weights=False)[0]
        h = h + self.ff(self.ln_ff(h))
        return self.out(self.ln_out(h))


def build_projector(kind: str, in_dim: int, out_dim: int, num_tokens: int | None = None, **kwargs) -> nn.Module:
    """A projector by name. ``num_tokens`` is required for ``resampler``, unused otherwise."""
    if kind == "linear":
        return TokenProjector(nn.Linear(in_dim, out_dim))
    if kind == "mlp2x_gelu":
        return TokenProjector(nn.Sequential(nn.Linear(in_dim, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim)))
    if kind == "resampler":
        if num_tokens is None:
            raise ValueError("projector 'resampler' needs num_tokens")
        return Resampler(in_dim, out_dim, num_tokens, **kwargs)
    raise ValueError(f"unknown projector kind {kind!r} (known: linear, mlp2x_gelu, resampler)")
