"""Train AffectLLM adapters with trl: LoRA SFT, then GRPO with the reward functions.

  affectllm train sft --recipe train/recipes/affectllm_mini.yaml
  affectllm train grpo --recipe train/recipes/grpo_cpu.yaml -o model.init_from=runs/sft_mini/final
  affectllm train sft --recipe train/recipes/sft_cpu.yaml -o args.max_steps=20 -o data.train=DIR

Rerunning the same command resumes from the last complete checkpoint. Multi-process / GPU
launches go through `accelerate launch -m train.sft ...` (see docs/training.md).
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("stage", choices=["sft", "grpo"], help="training stage")
    p.add_argument("--recipe", required=True, help="YAML recipe (train/recipes/*.yaml)")
    p.add_argument("--override", "-o", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe value, e.g. args.max_steps=20 (repeatable)")


def run(args) -> int:
    from train.recipe import load_recipe

    recipe = load_recipe(args.recipe, args.override)
    if recipe["task"] != args.stage:
        raise SystemExit(f"{args.recipe} is a {recipe['task']} recipe, not {args.stage}")
    if args.stage == "sft":
        from train.sft import run_sft as run_stage
    else:
        from train.grpo import run_grpo as run_stage
    print(run_stage(recipe))
    return 0
