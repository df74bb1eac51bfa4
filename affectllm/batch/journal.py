"""Where the batch job's journals live, and reading them back: which JSONL files an output has.

The journals themselves are :class:`affectllm.io.jsonl.Journal` files appended one batch at a time
(one write, flush, fsync), so a process killed at any moment (``kill -9`` included) leaves every
earlier batch whole and at most one torn last line, which the next run with ``--resume`` cuts off.

Where rows go: a single process appends to the output itself (``--format jsonl``) or to
``OUT.jsonl`` beside a CSV/Parquet output; rank ``i`` of ``N`` processes appends to its own shard
``OUT.shard{i}of{N}.jsonl``. :func:`journal_files` lists every journal an output may have (shards
of any earlier process count too), so a resumed run skips what any of them already holds.

Deliberately not here: what a row holds (``affectllm.batch.job``), the JSONL mechanics
(``affectllm.io.jsonl``) or final CSV/Parquet writing.
"""

from __future__ import annotations

from pathlib import Path

from affectllm.io.jsonl import Tail


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


def read_rows(paths: list[Path]) -> dict[str, dict]:
    """id -> row over ``paths`` (whole lines only; the first row of an id wins)."""
    rows: dict[str, dict] = {}
    for p in paths:
        for r in Tail(p).read():
            if "id" in r:
                rows.setdefault(str(r["id"]), r)
    return rows
