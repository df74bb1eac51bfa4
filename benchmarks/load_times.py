"""Cold and warm load times of each default offline component.

    python benchmarks/load_times.py            # writes benchmarks/results/load_times.txt

Every measurement runs in a fresh Python process (so nothing is shared through module state),
with one torch thread. "cold" uses a brand-new temporary AFFECTLLM_HOME, so it includes the
one-time conversion (GGUF / CTranslate2 / Keras hdf5 -> safetensors) and hashing; "warm" is the
next process with that cache in place; "reload" is a second load in that same process. Import
time of the libraries is reported apart, because a long-running app pays it once, not per model.

Deliberately not here: inference speed (see the perception and model benchmarks).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import torch
torch.set_num_threads(1)
import affectllm.weights as w
{imports}
t1 = time.perf_counter()
w.load({name!r})
t2 = time.perf_counter()
w.load({name!r})
t3 = time.perf_counter()
print(json.dumps({{"import_s": t1 - t0, "load_s": t2 - t1, "reload_s": t3 - t2}}))
"""
# What each loader imports before the timed call, so library import time (paid once per
# process, whatever is loaded) is not counted as loading.
IMPORTS = {"llm": "import transformers.models.llama.modeling_llama, "
                  "transformers.tokenization_utils_tokenizers, safetensors.torch",
           "whisper": "import whisper, safetensors.torch", "fer": "import h5py, safetensors.torch",
           "efficientnet": "import affectllm.weights.efficientnet"}


def measure(name: str, home: str) -> dict:
    from affectllm.weights import resolve

    env = dict(os.environ, AFFECTLLM_HOME=home, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
    code = CHILD.format(name=name, imports=IMPORTS[resolve(name)])
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{name}: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    from affectllm.io.files import atomic_write_text
    from affectllm.weights import COMPONENTS

    import torch

    lines = [f"# affectllm.weights load times ({time.strftime('%Y-%m-%d %H:%M')})",
             f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
             f"python {platform.python_version()}, torch {torch.__version__}, 1 torch thread",
             "# fresh process per run; cold = empty AFFECTLLM_HOME (includes conversion)",
             f"# load average at start: {os.getloadavg()[0]:.1f} (other jobs share these CPUs)",
             f"{'component':<24}{'cold s':>9}{'warm s':>9}{'reload s':>10}{'imports s':>11}"]
    print("\n".join(lines), flush=True)
    with tempfile.TemporaryDirectory(prefix="affectllm-bench-") as home:
        for c in COMPONENTS:
            cold = measure(c.name, home)
            warm = measure(c.name, home)
            row = (f"{c.name:<24}{cold['load_s']:>9.2f}{warm['load_s']:>9.2f}"
                   f"{warm['reload_s']:>10.2f}{warm['import_s']:>11.2f}")
            print(row, flush=True)
            lines.append(row)
    out = ROOT / "benchmarks" / "results" / "load_times.txt"
    atomic_write_text(out, "\n".join(lines) + "\n")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
