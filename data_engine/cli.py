"""Build training data: AU-grounded chain-of-thought records from labelled datasets.

    affectllm data build --source emodb --source faces_london --out runs/data --limit 50
    affectllm data build --source manifest:my/data.csv --out runs/mine          # rerun = resume
    affectllm data verify runs/data/sft.jsonl                                   # re-check records

Sources are ``KIND[:PATH]`` specs (``affectllm data sources`` lists the kinds). An interrupted build
resumes where it stopped when rerun with the same arguments; ``--restart`` starts over. Optional
teacher rewrite through an OpenAI-compatible endpoint (``--teacher-url URL --teacher-model NAME
[--teacher-key-env VAR]``) or a local model (``--teacher-model NAME`` alone).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="data_command", metavar="ACTION")
    b = sub.add_parser("build", help="build sft.jsonl, rl.jsonl, report and datasets folders")
    b.add_argument("--source", action="append", required=True, metavar="KIND[:PATH]",
                   help="a dataset (repeatable), e.g. emodb, goemotions, manifest:data.csv")
    b.add_argument("--out", required=True, metavar="DIR", help="output folder (resumable)")
    b.add_argument("--limit", type=int, default=None, metavar="N", help="at most N items per source")
    b.add_argument("--seed", type=int, default=0, help="template and split seed (default 0)")
    b.add_argument("--taxonomy", default=None, help="force one taxonomy (default: per source)")
    b.add_argument("--restart", action="store_true", help="discard earlier output in DIR and start over")
    b.add_argument("--retry-failed", action="store_true",
                   help="try again the items an earlier run rejected at perception")
    b.add_argument("--no-hf", action="store_true", help="skip the Hugging Face datasets folders")
    b.add_argument("--modalities", default="face,audio", help="perception modalities (default face,audio)")
    b.add_argument("--whisper", default=None, metavar="NAME", help="speech model (e.g. whisper-base for German)")
    b.add_argument("--teacher-url", default=None, help="OpenAI-compatible base URL of a teacher model")
    b.add_argument("--teacher-model", default=None, help="teacher model name (local when no --teacher-url)")
    b.add_argument("--teacher-key-env", default=None, metavar="VAR", help="environment variable with the API key")
    b.add_argument("--teacher-tries", type=int, default=3, metavar="K", help="attempts per item (default 3)")
    b.add_argument("--voice-scores", default=None, metavar="JSON",
                   help="sample id -> voice classifier scores to use instead of the classifier's own "
                        "(its out-of-fold scores on the clips it was fitted on)")
    b.add_argument("--no-transcribe", action="store_true",
                   help="no speech recognition (prosody and Whisper features only); for sets whose words "
                        "carry no emotion, e.g. EmoDB")
    b.add_argument("--quiet", action="store_true", help="no progress bars")
    b.add_argument("--decided", action="store_true",
                   help="records argue for the channel experts' calibrated decision, which the prompt carries "
                        "(as inference does), not for the gold label")
    b.add_argument("--ids", default=None, metavar="FILE",
                   help="only these sample ids: one per line, or JSONL rows with an 'id' (e.g. runs/decision/*.jsonl)")
    b.add_argument("--no-text-classifier", action="store_true", help="leave texts unscored by the text classifier")
    v = sub.add_parser("verify", help="re-verify the records of an sft.jsonl against their stored evidence")
    v.add_argument("file", help="an sft.jsonl written by 'data build'")
    sub.add_parser("sources", help="list the dataset kinds --source accepts")


def _teacher(args):
    if not args.teacher_model:
        return None
    from data_engine.teacher import HTTPGenerator, Rewriter, TransformersGenerator

    gen = (HTTPGenerator(args.teacher_url, args.teacher_model, args.teacher_key_env) if args.teacher_url
           else TransformersGenerator(args.teacher_model))
    return Rewriter(gen, k=args.teacher_tries)


def _build(args) -> int:
    from data_engine.build import build, default_perceive

    opts = {"modalities": tuple(m.strip() for m in args.modalities.split(",") if m.strip())}
    if args.whisper:
        opts["whisper_name"] = args.whisper
    if args.no_transcribe:
        opts["transcribe"] = False
    if args.voice_scores:
        opts["voice_scores"] = json.loads(Path(args.voice_scores).read_text())
    if args.no_text_classifier:
        opts["text_classifier"] = False
    rep = build(args.source, args.out, perceive=default_perceive(**opts), limit_per_source=args.limit,
                seed=args.seed, taxonomy=args.taxonomy, teacher=_teacher(args), hf=not args.no_hf,
                restart=args.restart, progress=not args.quiet, retry_failed=args.retry_failed,
                decided=args.decided, ids=_read_ids(args.ids) if args.ids else None)
    print(f"{rep['records']} record(s) kept, {rep['rejected']} rejected -> {args.out}/sft.jsonl, rl.jsonl; "
          f"report: {args.out}/report.md")
    for k, n in list(rep["rejections"]["by_category"].items())[:5]:
        print(f"  rejected {n} x {k}")
    return 0


def _read_ids(path: str) -> set[str]:
    """Sample ids from a file: one per line, or JSONL rows with an ``id``."""
    ids = set()
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("{"):
            try:
                ids.add(str(json.loads(line)["id"]))
            except (ValueError, KeyError) as e:
                raise ValueError(f"{path}:{n}: not a JSON row with an 'id' ({type(e).__name__})") from e
        else:
            ids.add(line)
    if not ids:
        raise ValueError(f"{path}: no ids")
    return ids


def _verify(args) -> int:
    from affectllm.io import jsonl
    from data_engine.verify import verify

    bad = n = 0
    for rec in jsonl.read(args.file):
        n += 1
        reasons = verify(rec)
        if reasons:
            bad += 1
            print(json.dumps({"id": rec.get("id"), "reasons": reasons}, ensure_ascii=False))
    print(f"{n - bad}/{n} record(s) pass", file=sys.stderr)
    return 1 if bad else 0


def run(args) -> int:
    from affectllm.errors import InputError

    try:
        if args.data_command == "build":
            return _build(args)
        if args.data_command == "verify":
            return _verify(args)
        if args.data_command == "sources":
            from data_engine.sources import list_sources

            for kind, doc in list_sources().items():
                print(f"{kind:14s} {doc}")
            return 0
    except (InputError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("usage: affectllm data {build,verify,sources} ... (see --help)", file=sys.stderr)
    return 2
