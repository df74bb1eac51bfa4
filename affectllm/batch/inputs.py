"""What a batch job's ``INPUT...`` arguments stand for: one :class:`BatchInput` per item, in order.

An argument is a file, a folder (every file below it, recursively, sorted; hidden files
skipped), a glob (``data/**/*.wav``) or a manifest (``.csv`` with a header, or ``.jsonl``) whose
rows have the columns ``path``, ``text`` and ``id`` (each row needs a path or a text).

Manifests are untrusted: a row whose path is absolute or leads outside the manifest's folder
(``../``, a symlink) becomes an error item naming the manifest file and line, as does a row with
missing columns, a line that is not JSON, or a row with neither path nor text. Expansion never
raises for one bad argument; it yields error items and goes on.

Ids are unique (a repeated id gets ``#2``, ``#3``): the batch journal resumes by id.

Deliberately not here: decoding or perceiving the files (an item is only routed by content when
it is processed, see :meth:`BatchInput.item`), and the job itself (``affectllm.batch.job``).
"""

from __future__ import annotations

import csv
import glob
import io
import os
from dataclasses import dataclass
from pathlib import Path

from affectllm.errors import InputError
from affectllm.io import jsonl

MANIFEST_SUFFIXES = (".csv", ".jsonl")
COLUMNS = ("path", "text", "id")
_GLOB_CHARS = set("*?[")


@dataclass
class BatchInput:
    """One item of the job: a file and/or text, or an error found while listing inputs."""

    id: str
    path: str | None = None
    text: str | None = None
    error: str | None = None  # set: the item is reported as failed without being processed
    where: str = ""  # the argument or "manifest.csv line 7" it came from (for messages)

    def item(self, default_text: str | None = None):
        """The pipeline :class:`Item` (routed by content); raises InputError for a bad file."""
        from affectllm.io.item import Item, to_item

        if self.error:
            raise InputError(self.id, self.error)
        text = self.text if self.text is not None else default_text
        if self.path is None:
            return to_item(None, text=text or None, id=self.id)
        return Item.from_path(self.path, text=text, id=self.id)  # a listed path is a path, never words


def _files_under(folder: Path) -> list[Path]:
    out = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out += [Path(root) / f for f in sorted(files) if not f.startswith(".")]
    return out


def _decode_manifest(path: Path, encoding: str) -> tuple[str, str | None]:
    """``(text, problem)``: the manifest decoded with ``encoding``; when that fails, decoded as
    Latin-1 (which always succeeds) so its rows can still be listed, and ``problem`` says which
    encoding was tried, where it failed and how to fix it."""
    raw = path.read_bytes()
    enc = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    try:
        return raw.decode(enc), None
    except UnicodeDecodeError as e:
        bad = raw[e.start:e.start + 1].hex()
        line = raw.count(b"\n", 0, e.start) + 1
        return raw.decode("latin-1"), (
            f"manifest is not valid {encoding} text (byte 0x{bad} on line {line}, offset {e.start}; "
            f"tried {encoding}): re-save it as UTF-8, or pass --encoding latin-1 (or cp1252) if that "
            "is how it was written")


def _manifest_rows(path: Path, encoding: str = "utf-8") -> list[BatchInput]:
    """Items of one manifest; bad rows become error items naming ``path`` and the line. A
    manifest that cannot be decoded lists every row as an error item saying why."""
    from affectllm.io.files import safe_join

    rows: list[tuple[int, dict | None, str | None]] = []  # (line, fields, problem)
    undecodable = None
    try:
        if path.suffix.lower() == ".jsonl":
            rows += list(jsonl.iter_lines(path, torn="report"))
        else:
            content, undecodable = _decode_manifest(path, encoding)
            with io.StringIO(content, newline="") as f:
                reader = csv.reader(f)
                header = next(reader, None)
                if header is None:
                    return [BatchInput(f"{path}:1", error=f"{path} line 1: empty manifest", where=str(path))]
                header = [h.strip().lower() for h in header]
                if not {"path", "text"} & set(header):
                    return [BatchInput(f"{path}:1", error=f"{path} line 1: the header needs a 'path' or "
                                       f"'text' column (found {', '.join(header) or 'none'})", where=str(path))]
                for fields in reader:
                    if not any(x.strip() for x in fields):
                        continue
                    n = reader.line_num
                    if len(fields) != len(header):
                        missing = header[len(fields):] if len(fields) < len(header) else []
                        why = (f"missing column(s) {', '.join(missing)}" if missing else
                               f"{len(fields)} fields for {len(header)} columns")
                        rows.append((n, None, why))
                        continue
                    rows.append((n, dict(zip(header, fields)), None))
    except (OSError, UnicodeDecodeError, LookupError, csv.Error) as e:
        return [BatchInput(str(path), error=f"{path}: unreadable manifest ({type(e).__name__}: {e})",
                           where=str(path))]

    out = []
    for n, rec, problem in rows:
        where = f"{path} line {n}"
        rec = rec or {}
        rid = str(rec.get("id") or "").strip() or f"{path}:{n}"
        problem = problem or undecodable
        if problem is None:
            unknown = set(rec) - set(COLUMNS)
            rel, text = rec.get("path"), rec.get("text")
            if not isinstance(rel, (str, type(None))) or not isinstance(text, (str, type(None))):
                problem = "'path' and 'text' must be strings"
            elif not (rel or "").strip() and not (text or "").strip():
                problem = "missing column(s): a row needs a 'path' or a 'text'" + (
                    f" (unknown column(s) {', '.join(sorted(unknown))})" if unknown else "")
        if problem is not None:
            out.append(BatchInput(rid, error=f"{where}: {problem}", where=where))
            continue
        rel, text = (rec.get("path") or "").strip(), rec.get("text") or None
        file = None
        if rel:
            try:
                file = str(safe_join(path.parent, rel))
            except InputError as e:
                out.append(BatchInput(rid, error=f"{where}: {e.reason} (path {rel!r})", where=where))
                continue
        out.append(BatchInput(str(rec.get("id") or "").strip() or rel or rid, path=file, text=text, where=where))
    return out


def expand_inputs(specs: list[str], manifests: bool = True, encoding: str = "utf-8") -> list[BatchInput]:
    """The items named by ``specs`` (files, folders, globs, manifests), in order, ids unique.
    ``encoding``: the manifests' text encoding (UTF-8 unless told)."""
    items: list[BatchInput] = []
    for spec in specs:
        p = Path(spec)
        if p.is_dir():
            found = _files_under(p)
            items += [BatchInput(str(f), path=str(f), where=spec) for f in found]
            if not found:
                items.append(BatchInput(spec, error=f"{spec}: folder holds no files", where=spec))
        elif p.is_file() and manifests and p.suffix.lower() in MANIFEST_SUFFIXES:
            items += _manifest_rows(p, encoding)
        elif p.exists() or p.is_symlink():
            items.append(BatchInput(spec, path=spec, where=spec))  # a bad file is found out later
        elif _GLOB_CHARS & set(spec):
            found = sorted(f for f in glob.glob(spec, recursive=True) if Path(f).is_file())
            items += [BatchInput(f, path=f, where=spec) for f in found]
            if not found:
                items.append(BatchInput(spec, error=f"{spec}: the pattern matches no file", where=spec))
        else:
            items.append(BatchInput(spec, error=f"{spec}: file not found", where=spec))
    seen: dict[str, int] = {}
    for it in items:  # unique ids: the journal resumes by id
        k = seen.get(it.id, 0) + 1
        seen[it.id] = k
        if k > 1:
            it.id = f"{it.id}#{k}"
    return items
