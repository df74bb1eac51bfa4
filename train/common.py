"""Plumbing shared by ``train.sft`` and ``train.grpo``: model from a recipe, trainer arguments,
resumable checkpoints, the command line.

Deliberately not here: anything specific to one trainer (collators, rewards).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
from pathlib import Path

import torch

from affectllm.io.files import atomic_write_text

log = logging.getLogger(__name__)

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
TRAINER_STATE = "trainer_state.json"  # transformers writes it last into a checkpoint folder
FINAL_DIR = "final"  # run_sft / run_grpo save the trained AffectLLM here, under args.output_dir


def build_affect(model_section: dict, *, trainable: bool = True):
    """An AffectLLM for training: ``init_from: FOLDER`` restores a saved one (its config wins),
    otherwise a fresh one from the AffectConfig keys of the section (base LLM loaded by name)."""
    from affectllm.config import AffectConfig
    from affectllm.model.affect_llm import AffectLLM

    section = dict(model_section or {})
    init_from = section.pop("init_from", None)
    if init_from:
        if section:
            log.warning("model.init_from=%s: the saved config is used; ignoring recipe keys %s",
                        init_from, sorted(section))
        return AffectLLM.from_pretrained(init_from, is_trainable=trainable)
    return AffectLLM.build(AffectConfig.from_dict(section))


def trainable_summary(model: torch.nn.Module) -> dict[str, int]:
    """Parameter counts: trainable (LoRA + projectors) vs all."""
    total = sum(p.numel() for p in model.parameters())
    train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable": train, "total": total}


def training_kwargs(recipe: dict, forced: dict, defaults: dict) -> dict:
    """Keyword arguments for SFTConfig / GRPOConfig: ``defaults`` < the recipe's ``args`` < ``forced``.

    Without CUDA, ``use_cpu`` is set and bf16/fp16 are off (trl would otherwise ask for bf16).
    ``resume_from_checkpoint`` is taken out: :func:`resume_point` interprets it.
    """
    kw = {**defaults, **dict(recipe.get("args") or {}), **forced}
    kw.pop("resume_from_checkpoint", None)
    for key, value in kw.items():  # YAML 1.1 reads a bare `no` as False
        if key.endswith("_strategy") and value is False:
            kw[key] = "no"
    if "seed" in recipe:
        kw.setdefault("seed", recipe["seed"])
    if not torch.cuda.is_available():
        if kw.get("bf16") or kw.get("fp16"):
            log.warning("no CUDA device: training in float32 on the CPU (bf16/fp16 off)")
        kw.update(use_cpu=True, bf16=False, fp16=False)
    kw["output_dir"] = str(Path(kw["output_dir"]).expanduser())
    return kw


def last_complete_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    """The highest ``checkpoint-N`` whose trainer state was written (a run killed while saving
    leaves a folder without it; transformers' own ``get_last_checkpoint`` would pick that one)."""
    root = Path(output_dir)
    if not root.is_dir():
        return None
    found = []
    for p in root.iterdir():
        m = _CHECKPOINT.match(p.name)
        if m and p.is_dir() and (p / TRAINER_STATE).is_file():
            found.append((int(m.group(1)), p))
    return max(found)[1] if found else None


def resume_point(recipe: dict) -> str | None:
    """What ``trainer.train(resume_from_checkpoint=...)`` gets from ``args.resume_from_checkpoint``:
    ``auto`` (default): the last complete checkpoint in output_dir, if any; ``false``/``none``: start
    fresh; a path: that checkpoint."""
    args = recipe.get("args") or {}
    value = args.get("resume_from_checkpoint", "auto")
    if value in (False, None, "none", "false", "no"):
        return None
    if value in (True, "auto", "true", "yes"):
        ckpt = last_complete_checkpoint(Path(args["output_dir"]).expanduser())
        if ckpt is not None:
            log.info("resuming from %s", ckpt)
        return str(ckpt) if ckpt else None
    if not (Path(value) / TRAINER_STATE).is_file():
        raise FileNotFoundError(f"resume_from_checkpoint={value}: not a complete checkpoint (no {TRAINER_STATE})")
    return str(value)


def save_recipe(recipe: dict, output_dir: str | os.PathLike) -> Path:
    """The recipe as run, next to the checkpoints (provenance for the final model)."""
    import yaml

    return atomic_write_text(Path(output_dir) / "recipe.yaml", yaml.safe_dump(recipe, sort_keys=False))


def train_and_save(trainer, recipe: dict, save_final) -> Path:
    """The run both stages share: recipe beside the checkpoints, train (resuming when a complete
    checkpoint exists), then ``save_final(folder)`` on the main process only, between barriers so
    no rank returns before the model is on disk. Returns ``args.output_dir/final``."""
    out = Path(trainer.args.output_dir)
    if trainer.is_world_process_zero():
        out.mkdir(parents=True, exist_ok=True)
        save_recipe(recipe, out)
    trainer.train(resume_from_checkpoint=resume_point(recipe))
    final = out / FINAL_DIR
    trainer.accelerator.wait_for_everyone()
    if trainer.is_world_process_zero():
        save_final(final)
    trainer.accelerator.wait_for_everyone()
    return final


def cli(task: str, run, argv=None) -> Path:
    """``python -m train.<task> --recipe FILE [--override key=value ...]``."""
    from train.recipe import load_recipe

    ap = argparse.ArgumentParser(prog=f"python -m train.{task}", description=f"affectllm {task} training")
    ap.add_argument("--recipe", required=True, help="recipe YAML (or a name in train/recipes/)")
    ap.add_argument("--override", "-o", action="append", default=[], metavar="KEY=VALUE",
                    help="set a nested recipe key, e.g. args.max_steps=10 (repeatable)")
    ns = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if os.environ.get("OMP_NUM_THREADS") is None and not torch.cuda.is_available():
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ.get("WORLD_SIZE", "1"))))
    recipe = load_recipe(ns.recipe, ns.override)
    if recipe["task"] != task:
        raise SystemExit(f"{ns.recipe} is a {recipe['task']!r} recipe; use python -m train.{recipe['task']}")
    out = run(recipe)
    print(out)
    return out
