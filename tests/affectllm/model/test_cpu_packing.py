"""Packing the LLM's linear weights for CPU inference (affectllm.model.cpu_packing, AffectLLM.pack_for_cpu)."""

import pytest
import torch
from torch import nn

from affectllm.config import LLMConfig
from affectllm.model.cpu_packing import pack_linears


def _trained_looking(model):
    with torch.no_grad():
        for n, p in model.llm.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.2)  # peft starts B at zero: give the merge something to fold in
    return model.eval()


def _logits(model, text="hello there friend"):
    ids = model.tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        return model.llm(input_ids=ids).logits


def _kinds(model) -> dict[str, int]:
    from torch.ao.nn.quantized.dynamic import Linear as Packed

    out: dict[str, int] = {}
    for m in model.llm.modules():
        if isinstance(m, Packed):
            k = "int8" if m._packed_params.dtype == torch.qint8 else "float16"
            out[k] = out.get(k, 0) + 1
        elif type(m) is nn.Linear:
            out["float32"] = out.get("float32", 0) + 1
    return out


def test_float16_packing_keeps_the_merged_outputs(tiny_affect_factory):
    model = _trained_looking(tiny_affect_factory("llama"))
    before = _logits(model)
    assert model.pack_for_cpu("float16") is True
    assert model.cpu_weights == "float16"
    after = _logits(model)
    # The LoRA delta is in (merged first), and the weights' fp16 rounding is all that moved.
    torch.testing.assert_close(after, before, atol=2e-3, rtol=2e-3)
    kinds = _kinds(model)
    # Every base linear and the output layer are packed; only LoRA's unused A/B stay float.
    n_lora = sum(1 for n, m in model.llm.named_modules() if type(m) is nn.Linear and ".lora_" in n)
    assert kinds.get("float32", 0) == n_lora and kinds["float16"] > 0 and "int8" not in kinds
    assert model.pack_for_cpu("float16") is False  # already packed: nothing to do


def test_int8_head_packs_only_the_output_layer_as_int8(tiny_affect_factory):
    model = _trained_looking(tiny_affect_factory("llama"))
    before = _logits(model)
    assert model.pack_for_cpu("int8-head") is True
    assert _kinds(model)["int8"] == 1
    after = _logits(model)
    assert after.shape == before.shape
    # int8 logits are coarser but keep the ranking of clearly separated tokens
    assert torch.equal(after[0, -1].topk(3).indices, before[0, -1].topk(3).indices) or \
        torch.allclose(after, before, atol=0.1 * before.abs().max().item())


def test_packed_model_refuses_to_train_or_save(tiny_affect_factory, tmp_path):
    model = _trained_looking(tiny_affect_factory("llama"))
    model.pack_for_cpu("float16")
    with pytest.raises(RuntimeError, match="load it again to train"):
        model.train()
    with pytest.raises(RuntimeError, match="save it before packing"):
        model.save_pretrained(tmp_path / "m")
    assert not (tmp_path / "m").exists()
    model.eval()  # evaluation mode is still fine


def test_no_packing_while_training_or_for_float32(tiny_affect_factory):
    model = tiny_affect_factory("llama").train()
    assert model.pack_for_cpu("float16") is False
    assert _kinds(model.eval()).keys() == {"float32"}
    assert model.pack_for_cpu("float32") is False and model.cpu_weights == "float32"
    with pytest.raises(ValueError, match="cpu_weights must be one of"):
        pack_linears(model.llm, "int4")


def test_explainer_packs_as_the_config_says(tiny_affect_factory):
    from affectllm.inference import Explainer

    model = tiny_affect_factory("llama")
    assert model.config.llm.cpu_weights == "float16"  # the default
    Explainer(model.eval(), perception=None, max_new_tokens=4)
    assert model.cpu_weights == "float16"
    exact = tiny_affect_factory("llama")
    Explainer(exact.eval(), perception=None, max_new_tokens=4, cpu_weights="float32")
    assert exact.cpu_weights == "float32" and "float16" not in _kinds(exact)


def test_config_rejects_an_unknown_cpu_weights_kind():
    with pytest.raises(ValueError, match="llm.cpu_weights"):
        LLMConfig(cpu_weights="bfloat16")
