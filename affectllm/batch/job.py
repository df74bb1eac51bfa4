"""Explain many inputs into one JSONL, CSV or Parquet file: resumable, and sharded over processes.

    affectllm batch photos/ 'clips/**/*.wav' manifest.csv --out runs/preds.jsonl
    affectllm batch photos/ --out runs/preds.parquet --resume        # after a crash or Ctrl-C
    CUDA_VISIBLE_DEVICES= OMP_NUM_THREADS=1 accelerate launch --config_file train/accelerate/multi_cpu.yaml \
        --num_processes 2 -m affectllm.batch photos/ --out runs/preds.jsonl

One output row per input, in input order: ``ExplainResult.to_dict()`` (id, emotion, probabilities,
cues, rationale, evidence, timings, warnings, error...) plus ``aus`` (the main face's AU
intensities) and ``flags`` (perception caveats: ``silent``, ``too_short``, ``no_face``...). An
item that cannot be explained gets a row with ``error`` set and the job goes on.

Durability: rows are appended to a JSONL journal one batch at a time (flush + fsync, see
``affectllm.batch.journal``); ``--resume`` continues an interrupted run, ``kill -9`` included, with no
duplicate and no missing row. CSV and Parquet are written from the journal at the end, atomically.
Under ``accelerate launch`` / ``torchrun`` (``RANK``, ``WORLD_SIZE``) rank ``i`` explains items
``i::N`` into its own shard journal, and rank 0 waits for all of them and merges in input order.

Deliberately not here: listing inputs (``affectllm.batch.inputs``), perception, prompting and decoding
(all in ``affectllm.inference.Explainer``, batched by ``--batch-size``).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path

from affectllm.batch.inputs import BatchInput, expand_inputs
from affectllm.batch.journal import journal_files, journal_path, read_rows
from affectllm.io.jsonl import Journal, Tail
from affectllm.errors import InputError
from affectllm.io.text import CUT_WORDS

FORMATS = ("jsonl", "csv", "parquet")
ROW_FIRST = ("id", "emotion", "probabilities", "aus", "flags", "cues", "rationale", "timings", "warnings", "error")


# ----------------------------------------------------------------------------- rows
def result_row(res) -> dict:
    """One output row from an :class:`ExplainResult` (also what the app's API returns)."""
    d = res.to_dict()
    ev = d.get("evidence") or {}
    d["aus"] = res.au_intensities(ev)
    d["flags"] = evidence_flags(ev)
    if any(CUT_WORDS in w for w in d.get("warnings") or []):  # the input's text was cut (io.text)
        d["flags"] = [*d["flags"], "truncated"] if "truncated" not in d["flags"] else d["flags"]
    return {**{k: d.get(k) for k in ROW_FIRST}, **{k: v for k, v in d.items() if k not in ROW_FIRST}}


def evidence_flags(ev: dict) -> list[str]:
    """The perceivers' caveats in one list: the main face's and the voice's flags, plus
    ``no_face`` / ``no_audio`` for a video whose frames showed no face or that has no sound."""
    flags = list(ev["faces"][0].get("flags", [])) if ev.get("faces") else []
    video = ev.get("video")
    if video and not ev.get("faces"):
        flags.append("no_face")
    flags += (ev.get("audio") or {}).get("flags", [])
    if video and not video.get("has_audio"):
        flags.append("no_audio")
    return list(dict.fromkeys(flags))


def error_row(item_id: str, message: str) -> dict:
    from affectllm.inference import ExplainResult

    return result_row(ExplainResult(str(item_id), None, None, error=message))


def error_reason(row: dict) -> str:
    """The kind of an error row's failure, for the summary: file name and numbers taken out."""
    msg = str(row.get("error") or "")
    msg = msg.split("; ")[0]  # several modality errors: the first names the kind well enough
    rid = str(row.get("id") or "")
    if rid and msg.startswith(rid + ":"):
        msg = msg[len(rid) + 1:].lstrip()
    elif rid and msg.startswith(rid + " ("):  # "clip.wav (clip.wav): reason" from nested items
        msg = re.sub(r"^\([^)]*\): ", "", msg[len(rid) + 1:])
    else:  # named by its path (a manifest row's id is not its path): "dir/x.jpg: reason"
        msg = re.sub(r"^[^:]*?[/.][^:]*?: ", "", msg, count=1)
    msg = re.sub(r"^\S+ line \d+: ", "", msg)  # "manifest.csv line N: reason"
    msg = re.split(r" \(|[;:,]", msg, maxsplit=1)[0]
    msg = re.sub(r"(?<![\w.])/[^\s,;:()']+", "PATH", msg)  # absolute paths inside the reason
    return re.sub(r"\d+(\.\d+)?", "N", msg).strip() or "unknown"


def summarize(rows: list[dict], seconds: float | None = None) -> dict:
    errors = [r for r in rows if r.get("error")]
    out = {"n": len(rows), "ok": len(rows) - len(errors), "errors": len(errors),
           "by_reason": dict(Counter(error_reason(r) for r in errors).most_common())}
    if seconds:
        out["seconds"] = round(seconds, 2)
    return out


def _cell(v):
    return json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v


def write_table(rows: list[dict], out: Path, fmt: str) -> Path:
    """CSV or Parquet of ``rows``, written atomically; nested fields become JSON strings."""
    import pandas as pd

    from affectllm.io.files import atomic_write_bytes, atomic_write_text

    df = pd.DataFrame([{k: _cell(v) for k, v in r.items()} for r in rows],
                      columns=list(dict.fromkeys(k for r in rows for k in r)) or list(ROW_FIRST))
    if fmt == "csv":
        return atomic_write_text(out, df.to_csv(index=False))
    import io

    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return atomic_write_bytes(out, buf.getvalue())


# ----------------------------------------------------------------------------- processes
def dist_env() -> tuple[int, int]:
    """(rank, world size) from torchrun/accelerate's environment; (0, 1) alone."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def _explain(explainer, chunk: list[BatchInput], question, text) -> list[dict]:
    """Rows for one batch: bad files and failed items become error rows, never exceptions."""
    rows: list[dict | None] = [None] * len(chunk)
    ready = []
    for i, b in enumerate(chunk):
        if b.error:  # found while listing inputs; the message already names file and line
            rows[i] = error_row(b.id, b.error)
            continue
        try:
            ready.append((i, b.item(text)))
        except InputError as e:
            rows[i] = error_row(b.id, str(e))
        except Exception as e:  # noqa: BLE001 - an unexpected reader failure is this item's error
            rows[i] = error_row(b.id, f"{b.id}: unreadable input: {type(e).__name__}: {e}")
    if ready:
        try:
            results = explainer.explain([it for _, it in ready], question=question)
        except Exception:  # noqa: BLE001 - one item broke the batch: explain one by one
            results = []
            for _, it in ready:
                try:
                    results.append(explainer.explain([it], question=question)[0])
                except Exception as e:  # noqa: BLE001
                    from affectllm.inference import ExplainResult

                    results.append(ExplainResult(it.id, None, None,
                                                 error=f"{it.id}: explanation failed: {type(e).__name__}: {e}"))
        for (i, _), res in zip(ready, results):
            rows[i] = result_row(res)
    return rows  # type: ignore[return-value]


def _prepare_outputs(out: Path, fmt: str, rank: int, world: int, resume: bool, overwrite: bool) -> Path:
    """Check or clear earlier output; returns this process's journal path."""
    mine = journal_path(out, fmt, rank, world)
    others = [p for p in journal_files(out, fmt)
              if p != mine and not re.search(rf"\.shard\d+of{world}\.jsonl$", p.name)]  # same-N shards: theirs
    earlier = [p for p in [out, mine, *others] if p.exists()]
    if overwrite:
        for p in [mine] + (earlier if rank == 0 else []):
            p.unlink(missing_ok=True)
    elif earlier and not resume:
        raise FileExistsError(f"{earlier[0]} exists: pass --resume to continue that run, "
                              "or --overwrite to start over")
    return mine


def _wait_for_all(out: Path, fmt: str, ids: list[str], poll_s: float = 1.0, timeout_s: float | None = None) -> None:
    """Rank 0: block until every input id has a row in some journal (the other ranks are done)."""
    need, tails, t0, said = set(ids), {}, time.monotonic(), 0.0
    while True:
        for p in journal_files(out, fmt):
            tails.setdefault(p, Tail(p))
            need -= {str(r.get("id")) for r in tails[p].read() if isinstance(r, dict)}
        if not need:
            return
        waited = time.monotonic() - t0
        if timeout_s is not None and waited > timeout_s:
            raise TimeoutError(f"{len(need)} item(s) still missing after {waited:.0f} s (did a rank fail?)")
        if waited - said > 60:
            print(f"batch: rank 0 waits for {len(need)} item(s) from the other ranks", file=sys.stderr)
            said = waited
        time.sleep(poll_s)


def finalize(out: Path, fmt: str, inputs: list[BatchInput], world: int) -> list[dict]:
    """Write the final output in input order from all journals; returns its rows."""
    from affectllm.io.files import atomic_write_text
    from affectllm.io.jsonl import dumps

    files = journal_files(out, fmt)
    by_id = read_rows(files)
    rows = [by_id[b.id] for b in inputs if b.id in by_id]
    single = journal_path(out, fmt)
    shards = [p for p in files if p != single]
    on_disk = [r.get("id") for r in Tail(single).read()] if single.is_file() else []
    if shards or on_disk != [r["id"] for r in rows]:  # order, duplicates, extra or shard rows: rewrite
        atomic_write_text(single, "".join(dumps(r) + "\n" for r in rows))
    if fmt != "jsonl":
        write_table(rows, out, fmt)
    for p in shards:  # merged into the single journal: a later --resume reads that
        p.unlink(missing_ok=True)
    return rows


def load_explainer(model: str | None = None, batch_size: int = 8, max_new_tokens: int | None = None,
                   taxonomy: str | None = None, modalities=("face", "audio"), cache: bool = True,
                   cpu_weights: str | None = None):
    from affectllm.inference import Explainer
    from affectllm.perception.pipeline import Perception

    return Explainer.from_name(model, perception=Perception(modalities=modalities, use_cache=cache),
                               batch_size=batch_size, max_new_tokens=max_new_tokens, taxonomy=taxonomy,
                               cpu_weights=cpu_weights)


def run_batch(inputs: list[str], out: str | os.PathLike, fmt: str | None = None, *, resume: bool = False,
              overwrite: bool = False, explainer=None, model: str | None = None, text: str | None = None,
              question: str | None = None, batch_size: int = 8, max_new_tokens: int | None = None,
              taxonomy: str | None = None, modalities=("face", "audio"), cache: bool = True,
              progress: bool = True, rank: int | None = None, world: int | None = None,
              cpu_weights: str | None = None, encoding: str = "utf-8") -> dict:
    """Explain ``inputs`` into ``out``; returns the summary (rank 0) or this rank's counts.
    ``encoding``: the manifests' text encoding."""
    from tqdm import tqdm

    out = Path(out)
    fmt = fmt or {".csv": "csv", ".parquet": "parquet"}.get(out.suffix.lower(), "jsonl")
    if fmt not in FORMATS:
        raise ValueError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    env_rank, env_world = dist_env()
    rank, world = (env_rank if rank is None else rank), (env_world if world is None else world)
    t0 = time.monotonic()
    items = expand_inputs(list(inputs), encoding=encoding)
    mine = _prepare_outputs(out, fmt, rank, world, resume, overwrite)
    with Journal(mine, id_key=None) as journal:
        if journal.cut:
            print(f"batch: cut a torn last line ({journal.cut} bytes) from {mine}", file=sys.stderr)
        done = set(read_rows(journal_files(out, fmt))) if resume else set()
        todo = [b for b in items[rank::world] if b.id not in done]
        if todo and explainer is None:
            explainer = load_explainer(model, batch_size, max_new_tokens, taxonomy, modalities, cache, cpu_weights)
        desc = "batch" if world == 1 else f"batch rank {rank}/{world}"
        bar = tqdm(total=len(todo), desc=desc, unit="item", disable=not progress, position=rank,
                   file=sys.stderr, dynamic_ncols=True)
        n_err = 0
        try:
            for start in range(0, len(todo), batch_size):
                rows = _explain(explainer, todo[start:start + batch_size], question, text)
                journal.extend(rows)
                n_err += sum(bool(r["error"]) for r in rows)
                bar.update(len(rows))
                bar.set_postfix(errors=n_err, refresh=False)
        finally:
            bar.close()
    if rank != 0:
        return {"rank": rank, "n": len(todo), "errors": n_err}
    if world > 1:
        _wait_for_all(out, fmt, [b.id for b in items])
    rows = finalize(out, fmt, items, world)
    summary = summarize(rows, time.monotonic() - t0)
    summary.update(out=str(out), skipped=len(done & {b.id for b in items}), processed=len(todo))
    return summary


def print_summary(s: dict, file=sys.stderr) -> None:
    rate = f", {s['processed'] / s['seconds']:.2f} item/s overall" if s.get("processed") and s.get("seconds") else ""
    print(f"batch: {s['ok']} ok, {s['errors']} error(s) of {s['n']} -> {s['out']} "
          f"({s['processed']} explained now, {s['skipped']} done earlier{rate})", file=file)
    for reason, n in s["by_reason"].items():
        print(f"  {n:5d} x {reason}", file=file)
