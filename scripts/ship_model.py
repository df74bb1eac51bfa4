"""Copy a trained AffectLLM folder into the package as a shipped model, weights in float16.

    python scripts/ship_model.py runs/sft_mini/final affectllm/assets/affectllm-mini --untrained face

``--untrained M`` (repeatable) marks a modality the training data never contained: its projector
(which never received a gradient) is dropped, its evidence goes in as text only, and inference
uses evidence-anchored decoding for items with that evidence (``prompting.guided_modalities``).
``--text-only M`` drops the projector and keeps the evidence as text, but leaves decoding free: for
a modality trained on textual evidence only (affectllm-mini's synthetic faces have no embeddings).
``--max-new-tokens N`` sets the model's own rationale budget (config ``llm.max_new_tokens``): long
enough for the rationales it was trained on, so they are not cut. ``--template-modalities M``
(repeatable) sets ``prompting.template_modalities``: items with only that evidence get the verified
template without drafts, for a model whose drafts for them rarely pass the verifier (measure first).

float16 halves the committed size (LoRA + projectors: ~47 MB -> ~23 MB); loading casts back to
the model's float32 parameters. The script reloads the shipped copy and checks that its logits
match the source's on a probe prompt (max abs difference printed; fails above 0.05).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def to_half(path: Path) -> None:
    state = load_file(str(path))
    save_file({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, str(path),
              metadata={"format": "pt"})


def mark_untrained(folder: Path, modalities: list[str], guided_too: bool = True) -> None:
    import json

    cfg_path = folder / "config.json"
    cfg = json.loads(cfg_path.read_text())
    for m in modalities:
        cfg["encoders"][m]["evidence"] = "text"
        guided = cfg["prompting"].setdefault("guided_modalities", [])
        if guided_too and m not in guided:
            guided.append(m)
    cfg_path.write_text(json.dumps(cfg, indent=2) + "\n")
    proj = folder / "projectors.safetensors"
    state = load_file(str(proj))
    save_file({k: v for k, v in state.items() if k.split(".")[0] not in modalities}, str(proj),
              metadata={"format": "pt"})


def set_config(folder: Path, max_new_tokens: int | None, template_modalities: list[str]) -> None:
    """The model's own rationale budget (config ``llm.max_new_tokens``, used when a caller names none)
    and the modalities it leaves to the template (``prompting.template_modalities``)."""
    import json

    cfg_path = folder / "config.json"
    cfg = json.loads(cfg_path.read_text())
    if max_new_tokens:
        cfg["llm"]["max_new_tokens"] = int(max_new_tokens)
    cfg["prompting"]["template_modalities"] = list(template_modalities)
    cfg_path.write_text(json.dumps(cfg, indent=2) + "\n")


def main(src: str, dst: str, untrained: list[str], text_only: list[str] = (), max_new_tokens: int | None = None,
         template_modalities: list[str] = ()) -> int:
    from affectllm.model.affect_llm import AffectLLM

    src_p, dst_p = Path(src), Path(dst)
    if dst_p.exists():
        shutil.rmtree(dst_p)
    shutil.copytree(src_p, dst_p)
    for f in dst_p.rglob("*.safetensors"):
        to_half(f)
    if untrained:
        mark_untrained(dst_p, untrained)
    if text_only:
        mark_untrained(dst_p, list(text_only), guided_too=False)
    set_config(dst_p, max_new_tokens, list(template_modalities))
    cfg = dst_p / "adapter" / "adapter_config.json"
    if cfg.is_file():  # the training machine's cache path means nothing elsewhere
        import json

        d = json.loads(cfg.read_text())
        d["base_model_name_or_path"] = "HuggingFaceTB/SmolLM2-135M-Instruct"
        cfg.write_text(json.dumps(d, indent=2) + "\n")
    a = AffectLLM.from_pretrained(src_p).eval()
    b = AffectLLM.from_pretrained(dst_p, llm=None).eval()
    tok = a.tokenizer
    ids = tok("<think>\nObservations:\n- Voice, pitch: high, variable pitch", return_tensors="pt")
    feats = {"audio": torch.randn(1, 50, a.config.encoders["audio"].feature_dim)}  # audio is trained
    text = a.expand_placeholders("<audio> Evidence: loud, fast voice.")
    ids = tok(text, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        la = a(ids["input_ids"], ids["attention_mask"], features=feats).logits
        lb = b(ids["input_ids"], ids["attention_mask"], features=feats).logits
    diff = float((la - lb).abs().max())
    size = sum(f.stat().st_size for f in dst_p.rglob("*") if f.is_file()) / 1e6
    print(f"shipped {dst_p} ({size:.1f} MB); max |logit difference| vs float32 source: {diff:.4f}")
    return 0 if diff < 0.05 else 1


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--untrained", action="append", default=[], choices=["face", "audio", "image"])
    ap.add_argument("--text-only", action="append", default=[], choices=["face", "audio", "image"])
    ap.add_argument("--max-new-tokens", type=int, default=None, help="the model's rationale budget (config)")
    ap.add_argument("--template-modalities", action="append", default=[], choices=["face", "audio", "text"])
    a = ap.parse_args()
    sys.exit(main(a.src, a.dst, a.untrained, a.text_only, a.max_new_tokens, a.template_modalities))
