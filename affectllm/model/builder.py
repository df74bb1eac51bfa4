"""Model names users type, resolved to a ready :class:`AffectLLM`.

- ``affectllm-mini`` (the shipped default once trained): LoRA + projector weights committed in
  ``affectllm/assets/affectllm-mini`` on top of SmolLM2-135M-Instruct.
- ``base`` / ``smollm2-135m-instruct``: the untrained default, textual evidence only (no soft
  tokens: untrained projectors would feed noise).
- a folder written by ``AffectLLM.save_pretrained`` (has ``config.json`` and ``adapter/``).
- any other name: a transformers causal LM (hub id or local folder, offline rules of
  ``affectllm.weights.load_llm``), wrapped untrained like ``base``.

Deliberately not here: loading of base weights (``affectllm.weights``) or the model itself.
"""

from __future__ import annotations

from pathlib import Path

from affectllm.paths import ASSETS, REPO_ROOT

SHIPPED = {"affectllm-mini": ASSETS / "affectllm-mini"}
BASE_ALIASES = {"base", "smollm2-135m-instruct"}


def default_model_name() -> str:
    """``affectllm-mini`` when its trained weights are present, else the untrained ``base``."""
    mini = SHIPPED["affectllm-mini"]
    return "affectllm-mini" if (mini / "config.json").is_file() else "base"


def untrained_config(llm_name: str = "smollm2-135m-instruct"):
    """Textual evidence for every modality, no LoRA: the base LLM exactly as shipped."""
    from affectllm.config import AffectConfig

    cfg = AffectConfig()
    cfg.llm.name = llm_name
    for m in cfg.encoders.values():
        m.evidence = "text"
    cfg.lora.enabled = False
    return cfg


def load_model(name: str | None = None):
    """An :class:`AffectLLM` in eval mode for ``name`` (see module docstring)."""
    from affectllm.errors import WeightsNotFound
    from affectllm.model.affect_llm import AffectLLM

    name = name or default_model_name()
    if name in SHIPPED:
        folder = SHIPPED[name]
        if not (folder / "config.json").is_file():
            raise WeightsNotFound(f"{name}: trained weights not found in {folder} "
                                  f"(train them with `affectllm train sft`, or use --model base)")
        return AffectLLM.from_pretrained(folder).eval()
    if name in BASE_ALIASES:
        return AffectLLM.build(untrained_config()).eval()
    folder = Path(name)
    if not folder.is_absolute() and not folder.exists():
        folder = REPO_ROOT / name
    if (folder / "config.json").is_file() and (folder / "projectors.safetensors").is_file():
        return AffectLLM.from_pretrained(folder).eval()
    return AffectLLM.build(untrained_config(name)).eval()
