"""Feature cache: encode each file once, reuse it in data building, training and eval.

Keys are ``{sha256 of the file's bytes}-{encoder name}-{encoder version}``, so an edited file or
a changed encoder never reads stale features. Entries are safetensors files written atomically;
a corrupt entry (truncated, unreadable) is detected on load, deleted and reported as a miss so
the caller recomputes it.

Deliberately not here: what the tensors mean (the perceivers decide) or any eviction policy.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from affectllm.io.files import atomic_write_bytes, sha256_file
from affectllm.paths import cache_dir

log = logging.getLogger(__name__)


def cache_key(path: str | os.PathLike, encoder: str, version: str = "1") -> str:
    """Content-addressed key for one file under one encoder."""
    safe = "".join(c if c.isalnum() or c in "._" else "_" for c in f"{encoder}-{version}")
    return f"{sha256_file(path)}-{safe}"


class FeatureCache:
    """A folder of ``{key}.safetensors`` files (tensors by name, JSON metadata alongside)."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root else cache_dir("features")
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.safetensors"

    def load(self, key: str) -> tuple[dict[str, torch.Tensor], dict] | None:
        """``(tensors, metadata)`` or None when absent or corrupt (a corrupt entry is removed)."""
        p = self.path(key)
        if not p.is_file():
            return None
        try:
            data = p.read_bytes()
            tensors = st_load(data)
            meta_raw = _metadata(data).get("affectllm", "{}")
            return tensors, json.loads(meta_raw)
        except Exception as e:  # noqa: BLE001 - any decoding failure means: recompute
            log.warning("feature cache entry %s is corrupt (%s); recomputing", p.name, e)
            p.unlink(missing_ok=True)
            return None

    def save(self, key: str, tensors: dict[str, torch.Tensor], meta: dict | None = None) -> Path:
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
        blob = st_save(tensors, metadata={"affectllm": json.dumps(meta or {})})
        return atomic_write_bytes(self.path(key), blob)

    def __contains__(self, key: str) -> bool:
        return self.load(key) is not None


def _metadata(blob: bytes) -> dict:
    """The ``__metadata__`` block of a safetensors byte string."""
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + n])
    return header.get("__metadata__", {}) or {}
