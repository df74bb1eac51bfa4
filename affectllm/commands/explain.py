"""Explain the emotion in one or more inputs (image, audio, video or text file), with the
reasoning and the evidence it rests on.

  affectllm explain photo.jpg                      # a face
  affectllm explain clip.wav --json                # a voice, one JSON object per input
  affectllm explain --text "I can't believe it!"   # words only
  affectllm explain video.mp4 --question "why not anger?"
"""

from __future__ import annotations

import argparse
import json
import sys

from affectllm.model.cpu_packing import CLI_HELP, CPU_WEIGHTS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="*", help="input files (kind detected from content)")
    p.add_argument("--text", help="words to explain (alone, or attached to each file)")
    p.add_argument("--model", default=None,
                   help="affectllm-mini (default when trained), base, a saved folder, or an LLM name/path")
    p.add_argument("--question", default=None, help="ask something specific instead of the default question")
    p.add_argument("--taxonomy", default=None, help="label set: ekman7 (default), emodb7, goemotions28, ...")
    p.add_argument("--max-new-tokens", type=int, default=None,
                   help="rationale length in tokens (default: the model's, config llm.max_new_tokens)")
    p.add_argument("--cpu-weights", choices=CPU_WEIGHTS, default=None, help=CLI_HELP)
    p.add_argument("--json", action="store_true", help="one JSON object per input on stdout")
    p.add_argument("--stream", action="store_true", help="print the rationale as it is written (one input)")


def _print_human(d: dict) -> None:
    print(f"== {d['id']}")
    if d["error"]:
        print(f"error: {d['error']}")
        return
    top = sorted(d["probabilities"].items(), key=lambda kv: -kv[1])[:3]
    print(f"emotion: {d['emotion']}   ({', '.join(f'{k} {v:.2f}' for k, v in top)})")
    print(d["rationale"])
    print(f"evidence AUs: {', '.join(d['evidence_aus']) or 'none'}; cited: {', '.join(d['cited_aus']) or 'none'}")
    for w in d["warnings"]:
        print(f"warning: {w}")


def run(args) -> int:
    from affectllm.inference import Explainer
    from affectllm.io.item import Item, to_item

    if not args.files and not args.text:
        print("affectllm explain: give at least one file or --text", file=sys.stderr)
        return 2
    explainer = Explainer.from_name(args.model, taxonomy=args.taxonomy, max_new_tokens=args.max_new_tokens,
                                    cpu_weights=args.cpu_weights)
    inputs = []
    for f in args.files:
        try:
            inputs.append(Item.from_path(f, text=args.text))
        except Exception as e:  # noqa: BLE001 - a bad file becomes that item's error, the others go on
            inputs.append({"id": f, "text": None, "meta": {"error": str(e)}})
    if not args.files:
        inputs.append(to_item(None, text=args.text))
    if args.stream and len(inputs) == 1:
        result = None
        for piece in explainer.explain(inputs[0], question=args.question, stream=True):
            if isinstance(piece, str):
                print(piece, end="", flush=True)
            else:
                result = piece
        print()
        results = [result]
    else:
        ready = [x for x in inputs if not isinstance(x, dict)]
        done = iter(explainer.explain(ready, question=args.question)) if ready else iter(())
        results = []
        for x in inputs:
            if isinstance(x, dict):
                from affectllm.inference import ExplainResult

                results.append(ExplainResult(x["id"], None, None, error=x["meta"]["error"]))
            else:
                results.append(next(done))
    failed = 0
    for r in results:
        d = r.to_dict()
        failed += bool(d["error"])
        if args.json:
            print(json.dumps(d, ensure_ascii=False))
        elif not args.stream:
            _print_human(d)
    return 1 if failed == len(results) else 0
