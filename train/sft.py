"""Supervised fine-tuning of AffectLLM (projectors + LoRA; the base LLM frozen) with trl's SFTTrainer.

Launch (one CPU process; resumes by itself from the last complete checkpoint in args.output_dir)::

    python -m train.sft --recipe train/recipes/sft_cpu.yaml [--override args.max_steps=20 ...]
    CUDA_VISIBLE_DEVICES= accelerate launch --config_file train/accelerate/multi_cpu.yaml -m train.sft --recipe train/recipes/sft_cpu.yaml
    accelerate launch --config_file train/accelerate/multi_gpu.yaml -m train.sft --recipe train/recipes/sft_gpu_bf16.yaml

What trl's SFTTrainer is given, and why each piece is needed:

- ``AffectCollator`` with ``skip_prepare_dataset`` and ``remove_unused_columns=False``: trl's own
  preparation tokenises text only; our batches also carry encoder features and expanded
  placeholders, so the collator does the whole job from the raw record.
- ``_TrainerView``: SFTTrainer reads ``model.config`` as a transformers config (``get_text_config``,
  pad ids) and calls ``add_model_tags``. AffectLLM's config is our AffectConfig, so the view shows
  trl the LLM's config and forwards every call to the AffectLLM. It owns no weights of its own.
- ``compute_loss``: SFTTrainer's computes log-probs through a fused LM head it patches onto the
  LLM, fed by ``input_ids``; ours must go through AffectLLM.forward, which splices the projected
  features into ``inputs_embeds``. The plain ``transformers.Trainer.compute_loss`` does exactly that
  (and keeps gradient-accumulation / multi-process token averaging right via ``num_items_in_batch``).
- ``_save`` / ``_load_from_checkpoint``: checkpoints hold ``AffectLLM.save_pretrained`` output
  under ``checkpoint-N/model/`` (LoRA + projectors + config + tokenizer, never the frozen base),
  plus the optimizer, scheduler and RNG states transformers writes beside it.

Deliberately not here: record building (``data_engine``), batching (``train.collator``), GRPO.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn
from transformers import Trainer
from trl import SFTConfig, SFTTrainer

from train.collator import AffectCollator
from train.common import (build_affect, cli, train_and_save, trainable_summary,
                          training_kwargs)
from train.records import read_records, sft_dataset, split_records

log = logging.getLogger(__name__)
MODEL_SUBDIR = "model"  # inside checkpoint-N/

# Defaults a recipe may change (see train/recipes/sft_cpu.yaml for the usual ones).
SFT_DEFAULTS = dict(
    learning_rate=2e-4, max_steps=100, per_device_train_batch_size=2, gradient_accumulation_steps=1,
    lr_scheduler_type="cosine", warmup_steps=0, logging_steps=5, save_strategy="steps", save_steps=50,
    save_total_limit=2, eval_strategy="no", report_to="none", gradient_checkpointing=False,
    dataloader_num_workers=0, ddp_find_unused_parameters=True,  # a batch without a modality leaves its projector idle
)
# What the collator and the view rely on; a recipe cannot turn these off.
SFT_FORCED = dict(remove_unused_columns=False, dataset_kwargs={"skip_prepare_dataset": True},
                  prediction_loss_only=True, packing=False, padding_free=False, load_best_model_at_end=False)


class _TrainerView(nn.Module):
    """An AffectLLM as trl's SFTTrainer expects a model to look (see module docstring)."""

    def __init__(self, affect: nn.Module):
        super().__init__()
        self.affect = affect

    @property
    def config(self):
        return self.affect.llm.config

    @property
    def generation_config(self):
        return self.affect.llm.generation_config

    def add_model_tags(self, tags) -> None:
        if hasattr(self.affect.llm, "add_model_tags"):
            self.affect.llm.add_model_tags(tags)

    def activation_checkpointing_enable(self, activation_checkpointing_kwargs=None, **kwargs) -> None:
        # Recompute the LLM's layers in the backward pass (args.gradient_checkpointing); the
        # projectors are small and run once.
        self.affect.llm.activation_checkpointing_enable(
            activation_checkpointing_kwargs=activation_checkpointing_kwargs, **kwargs)

    def forward(self, input_ids, attention_mask=None, labels=None, features=None, feature_masks=None, **kwargs):
        kwargs.setdefault("use_cache", False)
        return self.affect(input_ids=input_ids, attention_mask=attention_mask, labels=labels,
                           features=features, feature_masks=feature_masks, **kwargs)


def unwrap_affect(trainer: Trainer):
    """The AffectLLM inside the trainer's (possibly DDP-wrapped) view."""
    return trainer.accelerator.unwrap_model(trainer.model).affect


def load_trainable(affect, folder: str | Path) -> None:
    """Copy LoRA and projector weights saved by ``AffectLLM.save_pretrained`` into ``affect``
    (the frozen base is untouched, so resuming needs only the small files)."""
    from peft.utils import load_peft_weights, set_peft_model_state_dict
    from safetensors.torch import load_file

    from affectllm.model.affect_llm import ADAPTER_DIR, PROJECTORS_FILE

    folder = Path(folder)
    device = next(affect.parameters()).device
    affect.projectors.load_state_dict(load_file(str(folder / PROJECTORS_FILE), device=str(device)), strict=True)
    if affect.config.lora.enabled:
        weights = load_peft_weights(str(folder / ADAPTER_DIR), device=str(device))
        result = set_peft_model_state_dict(affect.llm, weights)
        if result.unexpected_keys:
            raise ValueError(f"{folder}: adapter keys the model does not have: {result.unexpected_keys[:5]}")


class AffectSFTTrainer(SFTTrainer):
    """SFTTrainer over a ``_TrainerView``; see the module docstring for why each override exists."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        return Trainer.compute_loss(self, model, inputs, return_outputs=return_outputs,
                                    num_items_in_batch=num_items_in_batch)

    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        if not self.args.should_save:
            return
        output_dir = Path(output_dir or self.args.output_dir)
        if state_dict is not None:
            log.warning("a gathered state dict was passed (DeepSpeed/FSDP); saving the unwrapped AffectLLM "
                        "directly, which is right for DDP and ZeRO-2")
        unwrap_affect(self).save_pretrained(output_dir / MODEL_SUBDIR)
        torch.save(self.args, output_dir / "training_args.bin")

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None) -> None:
        folder = Path(resume_from_checkpoint) / MODEL_SUBDIR
        if not folder.is_dir():
            raise ValueError(f"{resume_from_checkpoint} has no {MODEL_SUBDIR}/ folder (not an affectllm checkpoint)")
        load_trainable(unwrap_affect(self), folder)

    def _load_best_model(self) -> None:
        self._load_from_checkpoint(self.state.best_model_checkpoint)


def build_trainer(recipe: dict, affect=None, callbacks=None) -> AffectSFTTrainer:
    """An AffectSFTTrainer for ``recipe`` (``affect``: an AffectLLM already built, e.g. by a test)."""
    from affectllm.perception.cache import FeatureCache

    data = recipe["data"]
    args = SFTConfig(**training_kwargs(recipe, SFT_FORCED, SFT_DEFAULTS))
    train_recs, eval_recs = split_records(read_records(data["train"], "sft"),
                                          eval_fraction=float(data.get("eval_fraction", 0.0)),
                                          eval_split=data.get("eval_split", "dev"))
    if data.get("eval"):
        eval_recs = [r for r in read_records(data["eval"], "sft") if r.get("split") != "test"]
    if args.eval_strategy != "no" and not eval_recs:
        log.warning("eval_strategy=%s but no eval records (no dev split, eval_fraction 0): eval off", args.eval_strategy)
        args.eval_strategy = "no"
    affect = affect if affect is not None else build_affect(recipe["model"])
    cache = FeatureCache(data["feature_cache"]) if data.get("feature_cache") else FeatureCache()
    collator = AffectCollator(affect, feature_cache=cache, max_length=data.get("max_length"))
    counts = trainable_summary(affect)
    log.info("SFT: %d train / %d eval records; %d of %d parameters trainable", len(train_recs),
             len(eval_recs), counts["trainable"], counts["total"])
    return AffectSFTTrainer(model=_TrainerView(affect), args=args, data_collator=collator,
                            train_dataset=sft_dataset(train_recs),
                            eval_dataset=sft_dataset(eval_recs) if args.eval_strategy != "no" else None,
                            processing_class=affect.tokenizer, callbacks=callbacks)


def run_sft(recipe: dict, affect=None, callbacks=None) -> Path:
    """Train (resuming from the last complete checkpoint when there is one); return the folder of the
    final ``AffectLLM.save_pretrained`` (``args.output_dir/final``)."""
    trainer = build_trainer(recipe, affect, callbacks)
    return train_and_save(trainer, recipe, lambda final: unwrap_affect(trainer).save_pretrained(final))


def main(argv=None) -> Path:
    return cli("sft", run_sft, argv)


if __name__ == "__main__":
    main()
