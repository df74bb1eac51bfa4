"""``accelerate launch`` with two CPU processes (gloo) runs SFT on a tiny model; both ranks end with
the same trained weights. The shipped ``train/accelerate/multi_cpu.yaml`` is the config used (see
its header for why it names torchrun's MULTI_GPU launcher: ``--cpu`` would start one process)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import yaml

from _train_data import make_records, write_jsonl
from affectllm.perception.cache import FeatureCache
from train.recipe import ACCELERATE_DIR

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_cpu_processes_train_identical_weights(tmp_path, tiny_llm_factory):
    llm, tok = tiny_llm_factory("llama")
    llm.save_pretrained(tmp_path / "tiny-llm")
    tok.save_pretrained(tmp_path / "tiny-llm")
    cache = FeatureCache(tmp_path / "features")
    data = write_jsonl(make_records(12, modalities=("face", "audio"), cache=cache), tmp_path / "rec" / "sft.jsonl")
    recipe = {
        "task": "sft", "seed": 0,
        "model": {"llm": {"name": str(tmp_path / "tiny-llm")}, "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
                  "encoders": {"face": {"feature_dim": 8, "num_tokens": 2},
                               "audio": {"feature_dim": 12, "num_tokens": 3},
                               "image": {"feature_dim": 16, "num_tokens": 1}}},
        "data": {"train": str(data), "feature_cache": str(tmp_path / "features"), "eval_fraction": 0.0},
        "args": {"output_dir": str(tmp_path / "run"), "max_steps": 3, "save_steps": 3,
                 "per_device_train_batch_size": 2, "learning_rate": 5e-3, "logging_steps": 1,
                 "eval_strategy": "no"},
    }
    recipe_file = tmp_path / "recipe.yaml"
    recipe_file.write_text(yaml.safe_dump(recipe))
    out = tmp_path / "hashes"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "accelerate.commands.launch",
           "--config_file", str(ACCELERATE_DIR / "multi_cpu.yaml"), "--num_processes", "2",
           "--main_process_port", str(_free_port()),
           str(REPO / "tests" / "_accelerate_sft_worker.py"), str(recipe_file), str(out)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]

    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    assert [r["distributed"] for r in ranks] == ["MULTI_CPU/gloo"] * 2
    assert ranks[0]["global_step"] == ranks[1]["global_step"] == 3
    assert ranks[0]["begin"] == ranks[1]["begin"]  # same initialisation on both ranks
    assert ranks[0]["end"] == ranks[1]["end"]  # DDP kept them identical...
    assert ranks[0]["end"] != ranks[0]["begin"]  # ...while they trained
    assert (Path(ranks[0]["final"]) / "projectors.safetensors").is_file()
    assert (tmp_path / "run" / "checkpoint-3" / "model" / "adapter").is_dir()
