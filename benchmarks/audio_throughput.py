"""Audio perception time per second of speech on EmoDB clips, one torch thread.

    python benchmarks/audio_throughput.py [--clips 12]   # writes benchmarks/results/audio_throughput.txt

Each stage is timed over the same clips (2.0 s each) after one warm-up clip, and reported as
compute seconds per second of audio (a real-time factor: below 1 is faster than real time):

- decode: file -> 16 kHz mono (affectllm.io)
- prosody: affectllm.perception.prosody.prosody
- encode: Whisper tiny.en encoder features (always a full 30 s window: Whisper's fixed input)
- perceive(language="de"): everything, German known -> whisper-base decodes (2nd encoder)
- perceive(language=None): everything, language detected by whisper-base first
- perceive English path is not measured here (EmoDB is German); it skips the 2nd encoder.

Model loading is excluded (see load_times.py). The load average is printed: other jobs share
these CPUs, so compare runs taken under similar load.

Deliberately not here: GPU timings and batch perception.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=12, help="EmoDB clips to time (spread over speakers)")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    from affectllm.io.files import atomic_write_text
    from affectllm.io import load_audio
    from affectllm.paths import data_root
    from affectllm.perception.audio import AudioPerceiver
    from affectllm.perception.prosody import prosody

    files = sorted((data_root(required=True) / "emodb" / "wav").glob("*.wav"))
    step = max(1, len(files) // args.clips)
    clips = files[::step][: args.clips]
    p = AudioPerceiver()
    t0 = time.perf_counter()
    p.model(p.whisper_name), p.model(p.multilingual_name)
    load_s = time.perf_counter() - t0
    warm = load_audio(clips[0])
    p.perceive(warm), p.perceive(warm, language="de"), prosody(warm)  # warm-up

    stages = {
        "decode": lambda f: load_audio(f),
        "prosody": lambda f, w=None: prosody(w),
        "encode (tiny.en)": lambda f, w=None: p.encode(w),
        'perceive(language="de")': lambda f: p.perceive(f, language="de"),
        "perceive(language=None)": lambda f: p.perceive(f),
    }
    audio_s = sum(len(load_audio(f)) / 16000 for f in clips)
    wavs = {f: load_audio(f) for f in clips}
    lines = [f"# audio perception throughput ({time.strftime('%Y-%m-%d %H:%M')})",
             f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch "
             f"{torch.__version__}, {torch.get_num_threads()} torch thread",
             f"# {len(clips)} EmoDB clips, {audio_s:.1f} s of audio; models loaded in {load_s:.1f} s (excluded)",
             f"# load average at start: {os.getloadavg()[0]:.1f} (other jobs share these CPUs)",
             f"{'stage':<28}{'s per s audio':>14}{'ms per clip':>13}"]
    print("\n".join(lines), flush=True)
    results = {}
    for name, fn in stages.items():
        t = time.perf_counter()
        for f in clips:
            fn(f) if name.startswith(("decode", "perceive")) else fn(f, wavs[f])
        dt = time.perf_counter() - t
        results[name] = dt / audio_s
        row = f"{name:<28}{dt / audio_s:>14.3f}{1000 * dt / len(clips):>13.0f}"
        print(row, flush=True)
        lines.append(row)
    obs = p.perceive(clips[0])
    lines.append(f"# sample: {clips[0].name} -> {obs.language} {obs.transcript!r}; {obs.prosody_summary()}")
    lines.append(f"# headline: perception costs {results['perceive(language=None)']:.2f} s of CPU per second "
                 f"of speech (1 thread, language detected)")
    print("\n".join(lines[-2:]))
    out = ROOT / "benchmarks" / "results" / "audio_throughput.txt"
    atomic_write_text(out, "\n".join(lines) + "\n")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
