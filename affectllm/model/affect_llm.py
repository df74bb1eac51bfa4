"""AffectLLM: a causal LLM (frozen base + LoRA) that reads projected encoder features.

Prompts carry placeholder tokens ``<face>``, ``<audio>``, ``<image>`` (special tokens added to
the tokenizer), each repeated to its projector's token count (:meth:`AffectLLM.expand_placeholders`).
Before the embedding lookup the placeholder ids are mapped to a safe id (pad/eos), then the
projected features are written over those positions with ``masked_scatter`` after a count
check (transformers' llava habit). The LLM's embedding table is never resized, so the saved
``adapter/`` folder is a plain peft adapter: ``PeftModel.from_pretrained(base_llm, dir/"adapter")``.

Projectors live in an ``nn.ModuleDict`` keyed by modality (torchtune early fusion). Trainable:
projectors and LoRA weights only. Deliberately holds no encoders: perception computes (and
caches) features; this module takes them as tensors:

    features[m]: [k x n x d_in] for the k items of modality m in the batch, in reading order
                 (row 0's items first), or [k x d_in] for one token per item;
    feature_masks[m]: optional [k x n] bool, True for real tokens (padded video / audio frames).

Saved folder: ``config.json``, ``projectors.safetensors``, ``adapter/`` (peft), ``tokenizer/``.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Iterable

import torch
from torch import nn

from affectllm.config import MODALITIES, AffectConfig, QuantizationConfig
from affectllm.explanation.format import PLACEHOLDERS
from affectllm.model.projector import build_projector
from affectllm.model.label_scores import label_logprobs as _label_logprobs
from affectllm.model.label_scores import positions_from_mask

# Library notices that every explanation would print and that are not problems here: generation
# from inputs_embeds penalises repeats among new tokens only, which is what we want (the prompt
# repeats its evidence on purpose); past_key_values is the argument name transformers < 5.40
# (our pin) accepts. Only these exact messages are hidden.
for _msg in (r"Passing `repetition_penalty` with `inputs_embeds`", r"`past_key_values` is deprecated",
             r"`is_gradient_checkpointing` is deprecated"):
    warnings.filterwarnings("ignore", message=_msg)
# bitsandbytes (imported by peft) logs on CPUs with AVX512-BF16 that its optional `kernels` package
# is missing; that package only speeds up 4-bit CPU inference, which is not our default path.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)

PROJECTORS_FILE = "projectors.safetensors"
ADAPTER_DIR = "adapter"
TOKENIZER_DIR = "tokenizer"


def torch_dtype(name: str):
    """Config dtype name -> torch dtype (``"auto"`` passes through for from_pretrained)."""
    return name if name == "auto" else getattr(torch, name)


def quantization_config(q: QuantizationConfig):
    """bitsandbytes ``BitsAndBytesConfig`` for ``q``, or None when ``q.mode == "none"``."""
    if q.mode == "none":
        return None
    from transformers import BitsAndBytesConfig

    if q.mode == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_compute_dtype=torch_dtype(q.compute_dtype),
        bnb_4bit_quant_type=q.quant_type,
        bnb_4bit_use_double_quant=q.double_quant,
    )


def _is_quantized(llm) -> bool:
    return bool(getattr(llm, "is_loaded_in_4bit", False) or getattr(llm, "is_loaded_in_8bit", False)
                or getattr(llm, "hf_quantizer", None) is not None)


def _check_quantization(config: AffectConfig, llm) -> None:
    if (config.quantization.mode != "none") != _is_quantized(llm):
        raise ValueError(
            f"config.quantization.mode={config.quantization.mode!r} but the given llm is "
            f"{'' if _is_quantized(llm) else 'not '}quantized; load it with "
            "affectllm.model.affect_llm.quantization_config(config.quantization)")


class AffectLLM(nn.Module):
    """Causal LLM + per-modality projectors. Build with :meth:`build` or :meth:`from_pretrained`."""

    def __init__(self, config: AffectConfig, llm: nn.Module, tokenizer):
        """Wraps an LLM that is already LoRA-wrapped (or frozen); adds placeholder tokens and projectors."""
        super().__init__()
        self.config = config
        self.llm = llm
        self.tokenizer = tokenizer
        # Added tokens get ids past the tokenizer's vocab; they never reach the embedding table.
        tokenizer.add_tokens([PLACEHOLDERS[m] for m in MODALITIES], special_tokens=True)
        self.placeholder_ids = {m: tokenizer.convert_tokens_to_ids(PLACEHOLDERS[m]) for m in MODALITIES}
        emb = llm.get_input_embeddings()
        safe = next((i for i in (tokenizer.pad_token_id, tokenizer.eos_token_id) if i is not None), 0)
        if not 0 <= safe < emb.num_embeddings:
            raise ValueError(f"pad/eos id {safe} is outside the LLM's embedding table ({emb.num_embeddings})")
        self.safe_id = safe
        self.cpu_weights = "float32"  # how the LLM's linear weights are stored (see pack_for_cpu)
        d_llm = emb.embedding_dim
        device = emb.weight.device
        # Projector init from config.seed without touching the caller's global RNG stream.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.projectors = nn.ModuleDict({
                m: build_projector(config.encoders[m].projector, config.encoders[m].feature_dim, d_llm,
                                   config.encoders[m].num_tokens)
                for m in config.soft_modalities()
            }).to(device)  # float32 whatever the LLM dtype: outputs are cast at the splice

    # -- construction --------------------------------------------------------------------
    @classmethod
    def build(cls, config: AffectConfig, llm: nn.Module | None = None, tokenizer=None) -> "AffectLLM":
        """A fresh model: base LLM (loaded by name unless given) frozen, new LoRA and projectors."""
        llm, tokenizer = _base_llm(config, llm, tokenizer)
        if _is_quantized(llm):
            from peft import prepare_model_for_kbit_training

            # Casts norms to fp32 and lets gradients reach LoRA through frozen int layers.
            # Gradient checkpointing is the trainer's choice, not made here.
            llm = prepare_model_for_kbit_training(llm, use_gradient_checkpointing=False)
        if config.lora.enabled:
            from peft import LoraConfig, get_peft_model

            lc = LoraConfig(r=config.lora.r, lora_alpha=config.lora.alpha, lora_dropout=config.lora.dropout,
                            target_modules=list(config.lora.target_modules), task_type="CAUSAL_LM")
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(config.seed)
                llm = get_peft_model(llm, lc)  # freezes every base parameter
        else:
            llm.requires_grad_(False)
        return cls(config, llm, tokenizer)

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, llm: nn.Module | None = None, tokenizer=None,
                        is_trainable: bool = False) -> "AffectLLM":
        """Restore a folder written by :meth:`save_pretrained` (``llm``: the base model, if already loaded)."""
        from peft import PeftModel
        from safetensors.torch import load_file
        from transformers import AutoTokenizer

        folder = Path(folder)
        config = AffectConfig.load(folder)
        if tokenizer is None:
            tokenizer = AutoTokenizer.from_pretrained(str(folder / TOKENIZER_DIR))
        llm, tokenizer = _base_llm(config, llm, tokenizer)
        if config.lora.enabled:
            if _is_quantized(llm) and is_trainable:
                from peft import prepare_model_for_kbit_training

                llm = prepare_model_for_kbit_training(llm, use_gradient_checkpointing=False)
            llm = PeftModel.from_pretrained(llm, str(folder / ADAPTER_DIR), is_trainable=is_trainable)
        else:
            llm.requires_grad_(False)
        model = cls(config, llm, tokenizer)
        state = load_file(str(folder / PROJECTORS_FILE), device=str(model.llm.get_input_embeddings().weight.device))
        model.projectors.load_state_dict(state, strict=True)
        model.projectors.requires_grad_(is_trainable)
        return model.train(is_trainable)

    def save_pretrained(self, folder: str | os.PathLike) -> Path:
        """Write config, projectors, LoRA adapter and tokenizer; replaces ``folder`` atomically."""
        from safetensors.torch import save_file

        if self.cpu_weights != "float32":
            raise RuntimeError(f"this model's weights were packed as {self.cpu_weights} for CPU inference "
                               "(with the LoRA deltas folded in); save it before packing")
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".tmp"))
        try:
            self.config.save(tmp)
            state = {k: v.detach().contiguous().cpu() for k, v in self.projectors.state_dict().items()}
            save_file(state, str(tmp / PROJECTORS_FILE), metadata={"format": "pt"})
            if self.config.lora.enabled:
                # save_embedding_layers=False: the table is untouched, and "auto" would look up the hub.
                self.llm.save_pretrained(str(tmp / ADAPTER_DIR), save_embedding_layers=False)
            self.tokenizer.save_pretrained(str(tmp / TOKENIZER_DIR))
            (tmp / "COMPLETE").write_text("ok\n")  # same marker as fileutil.atomic_dir
            _replace_dir(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return folder

    # -- prompts -------------------------------------------------------------------------
    def num_tokens(self, modality: str) -> int:
        """Soft tokens one item of ``modality`` occupies in the prompt."""
        if modality not in self.projectors:
            raise ValueError(f"modality {modality!r} has no soft tokens in this config "
                             f"(soft modalities: {', '.join(self.projectors) or 'none'})")
        return self.config.encoders[modality].num_tokens

    def placeholder(self, modality: str) -> str:
        """The placeholder string for one item, already repeated (e.g. ``"<face>" * 4``)."""
        return PLACEHOLDERS[modality] * self.num_tokens(modality)

    def expand_placeholders(self, text: str, modalities: Iterable[str] | None = None) -> str:
        """Repeat each single placeholder in ``text`` to its projector's token count.

        ``modalities`` limits which are expanded (default: all that have projectors). Call it
        once on text written with one placeholder per item; it is not idempotent. A
        placeholder of a modality without soft tokens raises ``ValueError``.
        """
        todo = set(self.projectors if modalities is None else modalities)
        for m in MODALITIES:
            tok = PLACEHOLDERS[m]
            if tok in text and m in todo:
                text = text.replace(tok, self.placeholder(m))
            elif tok in text and m not in self.projectors:
                raise ValueError(f"text contains {tok} but modality {m!r} has no soft tokens in this config")
        return text

    # -- the splice ----------------------------------------------------------------------
    def placeholder_mask(self, input_ids: torch.Tensor) -> torch.Tensor:
        """[b x s] bool: True at any placeholder position."""
        mask = torch.zeros_like(input_ids, dtype=torch.bool)
        for pid in self.placeholder_ids.values():
            mask |= input_ids == pid
        return mask

    def embed_inputs(self, input_ids: torch.Tensor, features: dict[str, torch.Tensor] | None = None,
                     feature_masks: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """input_ids [b x s] (+ features) -> inputs_embeds [b x s x d_llm] with features spliced in."""
        features = {m: x for m, x in (features or {}).items() if x is not None}
        feature_masks = feature_masks or {}
        for m in features:
            if m not in self.projectors:
                raise ValueError(f"features given for {m!r}, which has no projector in this config "
                                 f"(soft modalities: {', '.join(self.projectors) or 'none'})")
        ids = input_ids.masked_fill(self.placeholder_mask(input_ids), self.safe_id)
        embeds = self.llm.get_input_embeddings()(ids)
        for m, pid in self.placeholder_ids.items():
            where = input_ids == pid
            n_ph = int(where.sum())
            if m not in features:
                if n_ph:
                    raise ValueError(f"{m}: {n_ph} {PLACEHOLDERS[m]} placeholder tokens in input_ids but no {m} features given")
                continue
            flat = self._project(m, features[m], feature_masks.get(m))  # [N x d_llm]
            if flat.shape[0] != n_ph:
                raise ValueError(
                    f"{m}: {n_ph} {PLACEHOLDERS[m]} placeholder tokens in input_ids but {flat.shape[0]} projected "
                    f"feature tokens (features {tuple(features[m].shape)}); expand prompts with "
                    f"AffectLLM.expand_placeholders and pass one feature item per placeholder run")
            embeds = embeds.masked_scatter(where[..., None].expand_as(embeds), flat.to(embeds.dtype))
        return embeds

    def _project(self, m: str, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """features [k x n x d_in] (or [k x d_in]) -> [k*t x d_llm], items in order."""
        cfg = self.config.encoders[m]
        if x.dim() == 2:
            x = x[:, None]
        if x.dim() != 3 or x.shape[-1] != cfg.feature_dim:
            raise ValueError(f"{m}: features must be [k x n x {cfg.feature_dim}], got {tuple(x.shape)}")
        proj = self.projectors[m]
        p = next(proj.parameters())
        x = x.to(device=p.device, dtype=p.dtype)
        if mask is not None:
            mask = mask.to(p.device).bool()
        out = proj(x, mask)  # [k x t x d_llm]
        if cfg.projector != "resampler" and mask is not None:
            return out[mask]  # per-token projectors: only real tokens are placed
        return out.reshape(-1, out.shape[-1])

    # -- running -------------------------------------------------------------------------
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, features: dict[str, torch.Tensor] | None = None,
                feature_masks: dict[str, torch.Tensor] | None = None, **kwargs):
        """Causal-LM output (``.loss`` when labels are given; labels at placeholders become -100).

        Position ids follow the attention mask (as in generate), so left padding is exact.
        """
        embeds = self.embed_inputs(input_ids, features, feature_masks)
        if labels is not None:
            labels = labels.masked_fill(self.placeholder_mask(input_ids), -100)
        if attention_mask is not None and "position_ids" not in kwargs:
            kwargs["position_ids"] = positions_from_mask(attention_mask)
        return self.llm(inputs_embeds=embeds, attention_mask=attention_mask, labels=labels, **kwargs)

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                 features: dict[str, torch.Tensor] | None = None,
                 feature_masks: dict[str, torch.Tensor] | None = None, **gen_kwargs) -> torch.Tensor:
        """New tokens only, [b x new] (the prompt is not repeated). Batches must be left padded."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if input_ids.shape[0] > 1 and not bool(attention_mask[:, -1].all()):
            raise ValueError("batched generation needs left padding (tokenizer.padding_side = 'left')")
        embeds = self.embed_inputs(input_ids, features, feature_masks)
        gen_kwargs.setdefault("max_new_tokens", self.config.llm.max_new_tokens)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        gen_kwargs.setdefault("pad_token_id", pad)
        return self.llm.generate(inputs_embeds=embeds, attention_mask=attention_mask, **gen_kwargs)

    @torch.no_grad()
    def label_logprobs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                       label_ids: list[list[int]], features: dict[str, torch.Tensor] | None = None,
                       feature_masks: dict[str, torch.Tensor] | None = None,
                       past_key_values=None) -> torch.Tensor:
        """[b x L] log p(label | prompt) for every label, one forward (see affectllm.model.label_scores)."""
        embeds = self.embed_inputs(input_ids, features, feature_masks)
        return _label_logprobs(self.llm, embeds, attention_mask, label_ids, past_key_values=past_key_values)

    def merge_lora(self) -> bool:
        """Fold the LoRA deltas into the base weights (peft's ``merge_adapter``) so generation runs
        no adapter matmuls. For inference: a float base in eval mode; reversible with
        ``self.llm.unmerge_adapter()``. Returns whether anything was merged."""
        from peft import PeftModel

        if not isinstance(self.llm, PeftModel) or _is_quantized(self.llm) or self.training:
            return False
        if not any(getattr(m, "merged", False) for m in self.llm.modules() if hasattr(m, "merged_adapters")):
            with torch.no_grad():
                self.llm.merge_adapter()
        return True

    def pack_for_cpu(self, kind: str) -> bool:
        """Store the merged LLM's linear weights as ``kind`` (``affectllm.model.cpu_packing``) for
        faster CPU decoding. One-way and inference-only: LoRA is merged first, and the model
        refuses to train or save afterwards. Returns whether anything was packed."""
        from affectllm.model.cpu_packing import pack_linears

        if kind == self.cpu_weights or self.training or _is_quantized(self.llm):
            return False
        if self.config.lora.enabled and not self.merge_lora():
            return False
        if pack_linears(self.llm, kind) == 0:
            return False
        self.cpu_weights = kind
        return True

    def train(self, mode: bool = True):
        if mode and getattr(self, "cpu_weights", "float32") != "float32":
            raise RuntimeError(f"this model's weights were packed as {self.cpu_weights} for CPU inference; "
                               "load it again to train")
        return super().train(mode)

    def trainable_parameter_names(self) -> list[str]:
        return [n for n, p in self.named_parameters() if p.requires_grad]


def _base_llm(config: AffectConfig, llm, tokenizer):
    """The base (model, tokenizer): loaded by ``config.llm.name`` unless ``llm`` is given."""
    if llm is None:
        from affectllm.weights import load_llm

        llm, loaded_tok = load_llm(config.llm.name, torch_dtype=torch_dtype(config.llm.dtype),
                                   quantization_config=quantization_config(config.quantization))
        tokenizer = tokenizer if tokenizer is not None else loaded_tok
    elif tokenizer is None:
        raise ValueError("a tokenizer must be given together with llm")
    _check_quantization(config, llm)
    return llm, tokenizer


def _replace_dir(new: Path, final: Path) -> None:
    """Move finished folder ``new`` to ``final``, replacing an older ``final`` if present."""
    if not final.exists():
        os.replace(new, final)
        return
    old = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".old"))
    os.rmdir(old)
    os.replace(final, old)
    os.replace(new, final)
    shutil.rmtree(old, ignore_errors=True)
