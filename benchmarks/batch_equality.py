"""Do batched explanations equal one-by-one ones on the real default model?

Explains the first ``--n`` seeded GoEmotions dev items three ways: in batches of 8 as shipped
(the rows' shared prompt start run once, ``affectllm.generation.shared_prefix``), in batches of 8 with the
plain left-padded layout (sharing switched off), and one by one; prints how many rationales and
labels of each batched way equal the one-by-one ones. Results go to results/batch_equality.txt.

    python benchmarks/batch_equality.py [--n 32] [--cpu-weights float32]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--cpu-weights", default=None, help="float32 | float16 | int8-head (default: the model's config)")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(2)
    from affectllm.generation import guided
    from affectllm.inference import Explainer
    from affectllm.perception.observations import Observations
    from eval.runner import load_samples

    texts = [s.text for s in load_samples("goemotions", split="dev", limit=200)[0][:args.n]]
    ex = Explainer.from_name(None, max_new_tokens=160, taxonomy="goemotions_ekman", cpu_weights=args.cpu_weights)
    items = lambda: [Observations(text=t) for t in texts]  # noqa: E731
    alone = [ex.explain(o) for o in items()]
    shared = ex.explain(items())
    real = guided.start_shared
    guided.start_shared = lambda m, i, k: real(m, i, k, min_shared=10**9)  # the plain left-padded layout
    try:
        plain = ex.explain(items())
    finally:
        guided.start_shared = real

    def agree(batched):
        pairs = list(zip(batched, alone))
        return (sum(a.to_dict()["rationale"] == b.to_dict()["rationale"] for a, b in pairs),
                sum(a.emotion == b.emotion for a, b in pairs))

    lines = [f"# batched vs one by one ({time.strftime('%Y-%m-%d %H:%M')}), affectllm-mini, LLM weights "
             f"{ex.model.cpu_weights}, first {len(texts)} seeded GoEmotions dev items, max 160 new tokens, batches of 8"]
    for name, res in (("shared prefix (shipped)", shared), ("plain left padding", plain)):
        same_text, same_label = agree(res)
        lines.append(f"{name}: same rationale {same_text}/{len(texts)}, same label {same_label}/{len(texts)}")
    out = "\n".join(lines)
    print(out)
    dest = Path(__file__).resolve().parent / "results" / "batch_equality.txt"
    dest.write_text(out + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
