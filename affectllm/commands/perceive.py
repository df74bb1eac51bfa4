"""Run the frozen perception on files and print what it saw: faces with AUs and expression
scores, voice prosody and transcript. Optionally draw landmark overlays and AU charts.

  affectllm perceive photo.jpg clip.wav --json
  affectllm perceive photo.jpg --overlay out/
  affectllm perceive talk.mp4 --frames talk.csv [--fps 10] [--resume] [--timeline talk.png]

``--frames`` writes one row per face per frame (columns: docs/frames.md), streamed with a
progress bar; ``--resume`` continues a killed run from its last complete frame.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", help="image, audio or video files")
    p.add_argument("--json", action="store_true", help="one JSON object per file")
    p.add_argument("--overlay", metavar="DIR", help="write landmark overlay and AU chart PNGs here")
    p.add_argument("--whisper", default="whisper-tiny.en", help="speech encoder for features")
    p.add_argument("--no-cache", action="store_true", help="recompute, ignoring cached observations")
    p.add_argument("--frames", metavar="OUT", help="per-frame face table of one video (.csv or .parquet)")
    p.add_argument("--fps", type=float, help="with --frames: analyse about this many frames a second (default: all)")
    p.add_argument("--max-faces", type=int, default=4, help="with --frames: faces followed at once")
    p.add_argument("--resume", action="store_true", help="with --frames: continue a killed run")
    p.add_argument("--timeline", metavar="PNG", help="with --frames: AU and expression timeline per face")
    p.add_argument("--no-progress", action="store_true", help="with --frames: no progress bar")


def run(args) -> int:
    if args.frames or args.timeline:
        return _frames(args)
    from affectllm.perception.pipeline import Perception

    # gate=False: show what the encoders saw, silent or toneless clips included (flags say so).
    perception = Perception(whisper_name=args.whisper, use_cache=not (args.no_cache or args.overlay), gate=False)
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


def frames_to_table(video: str, out: str, fps: float | None = None, max_faces: int = 4, resume: bool = False,
                    progress: bool = True, face=None) -> tuple[Path, int]:
    """Stream every (sampled) frame of ``video`` into the table ``out``: (path, rows written in all)."""
    import os

    from tqdm import tqdm

    from affectllm.perception.frame_table import FrameTableWriter
    from affectllm.perception.frames import FrameAnalyzer, count_frames

    st = os.stat(video)
    meta = {"video": os.path.abspath(video), "size": st.st_size, "mtime": int(st.st_mtime), "fps": fps,
            "max_faces": max_faces}
    writer = FrameTableWriter(out, meta, resume=resume)
    analyzer = FrameAnalyzer(face=face, max_faces=max_faces, fps=fps)
    total = count_frames(video)
    done = max(0, writer.resume_frame - 1)
    bar = tqdm(total=total, initial=done, unit="frame", disable=not progress, desc=Path(video).name)
    try:
        last = done
        for rows in analyzer.rows(video, start=writer.resume_frame, resume_rows=writer.last_rows,
                                  max_face_id=writer.max_face_id):
            writer.write_frame(rows)
            n = rows[0]["frame"]
            bar.update(n - last)
            last = n
    finally:
        bar.close()
        writer.close()  # a failure leaves the partial for --resume
    return writer.finish(), writer.n_rows


def _frames(args) -> int:
    import torch

    from affectllm.errors import InputError

    if len(args.files) != 1:
        print("error: --frames/--timeline take exactly one video", file=sys.stderr)
        return 2
    torch.set_num_threads(1)  # the FER network is tiny; the second core goes to decode and mesh
    video = args.files[0]
    table = args.frames
    try:
        if table:
            path, n = frames_to_table(video, table, args.fps, args.max_faces, args.resume, not args.no_progress)
            print(f"{path}: {n} rows")
        if args.timeline:
            if not table:
                print("error: --timeline needs --frames (the timeline is drawn from the table)", file=sys.stderr)
                return 2
            from affectllm.perception.timeline import timeline_png

            from affectllm.io.files import atomic_write_bytes

            atomic_write_bytes(args.timeline, timeline_png(table, title=Path(video).name))
            print(f"{args.timeline}: timeline")
    except (InputError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
