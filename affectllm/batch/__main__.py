"""``python -m affectllm.batch``: the batch job with the CLI's arguments (what ``accelerate launch -m`` runs).

An entry point above the library: it takes its arguments from ``affectllm.commands.batch`` (the
same ones as ``affectllm batch``), so ``affectllm.batch.job`` never imports the command that
imports it. Deliberately holds no batch logic.
"""

from __future__ import annotations

import argparse
import os
import sys

from affectllm.commands import batch as cmd


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    p = argparse.ArgumentParser(prog="python -m affectllm.batch", description=cmd.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    cmd.add_arguments(p)
    return cmd.run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
