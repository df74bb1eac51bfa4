"""Shared test setup: offline environment, shared-data location, and tiny random models.

Tiny models follow transformers' own tests: 2 layers, hidden <= 128, a tokenizer built in
process (no files, no hub), and a chat template, so the whole suite runs in minutes on CPU.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

# Tests live in folders mirroring the packages (tests/affectllm/<wing>/, tests/data_engine/, ...)
# and are imported with --import-mode=importlib, so same-named files do not clash and no test
# folder shadows the real data_engine/train/eval packages; the shared helpers (_tiny_model,
# _train_data, data_fakes, ...) stay here and are importable from every folder.
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pytest  # noqa: E402

from affectllm.paths import data_root  # noqa: E402


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder; tests that need it skip with the reason when it is absent."""
    root = data_root()
    if root is None:
        pytest.skip("shared data not found (set AFFECTLLM_DATA to ../shared/data)")
    return root


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Two cores are shared by the test process and helpers it spawns: keep torch to one."""
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_text_expert(tmp_path_factory):
    """A tiny random text expression classifier (tests/_tiny_text.py)."""
    from _tiny_text import build_tiny_base, make

    return make(build_tiny_base(tmp_path_factory.mktemp("tiny_text_bert")))


@pytest.fixture(autouse=True)
def _tiny_text_channel(request, monkeypatch):
    """Fast tests get the tiny text classifier wherever the product loads the shipped one
    (``perception.text_expression.shipped``); tests marked slow run the real asset."""
    if request.node.get_closest_marker("slow"):
        return
    import affectllm.perception.text_expression as te

    expert = request.getfixturevalue("tiny_text_expert")
    monkeypatch.setattr(te, "shipped", lambda: expert)


# -- tiny random LLMs (model helper) ---------------------------------------------------------
# A byte-level BPE trained in process on a small corpus: lossless for any text (so parsing and
# reward tests can round-trip real answers), with ChatML special tokens and a chat template.
TINY_WORDS = (
    "think answer anger disgust fear happiness sadness surprise neutral contempt joy happy sad angry "
    "afraid surprised disgusted calm face voice image scene photo frame audio the a an is are and or of "
    "with in on to because evidence emotion person looks speaker says sounds pitch energy rate high low "
    "loud quiet fast slow smile frown brow raised lowered lip corner puller cheek raiser jaw drop eyes "
    "present absent intensity trace slight marked severe maximum confidence score transcript "
    + " ".join(f"AU{i}" for i in (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 24, 25, 26, 28, 43))
    + " 0 1 2 3 4 5 6 7 8 9 10 0.5 . , : ; ! ? ( ) - \" ' A B C D E"
)
TINY_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"]
TINY_ADDED = ["<think>", "</think>", "<answer>", "</answer>"]  # plain added tokens: decode keeps them
TINY_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] "
    "+ '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@pytest.fixture(scope="session")
def _tiny_tokenizer_json() -> str:
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

    words = TINY_WORDS.split()
    corpus = [" ".join(words)] * 10 + [" ".join(reversed(words))] * 10
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=480, special_tokens=TINY_SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer)
    tok.add_tokens([AddedToken(t, normalized=False, special=False) for t in TINY_ADDED])
    return tok.to_str()


def _tokenizer_from_json(js: str):
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(js), bos_token="<|im_start|>",
                                  eos_token="<|im_end|>", pad_token="<|pad|>", padding_side="right")
    tok.chat_template = TINY_CHAT_TEMPLATE
    return tok


@pytest.fixture
def tiny_tokenizer(_tiny_tokenizer_json):
    """A fresh ``PreTrainedTokenizerFast`` (ChatML, pad != eos, right padding) for each test."""
    return _tokenizer_from_json(_tiny_tokenizer_json)


def _tiny_config(arch: str, tokenizer, **overrides):
    import transformers

    common = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                  tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
                  bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    common.update(overrides)
    if arch == "llama":
        return transformers.LlamaConfig(**common)
    if arch == "qwen2":
        return transformers.Qwen2Config(**common)
    raise ValueError(f"unknown tiny arch {arch!r}")


@pytest.fixture
def tiny_llm_factory(_tiny_tokenizer_json):
    """``make(arch="llama"|"qwen2", seed=0, **config_overrides) -> (model, tokenizer)``.

    Same seed, same weights: call it twice for an untouched copy of the base model (peft
    wraps models in place). Each call gets its own tokenizer (AffectLLM adds tokens to it).
    """
    import torch
    import transformers

    def make(arch: str = "llama", seed: int = 0, **overrides):
        tok = _tokenizer_from_json(_tiny_tokenizer_json)
        cfg = _tiny_config(arch, tok, **overrides)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = transformers.AutoModelForCausalLM.from_config(cfg)
        model.generation_config.pad_token_id = tok.pad_token_id
        model.generation_config.eos_token_id = tok.eos_token_id
        return model.eval(), tok

    return make


@pytest.fixture
def tiny_llama(tiny_llm_factory):
    """(LlamaForCausalLM, tokenizer): 2 layers, hidden 64, vocab ~480, random weights."""
    return tiny_llm_factory("llama")


@pytest.fixture
def tiny_qwen2(tiny_llm_factory):
    """(Qwen2ForCausalLM, tokenizer): 2 layers, hidden 64, vocab ~480, random weights."""
    return tiny_llm_factory("qwen2")


@pytest.fixture
def tiny_affect_factory(tiny_llm_factory):
    """``make(arch="llama", seed=0, **config_overrides) -> AffectLLM`` on a tiny random LLM.

    Overrides are ``AffectConfig.from_dict`` keys, e.g. ``encoders={"face": {"num_tokens": 2}}``.
    Feature dims default small (face 8, audio 12, image 16) so tests stay fast.
    """
    from affectllm.config import AffectConfig
    from affectllm.model.affect_llm import AffectLLM

    def make(arch: str = "llama", seed: int = 0, **overrides):
        d = {"encoders": {"face": {"feature_dim": 8, "num_tokens": 2},
                          "audio": {"feature_dim": 12, "num_tokens": 3},
                          "image": {"feature_dim": 16, "num_tokens": 1, "projector": "mlp2x_gelu"}},
             "lora": {"r": 4, "alpha": 8, "dropout": 0.0}, "seed": seed}
        for k, v in overrides.items():
            if isinstance(v, dict) and isinstance(d.get(k), dict):
                for kk, vv in v.items():
                    if isinstance(vv, dict) and isinstance(d[k].get(kk), dict):
                        d[k][kk] = {**d[k][kk], **vv}
                    else:
                        d[k][kk] = vv
            else:
                d[k] = v
        llm, tok = tiny_llm_factory(arch, seed=seed)
        return AffectLLM.build(AffectConfig.from_dict(d), llm=llm, tokenizer=tok)

    return make
