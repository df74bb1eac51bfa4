"""train.sft on a tiny random LLM: what trains, what stays frozen, and resuming after a stop."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import TrainerCallback

from _train_data import make_records, write_jsonl
from affectllm.perception.cache import FeatureCache
from train.common import last_complete_checkpoint
from train.recipe import validate
from train.sft import run_sft


@pytest.fixture
def tiny_llm_dir(tiny_llm_factory, tmp_path):
    """A tiny Llama + tokenizer saved as a normal HF folder (what recipes name by path)."""
    llm, tok = tiny_llm_factory("llama")
    path = tmp_path / "tiny-llm"
    llm.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def sft_recipe(tmp_path, llm_dir, **args) -> dict:
    cache = FeatureCache(tmp_path / "features")
    records = make_records(12, modalities=("face", "audio"), cache=cache)
    records += make_records(4, modalities=("face",), cache=cache, seed=1, split="dev")
    data = write_jsonl(records, tmp_path / "records" / "sft.jsonl")
    recipe = {
        "task": "sft", "seed": 0,
        "model": {"llm": {"name": str(llm_dir)}, "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
                  "encoders": {"face": {"feature_dim": 8, "num_tokens": 2},
                               "audio": {"feature_dim": 12, "num_tokens": 3},
                               "image": {"feature_dim": 16, "num_tokens": 1}}},
        "data": {"train": str(data.parent), "feature_cache": str(tmp_path / "features"), "max_length": 512},
        "args": {"output_dir": str(tmp_path / "run"), "max_steps": 4, "save_steps": 2,
                 "per_device_train_batch_size": 2, "learning_rate": 5e-3, "logging_steps": 1,
                 "eval_strategy": "steps", "eval_steps": 4, "seed": 0, "lr_scheduler_type": "constant"},
    }
    return validate(recipe)


def _params(model, keep) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if keep(n)}


def test_sft_trains_lora_and_projectors_not_the_base(tmp_path, tiny_llm_dir):
    from affectllm.model.affect_llm import AffectLLM
    from train.common import build_affect

    recipe = sft_recipe(tmp_path, tiny_llm_dir)
    before = build_affect(recipe["model"])  # same seed: the initial LoRA and projectors of the run
    init = _params(before, lambda n: True)
    final = run_sft(recipe)

    assert (final / "config.json").is_file() and (final / "adapter").is_dir()
    after = AffectLLM.from_pretrained(final)
    trained = _params(after, lambda n: True)
    assert trained.keys() == init.keys()
    lora = [n for n in init if "lora_" in n]
    proj = [n for n in init if n.startswith("projectors.")]
    base = [n for n in init if "lora_" not in n and not n.startswith("projectors.")]
    assert lora and proj and base
    assert any(not torch.equal(init[n], trained[n]) for n in lora if "lora_B" in n)
    assert any(not torch.equal(init[n], trained[n]) for n in proj if "audio" in n)
    assert any(not torch.equal(init[n], trained[n]) for n in proj if "face" in n)
    # The image projector saw no data: untouched (weight decay 0).
    assert all(torch.equal(init[n], trained[n]) for n in proj if "image" in n)
    changed_base = [n for n in base if not torch.equal(init[n], trained[n])]
    assert not changed_base, changed_base[:3]

    state = json.loads((tmp_path / "run" / "checkpoint-4" / "trainer_state.json").read_text())
    losses = [h["loss"] for h in state["log_history"] if "loss" in h]
    assert len(losses) == 4 and all(map(lambda x: x == x, losses))
    assert any("eval_loss" in h for h in state["log_history"])  # the dev records were evaluated
    assert (tmp_path / "run" / "recipe.yaml").is_file()


class _Kill(Exception):
    pass


class _KillAfterSave(TrainerCallback):
    """Dies right after checkpoint ``step`` is written, like a killed process (no final save)."""

    def __init__(self, step):
        self.step = step

    def on_save(self, args, state, control, **kw):
        if state.global_step == self.step:
            raise _Kill


class _Steps(TrainerCallback):
    def __init__(self):
        self.steps = []

    def on_step_end(self, args, state, control, **kw):
        self.steps.append(state.global_step)


def test_a_stopped_run_resumes_from_its_last_checkpoint(tmp_path, tiny_llm_dir):
    from affectllm.model.affect_llm import AffectLLM

    # Reference: 6 uninterrupted steps.
    ref = sft_recipe(tmp_path / "ref", tiny_llm_dir, max_steps=6)
    ref["args"].update(max_steps=6, eval_strategy="no")
    ref_final = AffectLLM.from_pretrained(run_sft(ref))

    recipe = sft_recipe(tmp_path / "cut", tiny_llm_dir)
    recipe["args"].update(max_steps=6, eval_strategy="no")
    with pytest.raises(_Kill):
        run_sft(recipe, callbacks=[_KillAfterSave(4)])
    run_dir = tmp_path / "cut" / "run"
    assert last_complete_checkpoint(run_dir).name == "checkpoint-4"
    assert not (run_dir / "final").exists()
    # A checkpoint folder left half-written by a kill during saving is not picked.
    (run_dir / "checkpoint-5" / "model").mkdir(parents=True)
    assert last_complete_checkpoint(run_dir).name == "checkpoint-4"

    steps = _Steps()
    final = run_sft(recipe, callbacks=[steps])  # the same recipe again
    assert steps.steps == [5, 6]  # continued at step 5, not from scratch
    resumed = AffectLLM.from_pretrained(final)
    ref_p = _params(ref_final, lambda n: "lora_" in n or n.startswith("projectors."))
    got_p = _params(resumed, lambda n: "lora_" in n or n.startswith("projectors."))
    # Same data order, optimizer and RNG state: the resumed run ends where the uninterrupted one does.
    for n in ref_p:
        torch.testing.assert_close(got_p[n], ref_p[n], rtol=1e-4, atol=1e-6)


def test_cli_killed_mid_run_resumes_with_the_same_command(tmp_path, tiny_llm_dir):
    """The real thing: ``python -m train.sft`` is SIGKILLed after a checkpoint and started again."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    import yaml

    recipe = sft_recipe(tmp_path, tiny_llm_dir)
    recipe["args"].update(max_steps=100000, save_steps=2, save_total_limit=2, eval_strategy="no")
    recipe_file = tmp_path / "recipe.yaml"
    recipe_file.write_text(yaml.safe_dump(recipe))
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "train.sft", "--recipe", str(recipe_file)]
    run_dir = tmp_path / "run"

    proc = subprocess.Popen(cmd, cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while last_complete_checkpoint(run_dir) is None:
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    proc.stderr.close()
    assert not (run_dir / "final").exists()
    ckpt = last_complete_checkpoint(run_dir)  # the kill may have hit a later save: whichever completed
    step = int(ckpt.name.split("-")[1])

    again = subprocess.run(cmd + ["--override", f"args.max_steps={step + 2}", "--override", "args.logging_steps=1"],
                           cwd=repo, env=env, capture_output=True, text=True, timeout=180)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.strip().endswith(str(run_dir / "final"))
    assert f"resuming from {ckpt}" in again.stderr
    state = json.loads((run_dir / f"checkpoint-{step + 2}" / "trainer_state.json").read_text())
    assert state["global_step"] == step + 2
    # Only the two new steps ran in the second process (transformers prints one dict per logged step).
    assert again.stdout.count("'loss':") + again.stderr.count("'loss':") == 2
