"""Inference-only storage of the LLM's linear weights for decoding on CPU.

Decoding one token reads every weight of the LLM once. On a laptop CPU that read, not the
arithmetic, is the cost: SmolLM2-135M's linear layers are ~540 MB in float32, ~50 ms per token
at ~11 GB/s on 2 cores, while its forward does only ~0.3 GFLOP. Storing the weights in float16
halves the bytes; fbgemm's fp16 kernel (``torch.ao`` dynamic quantization with a float16 qconfig)
widens them to float32 in registers, so activations, accumulation and outputs stay float32 and
the outputs move only by the weights' fp16 rounding. SmolLM2 ships bfloat16 weights, whose
values fp16 holds exactly but for the tiniest magnitudes; merged LoRA deltas round to 11
significant bits.

``int8-head`` also stores the output projection (49k x 576, a fifth of the bytes and the biggest
single matmul) as per-channel int8 with dynamically quantized activations: another ~10 ms per
token, at a small cost in logit precision (measured on the dev sets, see README).

Packing is one-way and inference-only: it happens after the LoRA deltas are merged
(:meth:`AffectLLM.merge_lora`), on a CPU model in eval mode, and a packed model refuses to train
or save. CUDA and bitsandbytes models are left as they are.
"""

from __future__ import annotations

import warnings

CPU_WEIGHTS = ("float32", "float16", "int8-head")
CLI_HELP = ("how the LLM's linear weights are stored for CPU inference: float32 (exact), float16 "
            "(default: half the memory traffic, float32 math) or int8-head (also an int8 output layer)")


def _packed(linear, dtype):
    import torch
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear
    from torch.ao.quantization import per_channel_dynamic_qconfig

    with torch.no_grad():
        if dtype == torch.qint8:
            linear.qconfig = per_channel_dynamic_qconfig
            return DynamicLinear.from_float(linear)
        # What from_float does for float16, without first packing an all-zero weight of the full
        # size twice (its constructor's default): packing SmolLM2 took 2.1 s that way, 1.4 s this.
        q = DynamicLinear(1, 1, dtype=torch.float16)
        q.in_features, q.out_features = linear.in_features, linear.out_features
        q.set_weight_bias(linear.weight.float(), None if linear.bias is None else linear.bias.float())
        return q


def _targets(llm):
    """(parent, child name, linear) for every plain ``nn.Linear`` of the LLM outside LoRA's own
    A/B matrices (those are folded into the base weights already)."""
    from torch import nn

    for name, parent in llm.named_modules():
        if ".lora_" in f".{name}":
            continue
        for child_name, child in parent.named_children():
            if type(child) is nn.Linear and not child_name.startswith("lora_"):
                yield parent, child_name, child


def pack_linears(llm, kind: str, head_name: str = "lm_head") -> int:
    """Replace the LLM's linear layers in place by packed ones (see module docstring);
    returns how many were packed (0 for ``float32``, a model off the CPU, or one already packed)."""
    import torch

    if kind not in CPU_WEIGHTS:
        raise ValueError(f"cpu_weights must be one of {CPU_WEIGHTS}, got {kind!r}")
    if kind == "float32" or llm.training:
        return 0
    targets = list(_targets(llm))
    if not targets or any(lin.weight.device.type != "cpu" or lin.weight.dtype != torch.float32
                          for _, _, lin in targets):
        return 0
    with warnings.catch_warnings():  # torch.ao's eager quantization announces its move to torchao
        warnings.simplefilter("ignore")
        for parent, name, lin in targets:
            int8 = kind == "int8-head" and name == head_name
            setattr(parent, name, _packed(lin, torch.qint8 if int8 else torch.float16))
    return len(targets)
