"""Reading SFT / RL records (JSONL from the data engine) into train and eval datasets.

A record is one JSON object per line (format fixed in the project brief): ``messages``, ``features``
(FeatureCache keys by modality), ``split``, ``label``, ``evidence_aus``, ``gold_aus``, ...

Splits: records marked ``test`` are never trained or evaluated on here (held-out benchmarks).
Evaluation uses the records marked ``dev``; without any, ``eval_fraction`` of the train records
is held out deterministically, grouped by speaker where known so one voice never sits on both sides.

Records become a ``datasets.Dataset`` because trl's trainers require one. Nested fields whose
keys differ between records (``features``, ``gold_aus``, ``media``) would be widened by Arrow
into one struct with ``None`` holes, so they travel as JSON strings and are decoded again by the
collator (SFT) or the reward wrapper (GRPO).

Deliberately not here: tokenisation (``train.collator``) or building records (``data_engine``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from affectllm.errors import InputError
from affectllm.io import jsonl

log = logging.getLogger(__name__)

JSON_COLUMNS = ("features", "gold_aus", "media", "observations")  # nested, key sets differ per record


def records_file(path: str | os.PathLike, kind: str = "sft") -> Path:
    """``path`` itself when a file, else ``path/{kind}.jsonl``."""
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / f"{kind}.jsonl"
    if not p.is_file():
        raise InputError(str(p), f"no {kind} records here (expected a JSONL file or a folder with {kind}.jsonl)")
    return p


def read_records(path: str | os.PathLike, kind: str = "sft") -> list[dict]:
    """All records of a JSONL file; a bad line raises with file and line number."""
    p = records_file(path, kind)
    out: list[dict] = []
    for n, rec, _ in jsonl.iter_lines(p, torn="raise"):
        if not isinstance(rec.get("messages"), list):
            raise InputError(f"{p}:{n}", "a record is a JSON object with a 'messages' list")
        out.append(rec)
    if not out:
        raise InputError(str(p), "holds no records")
    return out


def _unit(key: str) -> float:
    """A stable number in [0, 1) for a key (not Python's salted hash)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64


def split_records(records: Sequence[dict], eval_fraction: float = 0.0,
                  eval_split: str = "dev") -> tuple[list[dict], list[dict]]:
    """``(train, eval)``: ``test`` records dropped, ``eval_split`` records for eval, else a held-out
    fraction of train grouped by speaker (or id)."""
    kept = [r for r in records if r.get("split") != "test"]
    if len(kept) < len(records):
        log.warning("ignoring %d record(s) of the test split: never trained on", len(records) - len(kept))
    train = [r for r in kept if r.get("split") in (None, "", "train")]
    evals = [r for r in kept if eval_split and r.get("split") == eval_split]
    if not evals and eval_fraction > 0:
        def group(r: dict) -> str:
            return f"{r.get('source', '')}:{r.get('speaker')}" if r.get("speaker") else str(r.get("id", ""))
        evals = [r for r in train if _unit(group(r)) < eval_fraction]
        held = {id(r) for r in evals}
        train = [r for r in train if id(r) not in held]
    if not train:
        raise InputError("records", "no training records left after the split (all test/dev?)")
    return train, evals


def _row(rec: dict, columns: Iterable[str]) -> dict:
    row = {}
    for c in columns:
        v = rec.get(c)
        row[c] = json.dumps(v, sort_keys=True) if c in JSON_COLUMNS else v
    return row


def sft_dataset(records: Sequence[dict]):
    """A ``datasets.Dataset`` with ``id`` and ``record`` (the whole record as JSON) per row."""
    from datasets import Dataset

    return Dataset.from_list([{"id": str(r.get("id", i)), "record": json.dumps(r)}
                              for i, r in enumerate(records)])


RL_COLUMNS = ("id", "label", "labels", "taxonomy", "evidence_aus", "gold_aus", "features", "observations",
              "answer", "probability")  # answer/probability: the decided answer a prompt carries (verifier reward)


def rl_dataset(records: Sequence[dict], render: Callable[[list[dict]], Any] | None = None):
    """A ``datasets.Dataset`` for GRPO: ``prompt`` (the chat messages up to the last user turn, or
    ``render(messages)``, e.g. a templated string) plus the columns reward functions read.
    JSON_COLUMNS stay strings (see module docstring)."""
    from datasets import Dataset

    rows = []
    for i, r in enumerate(records):
        msgs = [{"role": m["role"], "content": m["content"]} for m in r["messages"]]
        while msgs and msgs[-1]["role"] == "assistant":  # an SFT record's answer is not part of the prompt
            msgs.pop()
        prompt = render(msgs) if render is not None else msgs
        row = _row(r, RL_COLUMNS)
        row["id"] = str(r.get("id", i))
        row["labels"] = list(r.get("labels") or ([r["label"]] if r.get("label") else []))
        # None (no face seen) stays None: the grounding reward then abstains for the row.
        ev = r.get("evidence_aus")
        row["evidence_aus"] = None if ev is None else list(ev)
        rows.append({"prompt": prompt, **row})
    return Dataset.from_list(rows)


def decode_json_columns(columns: dict) -> dict:
    """The inverse of the JSON packing for reward kwargs: lists of JSON strings -> lists of objects."""
    out = dict(columns)
    for c in JSON_COLUMNS:
        if c in out and isinstance(out[c], list):
            out[c] = [json.loads(v) if isinstance(v, str) else v for v in out[c]]
    return out
