"""Run the frozen perception on files and print what it saw: faces with AUs and expression
scores, voice prosody and transcript. Optionally draw landmark overlays and AU charts.

  affectllm perceive photo.jpg clip.wav --json
  affectllm perceive photo.jpg --overlay out/
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", help="image, audio or video files")
    p.add_argument("--json", action="store_true", help="one JSON object per file")
    p.add_argument("--overlay", metavar="DIR", help="write landmark overlay and AU chart PNGs here")
    p.add_argument("--whisper", default="whisper-tiny.en", help="speech encoder for features")
    p.add_argument("--no-cache", action="store_true", help="recompute, ignoring cached observations")


def run(args) -> int:
    from affectllm.perception.pipeline import Perception

    perception = Perception(whisper_name=args.whisper, use_cache=not (args.no_cache or args.overlay))
    failed = 0
    for f in args.files:
        obs = perception.perceive(f)
        d = obs.to_dict()
        d["file"] = f
        failed += bool(obs.errors) and not (obs.faces or obs.audio)
        if args.overlay and obs.faces:
            _draw(f, obs, Path(args.overlay))
        if args.json:
            print(json.dumps(d, ensure_ascii=False))
        else:
            print(f"== {f}")
            print(obs.to_text())
            for e in obs.errors:
                print(f"error: {e}")
    return 1 if failed == len(args.files) else 0


def _draw(path: str, obs, out: Path) -> None:
    from affectllm.io.files import atomic_write_bytes
    from affectllm.io import load_image
    from affectllm.perception import render

    out.mkdir(parents=True, exist_ok=True)
    stem = Path(path).stem
    try:
        rgb = load_image(path)
    except Exception:  # noqa: BLE001 - a video has no still to draw on; the chart still helps
        rgb = None
    if rgb is not None:
        atomic_write_bytes(out / f"{stem}_landmarks.png", render.overlay_png(rgb, obs.faces))
    atomic_write_bytes(out / f"{stem}_aus.png", render.au_chart_png(obs.faces[0]))
