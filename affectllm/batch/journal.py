"""The batch job's journals: JSONL files appended one batch at a time, durable, resumable.

Each batch of rows is written with one ``write``, then ``flush`` and ``fsync``, so a process
killed at any moment (``kill -9`` included) leaves every earlier batch whole and at most one torn
last line, which the next run with ``--resume`` cuts off (``affectllm.io.jsonl.repair``).

Where rows go: a single process appends to the output itself (``--format jsonl``) or to
``OUT.jsonl`` beside a CSV/Parquet output; rank ``i`` of ``N`` processes appends to its own shard
``OUT.shard{i}of{N}.jsonl``. :func:`journal_files` lists every journal an output may have (shards
of any earlier process count too), so a resumed run skips what any of them already holds.

Deliberately not here: what a row holds (``affectllm.batch.job``) or final CSV/Parquet writing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from affectllm.io.jsonl import dumps, repair


def journal_path(out: Path, fmt: str, rank: int = 0, world: int = 1) -> Path:
    """The journal this process appends to (see module docstring)."""
    if world > 1:
        return out.with_name(f"{out.name}.shard{rank}of{world}.jsonl")
    return out if fmt == "jsonl" else out.with_name(out.name + ".jsonl")


def journal_files(out: Path, fmt: str) -> list[Path]:
    """Every existing journal of ``out``: the single-process one first, then shards by name."""
    single = journal_path(out, fmt)
    shards = sorted(out.parent.glob(f"{glob_escape(out.name)}.shard*of*.jsonl")) if out.parent.is_dir() else []
    return ([single] if single.is_file() else []) + shards


def glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


class Journal:
    """Append-only JSONL journal of one process; cuts a torn last line on open."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.cut = repair(self.path)  # bytes of a torn last line removed (0: none)
        self._f = open(self.path, "ab")

    def append(self, rows: list[dict]) -> None:
        """Write a batch of rows as whole lines and make them durable before returning."""
        if not rows:
            return
        self._f.write("".join(dumps(r) + "\n" for r in rows).encode("utf-8"))
        self._f.flush()
        os.fsync(self._f.fileno())

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
    a later :meth:`read` rather than parsed half-way.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.offset = 0
        self.bad_lines = 0  # complete lines that were not JSON (a corrupt journal)

    def read(self) -> list[dict]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n") + 1
        self.offset += end
        rows = []
        for line in data[:end].splitlines():
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except (json.JSONDecodeError, UnicodeDecodeError):
                self.bad_lines += 1
        return rows


def read_rows(paths: list[Path]) -> dict[str, dict]:
    """id -> row over ``paths`` (whole lines only; the first row of an id wins)."""
    rows: dict[str, dict] = {}
    for p in paths:
        for r in Tail(p).read():
            if isinstance(r, dict) and "id" in r:
                rows.setdefault(str(r["id"]), r)
    return rows
