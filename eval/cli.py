"""Evaluate a model against baselines on a labelled source, and score prediction folders.

    affectllm eval run --source emodb --split dev --model base --out runs/eval/emodb-dev
    affectllm eval run --source goemotions --split dev --limit 200 --out runs/eval/goemotions-dev
    affectllm eval run --source faces_demo --drop-modality face --out runs/eval/faces   # + ablation
    affectllm eval score runs/eval/emodb-dev             # re-score (e.g. while a run is going)

``run`` writes DIR/predictions.jsonl (the chosen model), DIR/baselines/*.jsonl, DIR/run.json,
DIR/metrics.json, DIR/report.md and DIR/figures/*.png. Rerunning the same command resumes.
Sources are ``KIND[:PATH]`` specs as for ``affectllm data build``; a source given without
``--split`` is evaluated whole. Baselines: majority, fer, prototype (faces only), base.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from affectllm.model.cpu_packing import CLI_HELP, CPU_WEIGHTS

DEFAULT_BASELINES = "majority,fer,prototype,voice,base"
BASELINE_HELP = ("comma-separated: majority, fer, prototype, voice, base (default: all; face ones only for "
                 "faces, voice only for speech)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="eval_command", metavar="ACTION")
    r = sub.add_parser("run", help="predict with the model and baselines, then score")
    r.add_argument("--source", required=True, metavar="KIND[:PATH]", help="a labelled dataset, e.g. emodb, goemotions")
    r.add_argument("--split", default=None, help="evaluate only this split (train/dev/test); default: the whole source")
    r.add_argument("--model", default=None, metavar="NAME_OR_DIR",
                   help="model to evaluate: affectllm-mini, base, or a trained folder (default: the default model)")
    r.add_argument("--limit", type=int, default=None, metavar="N", help="a deterministic subset of N items")
    r.add_argument("--baselines", default=DEFAULT_BASELINES, help=BASELINE_HELP)
    r.add_argument("--drop-modality", action="append", default=[], choices=("face", "audio", "text"),
                   metavar="MOD", help="also run the model without face|audio|text evidence (repeatable)")
    r.add_argument("--ids", default=None, metavar="FILE",
                   help="keep only the items whose ids are listed in FILE (one a line)")
    r.add_argument("--taxonomy", default=None, help="label set (default: the source's)")
    r.add_argument("--out", required=True, metavar="DIR", help="output folder (rerun = resume)")
    r.add_argument("--seed", type=int, default=0, help="subset seed (default 0)")
    r.add_argument("--batch-size", type=int, default=8, help="items per generate call (default 8)")
    r.add_argument("--max-new-tokens", type=int, default=None,
                   help="rationale length limit (default: the model's, config llm.max_new_tokens)")
    r.add_argument("--cpu-weights", choices=CPU_WEIGHTS, default=None, help=CLI_HELP)
    r.add_argument("--restart", action="store_true", help="discard earlier predictions in DIR and start over")
    r.add_argument("--quiet", action="store_true", help="no progress bars")
    s = sub.add_parser("score", help="(re)write metrics.json, report.md and figures of a run folder")
    s.add_argument("dir", metavar="DIR", help="a folder written by 'eval run' (or holding predictions.jsonl)")
    s.add_argument("--no-figures", action="store_true", help="skip the PNG figures")


def command_line(args) -> str:
    """The canonical ``affectllm eval run`` command of parsed ``args`` (recorded in the report)."""
    parts = ["affectllm", "eval", "run", "--source", args.source]
    for flag, value, default in (("--split", args.split, None), ("--model", args.model, None),
                                 ("--limit", args.limit, None), ("--baselines", args.baselines, DEFAULT_BASELINES),
                                 ("--taxonomy", args.taxonomy, None), ("--seed", args.seed, 0),
                                 ("--batch-size", args.batch_size, 8), ("--max-new-tokens", args.max_new_tokens, None),
                                 ("--cpu-weights", args.cpu_weights, None)):
        if value != default:
            parts += [flag, str(value)]
    for m in args.drop_modality:
        parts += ["--drop-modality", m]
    parts += ["--out", args.out]
    return shlex.join(parts)


def _summary(m: dict) -> str:
    def f(x):
        return "-" if x is None else f"{x:.3f}"

    lines = [f"{m['primary']} ({m.get('model')}): n={m['n']} accuracy {f(m['accuracy'])} UAR {f(m['uar'])} "
             f"macro-F1 {f(m['macro_f1'])} ECE {f(m['ece'])} errors {m['n_errors']}"]
    for name, b in m["baselines"].items():
        lines.append(f"  {name}: accuracy {f(b['accuracy'])} UAR {f(b['uar'])} macro-F1 {f(b['macro_f1'])}")
    return "\n".join(lines)


def run(args) -> int:
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.eval_command not in ("run", "score"):
        print("usage: affectllm eval {run,score} ... (see affectllm eval --help)", file=sys.stderr)
        return 2
    try:
        m = _run(args) if args.eval_command == "run" else _score(args)
    except (ValueError, FileNotFoundError) as e:  # InputError and WeightsNotFound are among these
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = args.out if args.eval_command == "run" else args.dir
    print(_summary(m))
    print(f"-> {out}/metrics.json, {out}/report.md")
    return 0


def _run(args) -> dict:
    from eval.runner import evaluate

    baselines = [b.strip() for b in args.baselines.split(",") if b.strip()]
    return evaluate(args.source, args.out, split=args.split, model=args.model, limit=args.limit,
                    baselines=baselines, drop=args.drop_modality, taxonomy=args.taxonomy, seed=args.seed,
                    restart=args.restart, progress=not args.quiet, command=command_line(args),
                    batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, cpu_weights=args.cpu_weights, ids=args.ids)


def _score(args) -> dict:
    from eval.score import score

    return score(args.dir, figures=not args.no_figures)
