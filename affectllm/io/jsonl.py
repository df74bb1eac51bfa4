"""Crash-safe JSON Lines journals: the append-and-resume mechanics of ``build``.

A :class:`Journal` appends one JSON object per line and makes each line durable before returning
(write, flush, fsync), so a process killed at any moment leaves every earlier record whole. On
open, :func:`repair` cuts a torn last line (the one being written when the process died) and
reports it; a malformed line *before* the last one is real corruption and raises instead of being
silently dropped. The ids already written are read back, so a restarted build skips them.

Deliberately not here: what the records contain (``export``) or the order work is done (``build``).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Iterator

from affectllm.errors import InputError

log = logging.getLogger(__name__)


def dumps(record: dict) -> str:
    """One line of JSON: compact, key order kept, non-ASCII as is (stable bytes for a record)."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def repair(path: str | os.PathLike) -> int:
    """Truncate a torn last line of ``path``; returns the number of bytes cut (0: none).

    A last line counts as torn when it lacks its newline or is not valid JSON. Raises
    :class:`InputError` when an earlier line is not valid JSON.
    """
    path = Path(path)
    if not path.exists():
        return 0
    data = path.read_bytes()
    if not data:
        return 0
    keep = len(data)
    if not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
    else:  # complete last line: still check it parses (a crash can leave junk after fsync'd data)
        prev = data.rfind(b"\n", 0, len(data) - 1) + 1
        try:
            json.loads(data[prev:])
        except (json.JSONDecodeError, UnicodeDecodeError):
            keep = prev
    for n, line in enumerate(data[:keep].splitlines(), 1):
        try:
            json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise InputError(path, f"line {n} is not valid JSON ({e}); the file is corrupt, "
                             "not just cut short -- remove it or rebuild into a new folder")
    cut = len(data) - keep
    if cut:
        with open(path, "r+b") as f:
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())
        log.warning("%s: cut a torn last line (%d bytes) left by an interrupted run", path, cut)
    return cut


def read(path: str | os.PathLike) -> Iterator[dict]:
    """The records of a JSON Lines file, in order (nothing when it does not exist)."""
    path = Path(path)
    if not path.exists():
        return
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


class Journal:
    """Append-only JSONL file with durable appends and the set of ids already written."""

    def __init__(self, path: str | os.PathLike, id_key: str = "id"):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.cut = repair(self.path)
        self.id_key = id_key
        self.ids: list[str] = [r[id_key] for r in read(self.path)]
        self._f = open(self.path, "a", encoding="utf-8")

    def __contains__(self, item_id: str) -> bool:
        return item_id in self._idset

    @property
    def _idset(self) -> set[str]:
        if getattr(self, "_cache_n", -1) != len(self.ids):
            self._cache, self._cache_n = set(self.ids), len(self.ids)
        return self._cache

    def last(self) -> dict | None:
        """The last record written (read back from disk), or None."""
        last = None
        for last in read(self.path):
            pass
        return last

    def append(self, record: dict) -> None:
        """Write one record as one line and make it durable before returning."""
        line = dumps(record) + "\n"
        self._f.write(line)  # one buffered write, flushed whole: never interleaved with another
        self._f.flush()
        os.fsync(self._f.fileno())
        self.ids.append(record[self.id_key])

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
