"""Files, safely: atomic file and directory writes, content hashing, and path joins that stay inside a root.

Every output affectllm writes goes through here so that a crash (or kill -9) never leaves a
half-written file or cache folder that a later run would trust; every path read from an
untrusted manifest goes through :func:`safe_join`. Deliberately not here: JSON Lines
(``affectllm.io.jsonl``) or decoding media (``affectllm.io.audio``, ``image``, ``text``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Iterator

from affectllm.errors import InputError


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temp file in the same folder, fsync, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs should read like any file
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj, indent: int | None = 2) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike) -> Iterator[Path]:
    """Build a directory in a temp sibling and rename it to ``final`` only on success.

    A ``COMPLETE`` marker is written last, so readers can also check :func:`is_complete`.
    If ``final`` appeared meanwhile (another process won the race), the new copy is discarded.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp"))
    try:
        yield tmp
        (tmp / "COMPLETE").write_text("ok\n")
        try:
            os.replace(tmp, final)
        except OSError:
            if is_complete(final):
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                shutil.rmtree(final, ignore_errors=True)
                os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def is_complete(folder: str | os.PathLike) -> bool:
    """True when ``folder`` was finished by :func:`atomic_dir`."""
    return (Path(folder) / "COMPLETE").is_file()

def safe_join(root: str | os.PathLike, rel: str) -> Path:
    """``root / rel`` resolved, refusing anything that would leave ``root``.

    Raises :class:`InputError` for an empty or absolute path (POSIX, Windows drive, ``~``, URL),
    and for one that resolves outside ``root`` through ``..`` or a symlink. Annotation files are
    untrusted input: a manifest must not make us read (or later copy) ``/etc/passwd``.
    """
    rel = str(rel).strip()
    if not rel:
        raise InputError(rel, "empty path")
    if "\x00" in rel:
        raise InputError(rel, "path contains a NUL byte")
    if "://" in rel:
        raise InputError(rel, "a URL, not a path inside the dataset root")
    norm = rel.replace("\\", "/")  # a Windows-written manifest: treat backslash as separator
    if (PurePosixPath(norm).is_absolute() or PureWindowsPath(rel).drive
            or PureWindowsPath(rel).is_absolute() or norm.startswith("~")):
        raise InputError(rel, "absolute path; paths must be relative to the dataset root")
    root_r = Path(root).resolve()
    resolved = (root_r / norm).resolve()
    if resolved != root_r and not resolved.is_relative_to(root_r):
        how = "'..' leads" if ".." in PurePosixPath(norm).parts else "a symlink points"
        raise InputError(rel, f"{how} outside the dataset root {root_r}")
    return resolved


def replace_in_strings(obj, pairs: list[tuple[str, str]]):
    """``obj`` (a string or JSON-like dicts/lists) with each ``old`` replaced by ``new`` inside every
    string; other values pass through. Used to take paths out of cached and shown results."""
    if isinstance(obj, str):
        for old, new in pairs:
            obj = obj.replace(old, new)
        return obj
    if isinstance(obj, dict):
        return {k: replace_in_strings(v, pairs) for k, v in obj.items()}
    if isinstance(obj, list):
        return [replace_in_strings(v, pairs) for v in obj]
    return obj
