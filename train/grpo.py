"""GRPO on AffectLLM's LoRA with trl's GRPOTrainer and the rewards of ``train.rewards``.

Launch (starts from the SFT model; resumes by itself from the last complete checkpoint)::

    python -m train.grpo --recipe train/recipes/grpo_cpu.yaml --override model.init_from=runs/sft_cpu/final
    CUDA_VISIBLE_DEVICES= accelerate launch --config_file train/accelerate/multi_cpu.yaml -m train.grpo --recipe train/recipes/grpo_cpu.yaml

The textual-evidence path needs no trainer subclass: prompts are text, so GRPOTrainer is given
the AffectLLM's own LoRA-wrapped LLM (``affect.llm``, a ``PeftModel``) and trains its adapter in
place; the projectors from SFT are kept as they are and saved with the result. Each prompt is the
chat template plus ``prompting.RESPONSE_PREFIX`` (what inference pre-fills), so completions start
inside ``<think>`` exactly as at inference; the rewards put that prefix back before parsing.
Soft-token placeholders (``<face>``...) are removed from GRPO prompts with a warning: generating
through the splice would need a GRPOTrainer subclass (generation and log-prob passes with
``inputs_embeds``), which is not written yet. Records built with ``evidence: both`` keep their
textual evidence, so they still train.

Rewards and weights come from the recipe: ``rewards: {format: 1.0, length: {weight: 0.5, budget: 150}}``.
Nested columns (``gold_aus``, ``features``) travel as JSON strings through the Arrow dataset and
are decoded before each reward sees them.

Deliberately not here: reward definitions (``train.rewards``), SFT (``train.sft``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import wraps
from pathlib import Path

from trl import GRPOConfig, GRPOTrainer

from affectllm.explanation.format import PLACEHOLDERS, RESPONSE_PREFIX
from affectllm.explanation.prompt import render_prompt
from train.common import (build_affect, cli, train_and_save, trainable_summary,
                          training_kwargs)
from train.records import decode_json_columns, read_records, rl_dataset, split_records

log = logging.getLogger(__name__)

GRPO_DEFAULTS = dict(
    learning_rate=1e-5, max_steps=100, per_device_train_batch_size=4, num_generations=4,
    max_completion_length=256, temperature=1.0, beta=0.0, loss_type="dapo", logging_steps=5,
    save_strategy="steps", save_steps=25, save_total_limit=2, eval_strategy="no", report_to="none",
    gradient_checkpointing=False, dataloader_num_workers=0,
)
GRPO_FORCED = dict(remove_unused_columns=False, load_best_model_at_end=False)


def reward_functions(spec: Mapping) -> tuple[list, list[float]]:
    """``{name: weight}`` or ``{name: {weight: w, **params}}`` -> (reward functions, weights).

    Each function is ``train.rewards.get_reward(name, **params)`` behind a wrapper that decodes
    the JSON-packed columns; it keeps the reward's ``__name__`` for trl's logs.
    """
    from train.rewards import get_reward

    funcs, weights = [], []
    for name, value in spec.items():
        params = dict(value) if isinstance(value, Mapping) else {"weight": value}
        weight = float(params.pop("weight", 1.0))
        fn = get_reward(name, **params)

        @wraps(fn)
        def reward(completions, _fn=fn, **columns):
            return _fn(completions, **decode_json_columns(columns))

        funcs.append(reward)
        weights.append(weight)
    return funcs, weights


def text_prompt(tokenizer, messages: list[dict], prefix: str = RESPONSE_PREFIX) -> str:
    """The generation prompt for GRPO: soft placeholders removed, chat template, response prefix."""
    clean = []
    for m in messages:
        content = m["content"]
        for tok in PLACEHOLDERS.values():
            content = content.replace(tok, "")
        clean.append({"role": m["role"], "content": content.lstrip() if content != m["content"] else content})
    return render_prompt(tokenizer, clean, prefix=prefix)


def build_trainer(recipe: dict, affect=None, callbacks=None) -> tuple[GRPOTrainer, object]:
    """(GRPOTrainer over ``affect.llm``, the AffectLLM) for ``recipe``."""
    data = recipe["data"]
    affect = affect if affect is not None else build_affect(recipe["model"])
    if not affect.config.lora.enabled:
        raise ValueError("GRPO trains the LoRA adapter; the model has lora.enabled = false")
    records = read_records(data["train"], "rl")
    train_recs, _ = split_records(records, eval_fraction=0.0, eval_split=data.get("eval_split", "dev"))
    soft = sum(any(t in m["content"] for m in r["messages"] for t in PLACEHOLDERS.values()) for r in train_recs)
    if soft:
        log.warning("%d of %d RL prompts have soft-token placeholders; GRPO uses their textual evidence only",
                    soft, len(train_recs))
    prefix = data.get("response_prefix", RESPONSE_PREFIX) or ""
    tok = affect.tokenizer
    dataset = rl_dataset(train_recs, render=lambda msgs: text_prompt(tok, msgs, prefix))
    funcs, weights = reward_functions(recipe["rewards"])
    kwargs = training_kwargs(recipe, GRPO_FORCED, GRPO_DEFAULTS)
    kwargs.setdefault("reward_weights", weights)
    args = GRPOConfig(**kwargs)
    counts = trainable_summary(affect.llm)
    log.info("GRPO: %d prompts, rewards %s; %d of %d LLM parameters trainable", len(train_recs),
             dict(zip(recipe["rewards"], weights)), counts["trainable"], counts["total"])
    trainer = GRPOTrainer(model=affect.llm, reward_funcs=funcs, args=args, train_dataset=dataset,
                          processing_class=tok, callbacks=callbacks)
    return trainer, affect


def run_grpo(recipe: dict, affect=None, callbacks=None) -> Path:
    """Train the LoRA adapter with GRPO (resuming when a checkpoint exists); save the whole
    AffectLLM (SFT projectors + updated adapter) to ``args.output_dir/final`` and return it."""
    trainer, affect = build_trainer(recipe, affect, callbacks)

    def save_final(final: Path) -> None:
        llm = affect.llm
        if "ref" in getattr(llm, "peft_config", {}):  # trl's frozen reference copy when beta > 0
            llm.delete_adapter("ref")
            llm.set_adapter("default")
        affect.save_pretrained(final)

    return train_and_save(trainer, recipe, save_final)


def main(argv=None) -> Path:
    return cli("grpo", run_grpo, argv)


if __name__ == "__main__":
    main()
