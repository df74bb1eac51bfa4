"""JSON Lines, in one place: one line format, one reader with explicit torn-line modes, one journal.

Every JSONL file affectllm and its tools write or read goes through here: the data engine's
``sft.jsonl``, eval's predictions, the batch job's journals and manifests, training records.

Reading (:func:`iter_lines`) names what to do with a line that is not a JSON object, ``torn=``:

- ``"raise"``: any bad line raises :class:`InputError` naming ``file:line`` (finished files);
- ``"skip_last"``: a bad *last* line is a write cut short (a run still going, or killed): skipped
  with a warning; a bad line before it is corruption and raises;
- ``"report"``: every line is yielded with its problem, for callers that turn bad lines into
  error rows and go on (manifests, dataset annotations).

A :class:`Journal` appends whole lines durably (write, flush, fsync; a batch of lines in one
write), so a process killed at any moment leaves every earlier record whole; on open,
:func:`repair` cuts a torn last line and raises on a bad earlier one. :class:`Tail` reads the
whole lines another process has appended so far.

Deliberately not here: what the records contain, or where a job's journals live
(``affectllm.batch.journal``).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Iterator

from affectllm.errors import InputError

log = logging.getLogger(__name__)

TORN_MODES = ("raise", "skip_last", "report")


def dumps(record: dict) -> str:
    """One line of JSON: compact, key order kept, non-ASCII as is (stable bytes for a record)."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def decode_line(raw: bytes, first: bool = False) -> tuple[dict | None, str | None]:
    """(object, None) for a line holding one JSON object, else (None, the problem).

    ``first``: the file's first line, where a UTF-8 byte-order mark is allowed.
    """
    try:
        obj = json.loads(raw.decode("utf-8-sig" if first else "utf-8"))
    except UnicodeDecodeError as e:
        return None, f"not valid UTF-8 ({e.reason})"
    except json.JSONDecodeError as e:
        return None, f"not valid JSON ({e.msg})"
    if not isinstance(obj, dict):
        return None, f"not a JSON object (got {type(obj).__name__})"
    return obj, None


def iter_lines(path: str | os.PathLike, torn: str = "raise") -> Iterator[tuple[int, dict | None, str | None]]:
    """``(line number, object or None, problem or None)`` for each non-blank line (see module docstring)."""
    if torn not in TORN_MODES:
        raise ValueError(f"torn must be one of {TORN_MODES}, not {torn!r}")
    path = Path(path)
    lines = path.read_bytes().splitlines()
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        obj, problem = decode_line(raw, first=n == 1)
        if problem and torn != "report":
            if torn == "skip_last" and n == len(lines):
                log.warning("%s: skipped a torn last line", path)
                continue
            raise InputError(f"{path}:{n}", f"line {n} is {problem}")
        yield n, obj, problem


def read(path: str | os.PathLike, torn: str = "raise") -> Iterator[dict]:
    """The objects of a JSON Lines file, in order (nothing when it does not exist).

    ``torn``: ``"raise"`` or ``"skip_last"`` (``"report"`` is :func:`iter_lines`'s).
    """
    if torn == "report":
        raise ValueError("read() yields objects only; use iter_lines(path, 'report') for problems")
    if not Path(path).exists():
        return
    for _, obj, _ in iter_lines(path, torn):
        yield obj


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


class Journal:
    """Append-only JSONL file: durable appends, a torn last line cut on open.

    ``id_key``: when set, the ids already written are read back (``ids``, ``in``), so a restarted
    job skips them; ``None`` reads nothing back (a journal that may be large and is tailed instead).
    """

    def __init__(self, path: str | os.PathLike, id_key: str | None = "id"):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.cut = repair(self.path)  # bytes of a torn last line removed (0: none)
        self.id_key = id_key
        self.ids: list[str] = [r[id_key] for r in read(self.path)] if id_key else []
        self._f = open(self.path, "ab")

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
        self.extend([record])

    def extend(self, records: list[dict]) -> None:
        """Write records as whole lines in ONE write (never interleaved with another process's
        lines) and make them durable before returning."""
        if not records:
            return
        self._f.write("".join(dumps(r) + "\n" for r in records).encode("utf-8"))
        self._f.flush()
        os.fsync(self._f.fileno())
        if self.id_key:
            self.ids += [r[self.id_key] for r in records]

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Tail:
    """Reads the whole lines another process has appended to a journal so far, incrementally.

    A last line without its newline is being written (or was torn by a crash): it is left for
    a later :meth:`read` rather than parsed half-way. Complete lines that are not JSON objects
    are counted in ``bad_lines`` (a corrupt journal) and skipped.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.offset = 0
        self.bad_lines = 0

    def read(self) -> list[dict]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n") + 1
        first = self.offset == 0
        self.offset += end
        rows = []
        for k, line in enumerate(data[:end].splitlines()):
            if not line.strip():
                continue
            obj, problem = decode_line(line, first=first and k == 0)
            if problem:
                self.bad_lines += 1
            else:
                rows.append(obj)
        return rows
