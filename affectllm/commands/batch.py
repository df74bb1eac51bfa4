"""Explain many inputs into one JSONL, CSV or Parquet file (one row per input, in input order).

  affectllm batch photos/ 'clips/**/*.wav' --out runs/preds.jsonl
  affectllm batch manifest.csv --out runs/preds.csv          # columns path, text, id
  affectllm batch photos/ --out runs/preds.jsonl --resume    # continue after a crash or kill
  CUDA_VISIBLE_DEVICES= OMP_NUM_THREADS=1 accelerate launch --config_file train/accelerate/multi_cpu.yaml \\
      --num_processes 2 -m affectllm.batch photos/ --out runs/preds.jsonl   # rank i takes items i::N

Inputs are files, folders (recursive), globs or manifests (.csv/.jsonl with path, text, id;
paths relative to the manifest, never outside its folder). A bad item gets a row with its error
and the job goes on; a summary of errors by reason ends the run.
"""

from __future__ import annotations

import argparse
import sys

from affectllm.model.cpu_packing import CLI_HELP, CPU_WEIGHTS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="files, folders, globs or .csv/.jsonl manifests")
    p.add_argument("--out", required=True, metavar="FILE", help="output file (.jsonl, .csv or .parquet)")
    p.add_argument("--format", choices=("jsonl", "csv", "parquet"), default=None,
                   help="output format (default: from the --out suffix, else jsonl)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run into the same --out")
    p.add_argument("--overwrite", action="store_true", help="discard an earlier output and start over")
    p.add_argument("--model", default=None, metavar="NAME_OR_DIR",
                   help="affectllm-mini (default when trained), base, or a folder saved by AffectLLM")
    p.add_argument("--text", default=None, metavar="T", help="words attached to every file without its own text")
    p.add_argument("--question", default=None, help="ask something specific instead of the default question")
    p.add_argument("--encoding", default="utf-8", metavar="ENC",
                   help="text encoding of .csv/.jsonl manifests (default utf-8; e.g. latin-1 for old exports)")
    p.add_argument("--batch-size", type=int, default=8, metavar="N", help="items per LLM batch (default 8)")
    p.add_argument("--max-new-tokens", type=int, default=None, metavar="N",
                   help="rationale length in tokens (default: the model's, config llm.max_new_tokens)")
    p.add_argument("--taxonomy", default=None, help="label set (default: the model's)")
    p.add_argument("--cpu-weights", choices=CPU_WEIGHTS, default=None, help=CLI_HELP)
    p.add_argument("--modalities", default="face,audio", help="perception modalities (default face,audio)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the observation cache")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    import os

    from affectllm.batch.job import dist_env, print_summary, run_batch
    from affectllm.errors import WeightsNotFound

    if args.batch_size < 1 or (args.max_new_tokens is not None and args.max_new_tokens < 1):
        print("error: --batch-size and --max-new-tokens must be at least 1", file=sys.stderr)
        return 2
    rank, world = dist_env()
    if world > 1 and "OMP_NUM_THREADS" not in os.environ:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))  # the ranks share the cores
    try:
        summary = run_batch(args.inputs, args.out, args.format, resume=args.resume, overwrite=args.overwrite,
                            model=args.model, text=args.text, question=args.question,
                            batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                            taxonomy=args.taxonomy, cache=not args.no_cache, progress=not args.quiet,
                            cpu_weights=args.cpu_weights, encoding=args.encoding,
                            modalities=tuple(m.strip() for m in args.modalities.split(",") if m.strip()))
    except (FileExistsError, ValueError, WeightsNotFound) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\nbatch: interrupted; rerun with --resume to continue into {args.out}", file=sys.stderr)
        return 130
    if rank != 0:
        return 0
    print_summary(summary)
    return 1 if summary["n"] and not summary["ok"] else 0
