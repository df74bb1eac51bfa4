"""A tiny AffectLLM saved to a folder, for tests that load a model by name or path.

``--model DIR`` on the batch job and the app goes through ``affectllm.model.builder.load_model``,
which reads ``DIR/config.json``: its ``llm.name`` points at a tiny base LLM saved beside it, so
loading it needs no real weights. Like the untrained ``base`` model (textual evidence, no LoRA)
it takes the guided path of the Explainer, only with a 2-layer random LLM: fast, answers
well-formed but meaningless.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def save_tiny_model(folder: Path, tokenizer_json: str, seed: int = 0) -> Path:
    """Write ``folder/base`` (tiny LLM + tokenizer) and ``folder/model`` (AffectLLM); returns the latter."""
    import torch
    import transformers

    from affectllm.config import AffectConfig
    from affectllm.model.affect_llm import AffectLLM
    from conftest import _tiny_config, _tokenizer_from_json

    folder = Path(folder)
    tok = _tokenizer_from_json(tokenizer_json)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        llm = transformers.AutoModelForCausalLM.from_config(_tiny_config("llama", tok))
    llm.generation_config.pad_token_id = tok.pad_token_id
    llm.generation_config.eos_token_id = tok.eos_token_id
    base = folder / "base"
    llm.save_pretrained(base)
    tok.save_pretrained(base)
    cfg = AffectConfig.from_dict({
        "llm": {"name": str(base)}, "lora": {"enabled": False}, "seed": seed,
        "encoders": {"face": {"feature_dim": 8, "num_tokens": 2, "evidence": "text"},
                     "audio": {"feature_dim": 12, "num_tokens": 3, "evidence": "text"},
                     "image": {"feature_dim": 16, "num_tokens": 1, "evidence": "text"}}})
    model = AffectLLM.build(cfg, llm=llm.eval(), tokenizer=tok)
    return model.save_pretrained(folder / "model")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, _tiny_tokenizer_json) -> Path:
    """A tiny AffectLLM folder that ``--model DIR`` / ``load_model(DIR)`` loads (import it into a test module)."""
    return save_tiny_model(tmp_path_factory.mktemp("tiny-model"), _tiny_tokenizer_json)
