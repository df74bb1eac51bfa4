"""A tiny random text expression classifier (2-layer hidden-32 BERT, in-process WordPiece vocab)
for tests: the text channel's stand-in wherever the real MiniLM asset is not under test."""

from __future__ import annotations

import torch

from affectllm.knowledge.taxonomy import EKMAN7
from affectllm.perception.text_expression import TextExpression, load_encoder

WORDS = ("i love you so much thank this is disgusting want to throw up the dog ran away and we are "
         "scared angry sad happy wow what a day never again don't , ! ? . '").split()


def build_tiny_base(folder):
    """A folder like the weight package's: a 2-layer hidden-32 BERT and an in-process WordPiece vocab."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *dict.fromkeys(WORDS), *"abcdefghijklmnopqrstuvwxyz"]
    vocab += ["##" + c for c in "abcdefghijklmnopqrstuvwxyz"]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128)
    BertModel(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def make(base, adapter: bool = False, seed: int = 1) -> TextExpression:
    tok, enc = load_encoder(base)
    g = torch.Generator().manual_seed(seed)
    labels = list(EKMAN7.labels)
    # Unit-scale weights: logits of a few units, so probabilities are not saturated and words move them.
    w, b = torch.randn(len(labels), 32, generator=g), torch.randn(len(labels), generator=g)
    lora = {}
    if adapter:
        for layer in (0, 1):
            name = f"encoder.layer.{layer}.attention.self.query"
            lora[name + ".lora_A"] = torch.randn(4, 32, generator=g)
            lora[name + ".lora_B"] = torch.randn(32, 4, generator=g)
    te = TextExpression(tok, enc, labels, w, b, max_length=32, adapter={},
                        config={"candidate": "test", "lora": {"scaling": 0.5}})
    if adapter:  # build through save/load, the only path that merges an adapter
        te.adapter = lora
    return te


