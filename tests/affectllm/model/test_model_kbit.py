"""AffectLLM over a bitsandbytes 4-bit / 8-bit base on CPU (QLoRA path).

bitsandbytes 0.50 quantizes and runs on CPU (4-bit falls back to its slower torch path when the
optional ``kernels`` package is absent), so these run here rather than being skipped.
"""

import pytest
import torch

from affectllm.config import AffectConfig
from affectllm.model.affect_llm import AffectLLM, quantization_config

bnb = pytest.importorskip("bitsandbytes", reason="bitsandbytes not installed")


def _quantized_base(tiny_llm_factory, tmp_path, qcfg):
    from transformers import AutoModelForCausalLM

    llm, tok = tiny_llm_factory("llama")
    llm.save_pretrained(tmp_path / "base")
    q = AutoModelForCausalLM.from_pretrained(tmp_path / "base", quantization_config=quantization_config(qcfg),
                                             device_map="cpu")
    return q, tok


@pytest.mark.parametrize("mode", ["4bit", "8bit"])
def test_quantized_base_trains_lora_and_round_trips(tiny_llm_factory, tmp_path, mode):
    cfg = AffectConfig.from_dict({"quantization": {"mode": mode, "compute_dtype": "float32"},
                                  "encoders": {"face": {"feature_dim": 8, "num_tokens": 2}},
                                  "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}})
    llm, tok = _quantized_base(tiny_llm_factory, tmp_path, cfg.quantization)
    layer = llm.model.layers[0].self_attn.q_proj
    assert isinstance(layer, bnb.nn.Linear4bit if mode == "4bit" else bnb.nn.Linear8bitLt)
    m = AffectLLM.build(cfg, llm=llm, tokenizer=tok)
    names = m.trainable_parameter_names()
    assert names and all(n.startswith("projectors.") or "lora_" in n for n in names)
    ids = tok([m.expand_placeholders("face <face> looks happy")], return_tensors="pt")["input_ids"]
    feats = {"face": torch.randn(1, 3, 8)}
    loss = m(ids, torch.ones_like(ids), labels=ids.clone(), features=feats).loss
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for n, p in m.named_parameters() if "lora_A" in n or n.startswith("projectors.face"))
    m.eval()
    with torch.no_grad():
        ref = m(ids, features=feats).logits
    out = m.save_pretrained(tmp_path / "ckpt")
    base2, _ = _quantized_base(tiny_llm_factory, tmp_path / "again", cfg.quantization)
    m2 = AffectLLM.from_pretrained(out, llm=base2)
    with torch.no_grad():
        torch.testing.assert_close(m2(ids, features=feats).logits, ref)


def test_config_and_model_must_agree_on_quantization(tiny_llm_factory):
    llm, tok = tiny_llm_factory("llama")
    cfg = AffectConfig.from_dict({"quantization": {"mode": "4bit"}})
    with pytest.raises(ValueError, match="not quantized"):
        AffectLLM.build(cfg, llm=llm, tokenizer=tok)
