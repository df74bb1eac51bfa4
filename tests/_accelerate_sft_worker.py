"""Run by ``accelerate launch`` in tests/train/test_accelerate_sft.py: one SFT run per process, then each
rank writes a hash of its trainable parameters (before and after) to ``OUT/rank{r}.json``.

Usage: ``accelerate launch ... tests/_accelerate_sft_worker.py RECIPE.yaml OUT_DIR``
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import torch
from transformers import TrainerCallback

from train.recipe import load_recipe
from train.sft import run_sft


def trainable_hash(model) -> str:
    h = hashlib.sha256()
    for name, p in sorted(model.named_parameters()):
        if p.requires_grad:
            h.update(name.encode())
            h.update(p.detach().cpu().float().numpy().tobytes())
    return h.hexdigest()


class HashCallback(TrainerCallback):
    def __init__(self):
        self.hashes = {}

    def on_train_begin(self, args, state, control, model=None, **kw):
        self.hashes["begin"] = trainable_hash(model)
        from accelerate import PartialState

        ps = PartialState()
        self.hashes["distributed"] = f"{ps.distributed_type.value}/{ps.backend}"

    def on_train_end(self, args, state, control, model=None, **kw):
        self.hashes["end"] = trainable_hash(model)
        self.hashes["global_step"] = state.global_step


def main() -> None:
    torch.set_num_threads(1)
    recipe_path, out = sys.argv[1], Path(sys.argv[2])
    cb = HashCallback()
    final = run_sft(load_recipe(recipe_path), callbacks=[cb])
    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    out.mkdir(parents=True, exist_ok=True)
    (out / f"rank{rank}.json").write_text(json.dumps({**cb.hashes, "rank": rank, "world": world,
                                                      "final": str(final)}))


if __name__ == "__main__":
    main()
