"""train.grpo on a tiny random LLM with the real reward functions: the adapter moves, the base
and the SFT projectors do not, and the result reloads as an AffectLLM."""

from __future__ import annotations

import json

import torch

from _train_data import make_records, write_jsonl
from affectllm.explanation.format import RESPONSE_PREFIX
from train.grpo import reward_functions, run_grpo, text_prompt
from train.recipe import validate
from train.records import rl_dataset


def _sft_like_model(tiny_affect_factory, folder):
    """A saved AffectLLM whose adapter is not at its zero init (as after SFT)."""
    affect = tiny_affect_factory()
    with torch.no_grad():
        for n, p in affect.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.02, generator=torch.Generator().manual_seed(1))
    return affect.save_pretrained(folder)


def test_grpo_moves_lora_only_and_saves_an_affectllm(tmp_path, tiny_affect_factory, tiny_llm_factory):
    from affectllm.model.affect_llm import AffectLLM

    sft_dir = _sft_like_model(tiny_affect_factory, tmp_path / "sft")
    data = write_jsonl(make_records(8, modalities=(), rl=True), tmp_path / "records" / "rl.jsonl")
    recipe = validate({
        "task": "grpo", "seed": 0, "model": {"init_from": str(sft_dir)}, "data": {"train": str(data)},
        "rewards": {"format": 1.0, "emotion": 1.0, "quadrant": 0.5, "au_grounding": 0.5,
                    "length": {"weight": 0.2, "budget": 8}},
        "args": {"output_dir": str(tmp_path / "run"), "max_steps": 2, "per_device_train_batch_size": 4,
                 "num_generations": 4, "max_completion_length": 12, "learning_rate": 1e-2,
                 "logging_steps": 1, "save_steps": 2, "temperature": 1.0, "seed": 0},
    })
    def load(folder, trainable=False):  # on a fresh copy of the same tiny base (same seed, same weights)
        llm, tok = tiny_llm_factory("llama", seed=0)
        return AffectLLM.from_pretrained(folder, llm=llm, tokenizer=tok, is_trainable=trainable)

    base, _ = tiny_llm_factory("llama", seed=0)
    start = load(sft_dir)
    final = run_grpo(recipe, affect=load(sft_dir, trainable=True))
    after = load(final)
    p0 = dict(start.named_parameters())
    p1 = dict(after.named_parameters())
    lora = [n for n in p0 if "lora_" in n]
    assert lora and any(not torch.equal(p0[n], p1[n]) for n in lora), "GRPO did not move the adapter"
    frozen = [n for n in p0 if "lora_" not in n]
    assert all(torch.equal(p0[n], p1[n]) for n in frozen), [n for n in frozen if not torch.equal(p0[n], p1[n])][:3]
    base_p = dict(base.named_parameters())
    for n, p in after.llm.get_base_model().named_parameters():
        if "lora_" not in n:
            assert torch.equal(p, base_p[n.replace(".base_layer", "")]), n

    state = json.loads((tmp_path / "run" / "checkpoint-2" / "trainer_state.json").read_text())
    logged = {k for h in state["log_history"] for k in h}
    assert {"rewards/format_reward/mean", "rewards/emotion_reward/mean"} <= logged
    assert (tmp_path / "run" / "checkpoint-2" / "adapter_model.safetensors").is_file()


def test_prompts_carry_the_response_prefix_and_no_placeholders(tiny_affect_factory):
    affect = tiny_affect_factory()
    rec = make_records(1, modalities=("face", "audio"))[0]  # an SFT record: the answer is dropped
    rec["features"] = {"face": "key-face", "audio": "key-audio"}
    ds = rl_dataset([rec], render=lambda m: text_prompt(affect.tokenizer, m))
    prompt = ds[0]["prompt"]
    assert prompt.endswith("<|im_start|>assistant\n" + RESPONSE_PREFIX)
    assert "<face>" not in prompt and "<audio>" not in prompt and "Evidence:" in prompt
    assert "<answer>" not in prompt
    assert json.loads(ds[0]["gold_aus"]) is None and ds[0]["evidence_aus"] == ["AU4", "AU23"]
    assert json.loads(ds[0]["features"]) == rec["features"]


def test_reward_weights_and_params_come_from_the_recipe():
    funcs, weights = reward_functions({"format": 2.0, "length": {"weight": 0.5, "budget": 3}})
    assert weights == [2.0, 0.5]
    assert [f.__name__ for f in funcs] == ["format_reward", "length_reward"]
    long = "<think>\nObservations: a b c d e f\n</think>"
    assert funcs[1]([long, "one two"], gold_aus=['{"AU12": 3.0}', "null"])[0] < 0  # budget 3 bound
    assert funcs[1]([long, "one two"])[1] == 0.0
