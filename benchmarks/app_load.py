"""Load test of the chat app's ``/explain`` API: N concurrent clients, latency percentiles.

    python benchmarks/app_load.py                       # starts `python app.py --model base`, 20 clients
    python benchmarks/app_load.py --url http://127.0.0.1:7860/ --requests 20
    python benchmarks/app_load.py --model path/to/saved/model --max-new-tokens 32

Each of ``--requests`` threads opens its own ``gradio_client.Client`` and sends one request at
the same moment (a barrier), cycling through inputs: the shared example photos and EmoDB clips
when ``../shared/data`` is present, and typed sentences. Every answer must be a valid row (no
error, the emotion is the most probable label, probabilities sum to 1). One warm-up request goes
first (model loading, first perception) and is reported apart. The app runs one explanation
call at a time; requests waiting in its queue are explained together (gradio batch, up to
``--api-batch`` 8, one batched LLM pass per question), so latency still grows with queue
position. Results go to ``benchmarks/results/app_load.txt``.

Deliberately not here: perception or model benchmarks (see the other scripts in this folder).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SENTENCES = ["I can't believe they cancelled it, this is so unfair!", "What a wonderful surprise, thank you!",
             "I miss her so much, nothing feels right.", "Please don't leave me alone in the dark."]
FILES = ("faces_demo/happy-baby.jpeg", "faces_demo/angry.jpg", "faces_demo/sad-baby.jpeg",
         "faces_demo/surprised.jpeg", "emodb/wav/03a01Wa.wav", "emodb/wav/03a02Ta.wav")


def inputs() -> list[tuple[str | None, str]]:
    sys.path.insert(0, str(ROOT))
    from affectllm.paths import data_root

    root = data_root()
    files = [(str(root / f), "") for f in FILES if root is not None and (root / f).is_file()]
    return files + [(None, s) for s in SENTENCES]


def start_app(model: str, max_new_tokens: int, api_batch: int) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port), "--model", model,
                             "--max-new-tokens", str(max_new_tokens), "--api-batch", str(api_batch)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    t0 = time.monotonic()
    while time.monotonic() - t0 < 300:
        try:
            if urllib.request.urlopen(url, timeout=5).status == 200:
                return proc, url
        except OSError:
            time.sleep(1)
    proc.kill()
    raise RuntimeError("the app did not come up within 300 s")


def valid(row: dict) -> str | None:
    """None when ``row`` is a valid answer, else why not."""
    if row.get("error"):
        return row["error"]
    probs = row.get("probabilities") or {}
    if not probs or abs(sum(probs.values()) - 1) > 1e-2:
        return f"probabilities do not sum to 1: {probs}"
    if row.get("emotion") != max(probs, key=probs.get):
        return f"emotion {row.get('emotion')} is not the most probable label"
    return None


def one(url: str, file: str | None, text: str) -> tuple[float, dict]:
    from gradio_client import Client, handle_file

    c = Client(url, verbose=False)
    t0 = time.monotonic()
    row = c.predict(handle_file(file) if file else None, text, "", api_name="/explain")
    return time.monotonic() - t0, row


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, math.ceil(q / 100 * len(xs)) - 1))]  # nearest-rank percentile


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default=None, help="a running app (default: start one)")
    p.add_argument("--model", default="base", help="model for the app started here (default base)")
    p.add_argument("--max-new-tokens", type=int, default=None, help="default: the model's own budget")
    p.add_argument("--requests", type=int, default=20)
    p.add_argument("--api-batch", type=int, default=8, help="the app's --api-batch (for an app started here)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "app_load.txt"))
    args = p.parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    proc, url = (None, args.url) if args.url else start_app(args.model, args.max_new_tokens, args.api_batch)
    try:
        items = inputs()
        t0 = time.monotonic()
        warm_s, warm = one(url, *items[0])
        assert valid(warm) is None, valid(warm)
        barrier = threading.Barrier(args.requests)
        results: list = [None] * args.requests

        def worker(i: int) -> None:
            barrier.wait()
            try:
                results[i] = one(url, *items[i % len(items)])
            except Exception as e:  # noqa: BLE001 - counted as a failed request
                results[i] = (float("nan"), {"error": f"{type(e).__name__}: {e}"})

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.requests)]
        t1 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - t1
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
    bad = [(i, valid(r)) for i, (_, r) in enumerate(results) if valid(r) is not None]
    lat = [s for s, r in results if valid(r) is None]
    kinds = sorted({"text" if f is None else Path(f).suffix for f, _ in items})
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    lines = [
        f"app /explain load test, {time.strftime('%Y-%m-%d %H:%M')}",
        f"model: {args.model if not args.url else '(the app at ' + url + ')'}, "
        f"max_new_tokens {args.max_new_tokens}, "
        f"one explain call at a time, queued requests batched (up to {args.api_batch})",
        f"machine: {platform.machine()}, {os.cpu_count()} CPU(s) shared with other jobs, load average {load[0]:.2f}, "
        f"python {platform.python_version()}",
        f"inputs cycled: {len(items)} ({', '.join(kinds)}); observation cache on (files repeat)",
        f"warm-up request: {warm_s:.2f} s (includes model load and first perception)",
        f"{args.requests} concurrent requests: {len(lat)} valid, {len(bad)} failed, wall {wall:.1f} s, "
        f"{len(lat) / wall:.2f} req/s",
    ]
    if lat:
        lines.append(f"latency p50 {statistics.median(lat):.2f} s, p95 {pct(lat, 95):.2f} s, "
                     f"min {min(lat):.2f} s, max {max(lat):.2f} s")
    lines += [f"failed #{i}: {why}" for i, why in bad]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(f"(total {time.monotonic() - t0:.0f} s) -> {args.out}")
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())
