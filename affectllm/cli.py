"""The ``affectllm`` console script: a thin dispatcher over subcommand modules named by string.

Each subcommand lives in its own module with ``add_arguments(parser)`` and ``run(args) -> int``:
the library's own in ``affectllm.commands``; ``data``, ``train`` and ``eval`` in the tools above
the library (``data_engine.cli``, ``train.cli``, ``eval.cli``), named here only by module string so
the core never imports them (the way litgpt's ``__main__`` maps subcommands by table).
Those modules import nothing heavy at top level, so ``affectllm <cmd> --help`` stays instant;
the work (torch, mediapipe, transformers) is imported inside ``run``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# name -> (module, one-line help). Order is the order shown in --help.
COMMANDS: dict[str, tuple[str, str]] = {
    "doctor": ("affectllm.commands.doctor", "check the offline default stack and say how to fix it"),
    "demo": ("affectllm.commands.demo", "run the main job on the offline default model"),
    "perceive": ("affectllm.commands.perceive", "show what the frozen encoders see in files (AUs, prosody, transcript)"),
    "explain": ("affectllm.commands.explain", "explain the emotion in files or text, with reasoning and evidence"),
    "train": ("train.cli", "LoRA SFT and GRPO training of the adapters (trl)"),
    "data": ("data_engine.cli", "build and verify AU-grounded chain-of-thought training data"),
    "batch": ("affectllm.commands.batch", "explain many inputs into JSONL/CSV/Parquet"),
    "eval": ("eval.cli", "evaluate a model against baselines on a labelled source; score runs"),
}


def build_parser() -> argparse.ArgumentParser:
    from affectllm import __version__

    parser = argparse.ArgumentParser(
        prog="affectllm",
        description="Explainable multimodal emotion reasoning: face AUs, voice and words, offline.")
    parser.add_argument("--version", action="version", version=f"affectllm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in COMMANDS.items():
        mod = importlib.import_module(module)
        p = sub.add_parser(name, help=help_, description=(mod.__doc__ or help_).strip(),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_module", None):
        parser.print_help()
        return 2
    return int(importlib.import_module(args._module).run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
