"""Recipes: every shipped YAML loads and builds its configs; extends, overrides and errors."""

from __future__ import annotations

import pytest

from train.recipe import ACCELERATE_DIR, RECIPES_DIR, apply_overrides, load_recipe, parse_override
from train.records import split_records

SHIPPED = sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def test_the_expected_recipes_ship():
    assert {"sft_cpu", "sft_gpu_bf16", "sft_qlora_4bit", "grpo_cpu"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_recipe_builds_its_model_and_trainer_configs(name):
    from trl import GRPOConfig, SFTConfig

    from affectllm.config import AffectConfig
    from train.common import training_kwargs
    from train.grpo import GRPO_DEFAULTS, GRPO_FORCED, reward_functions
    from train.sft import SFT_DEFAULTS, SFT_FORCED

    recipe = load_recipe(RECIPES_DIR / f"{name}.yaml")
    model = {k: v for k, v in recipe["model"].items() if k != "init_from"}
    AffectConfig.from_dict(model)  # unknown or mistyped keys raise here
    if recipe["task"] == "sft":
        args = SFTConfig(**training_kwargs(recipe, SFT_FORCED, SFT_DEFAULTS))
        assert args.remove_unused_columns is False
    else:
        funcs, weights = reward_functions(recipe["rewards"])
        kw = training_kwargs(recipe, GRPO_FORCED, GRPO_DEFAULTS)
        args = GRPOConfig(**{**kw, "reward_weights": weights})
        assert len(funcs) == len(weights) == len(recipe["rewards"])
    assert args.max_steps > 0


def test_extends_merges_and_overrides_win(tmp_path):
    qlora = load_recipe("sft_qlora_4bit")
    assert qlora["model"]["quantization"]["mode"] == "4bit"
    assert qlora["model"]["llm"]["name"] == "Qwen/Qwen2.5-1.5B-Instruct"  # from sft_gpu_bf16
    assert qlora["model"]["encoders"]["audio"]["num_tokens"] == 8  # from sft_cpu, two levels up
    assert qlora["args"]["gradient_checkpointing"] is True
    r = load_recipe("sft_cpu", ["args.max_steps=7", "model.lora.target_modules=[q_proj, v_proj]",
                                "data.train=/x/y", "args.learning_rate=1e-3"])
    assert r["args"]["max_steps"] == 7 and r["args"]["learning_rate"] == 1e-3
    assert r["model"]["lora"]["target_modules"] == ["q_proj", "v_proj"] and r["data"]["train"] == "/x/y"
    child = tmp_path / "child.yaml"
    child.write_text(f"extends: {RECIPES_DIR / 'sft_cpu.yaml'}\nargs:\n  max_steps: 3\n")
    assert load_recipe(child)["args"]["max_steps"] == 3
    assert load_recipe(child)["args"]["save_steps"] == 50


def test_bad_recipes_say_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_override("args.max_steps")
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: sft\ndata: {train: x}\nargs: {output_dir: o}\nmodle: {}\n")
    with pytest.raises(ValueError, match="modle"):
        load_recipe(bad)
    bad.write_text("task: grpo\ndata: {train: x}\nargs: {output_dir: o}\nrewards: {formatt: 1}\n")
    with pytest.raises(ValueError, match="formatt"):
        load_recipe(bad)
    bad.write_text("task: sft\nargs: {output_dir: o}\n")
    with pytest.raises(ValueError, match="data.train"):
        load_recipe(bad)
    loop = tmp_path / "loop.yaml"
    loop.write_text("extends: loop.yaml\n")
    with pytest.raises(ValueError, match="cycle"):
        load_recipe(loop)
    with pytest.raises(FileNotFoundError):
        load_recipe(tmp_path / "missing.yaml")
    assert apply_overrides({"a": 1}, ["b.c=x"]) == {"a": 1, "b": {"c": "x"}}


def test_accelerate_configs_parse():
    from accelerate.commands.config.config_args import load_config_from_file

    kinds = {p.stem: load_config_from_file(str(p)).distributed_type.value for p in ACCELERATE_DIR.glob("*.yaml")}
    assert kinds == {"single_cpu": "NO", "multi_cpu": "MULTI_GPU", "multi_gpu": "MULTI_GPU",
                     "deepspeed_zero2": "DEEPSPEED", "deepspeed_zero3": "DEEPSPEED", "fsdp": "FSDP"}


def test_splits_never_use_test_and_hold_out_whole_speakers():
    recs = [{"id": f"r{i}", "messages": [], "split": "train", "speaker": f"s{i % 5}", "source": "x"}
            for i in range(50)]
    recs += [{"id": "t", "messages": [], "split": "test"}]
    train, evals = split_records(recs, eval_fraction=0.4, eval_split="dev")
    assert all(r["split"] != "test" for r in train + evals)
    assert evals and {r["speaker"] for r in train}.isdisjoint({r["speaker"] for r in evals})
    dev = recs + [{"id": "d", "messages": [], "split": "dev"}]
    train, evals = split_records(dev, eval_fraction=0.4)
    assert [r["id"] for r in evals] == ["d"] and len(train) == 50
