"""What every dataset reader shares: the Source base class, problem reporting, safe paths.

A reader subclasses :class:`Source`, implements ``_samples()`` and uses the helpers here to read
CSV / TSV / JSONL / JSON with line numbers and to turn a path written in an (untrusted) annotation
file into a media path. The rules every reader then follows:

- a malformed row is recorded in ``source.problems`` as ``{"file", "line", "reason"}`` and
  skipped -- iteration never crashes on one bad row, and never drops one without a record;
  ``source.stats`` counts what was yielded and skipped;
- a path that resolves outside the dataset root (``..``, absolute, a symlink pointing out) is
  rejected with a reason; so is a missing media file (unless ``require_media=False``, which keeps
  the item without that media and still records the problem).

What it deliberately does not do: decode media (``affectllm.io``) or know any dataset's format.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from pathlib import Path
from typing import Any, Iterator

from affectllm.errors import InputError
from affectllm.io import jsonl
from affectllm.io.files import safe_join
from affectllm.io.item import route
from data_engine.sample import Sample

log = logging.getLogger(__name__)

MEDIA_EXTENSIONS: dict[str, frozenset[str]] = {
    "image": frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}),
    "audio": frozenset({".wav", ".flac", ".mp3", ".ogg", ".m4a", ".opus", ".aac"}),
    "video": frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v"}),
}


SPLIT_ALIASES = {
    "train": "train", "training": "train", "trn": "train",
    "dev": "dev", "val": "dev", "valid": "dev", "validation": "dev",
    "test": "test", "testing": "test", "tst": "test",
}


def normalize_split(value: object) -> str | None:
    """``"train"``/``"dev"``/``"test"`` from the names sets use; empty -> None; else ValueError."""
    if value is None or not str(value).strip():
        return None
    key = str(value).strip().lower()
    if key not in SPLIT_ALIASES:
        raise ValueError(f"unknown split {value!r} (use train, dev/val or test)")
    return SPLIT_ALIASES[key]


def media_kind(path: str | os.PathLike) -> str | None:
    """``"image"``, ``"audio"`` or ``"video"`` from the file extension, or None."""
    ext = Path(path).suffix.lower()
    for kind, exts in MEDIA_EXTENSIONS.items():
        if ext in exts:
            return kind
    return None


class Source:
    """Base of all readers: iterate it to get :class:`Sample` objects.

    ``problems`` and ``stats`` are reset at the start of each iteration and complete once it
    ends. Subclasses set ``kind`` and (for data shipped in ``shared/data``) ``default_subdir``.
    """

    kind: str = "?"
    default_subdir: str | None = None  # folder under affectllm.paths.data_root() for "KIND" alone

    def __init__(self, path: str | os.PathLike, *, require_media: bool = True):
        self.path = Path(path).expanduser()
        if not self.path.exists():
            raise InputError(self.path, f"{self.kind} source not found")
        self.require_media = require_media
        self.problems: list[dict[str, Any]] = []
        self.stats: dict[str, int] = self._zero_stats()
        self._decode_noted: set[str] = set()

    # ---- iteration ----------------------------------------------------------------------
    def __iter__(self) -> Iterator[Sample]:
        self.problems, self.stats = [], self._zero_stats()
        self._decode_noted = set()
        seen: dict[str, str] = {}
        for s in self._samples():
            origin = s.meta.get("origin", "?")
            if s.id in seen:  # ids key caches and splits downstream: a duplicate is an error
                file, _, line = origin.rpartition(":")
                self.problem(file or origin, int(line) if line.isdigit() else None,
                             f"duplicate id {s.id!r} (first at {seen[s.id]})")
                continue
            seen[s.id] = origin
            self.stats["yielded"] += 1
            self.stats["unlabelled"] += not s.labels
            yield s
        if self.problems:
            log.warning("%s:%s: %d item(s) skipped, %d problem(s) recorded (see .problems)",
                        self.kind, self.path, self.stats["skipped"], len(self.problems))

    def _samples(self) -> Iterator[Sample]:
        raise NotImplementedError

    def load(self, require: bool = False) -> list[Sample]:
        """All samples as a list (``problems`` / ``stats`` filled). ``require``: a source that
        yields nothing raises InputError quoting its first problems (file:line: reason), so a
        command whose every row was skipped says why instead of failing later on no data."""
        samples = list(self)
        if require and not samples:
            raise InputError(f"{self.kind}:{self.path}", self.no_items_reason())
        return samples

    def no_items_reason(self, first: int = 5) -> str:
        """Why no item came out: the first ``first`` problems as ``file:line: reason`` lines."""
        if not self.problems:
            return "holds no items"
        shown = [f"  {p['file']}:{p['line'] if p['line'] is not None else '-'}: {p['reason']}"
                 for p in self.problems[:first]]
        more = len(self.problems) - len(shown)
        return (f"no usable items: all {self.stats['skipped']} were skipped; the first reasons:\n"
                + "\n".join(shown) + (f"\n  ... and {more} more" if more > 0 else ""))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    @staticmethod
    def _zero_stats() -> dict[str, int]:
        return {"yielded": 0, "skipped": 0, "unlabelled": 0}

    # ---- reporting ----------------------------------------------------------------------
    def problem(self, file: str | os.PathLike, line: int | None, reason: str,
                skipped: int = 1) -> None:
        """Record a problem; ``skipped`` is how many items it cost (0: the item was kept)."""
        self.problems.append({"file": str(file), "line": line, "reason": reason})
        self.stats["skipped"] += skipped

    def make(self, file: str | os.PathLike, line: int | None, **fields: Any) -> Sample | None:
        """Build a Sample with ``source`` and ``meta["origin"]`` set; a problem if invalid."""
        meta = dict(fields.pop("meta", None) or {})
        meta["origin"] = f"{file}:{line}" if line is not None else str(file)
        try:
            return Sample(source=self.kind, meta=meta, **fields)
        except (ValueError, TypeError) as e:
            self.problem(file, line, str(e))
            return None

    # ---- paths --------------------------------------------------------------------------
    def resolve_media(self, root: str | os.PathLike, rel: str, file: str | os.PathLike,
                      line: int | None, kind: str | None = None) -> dict[str, str] | None:
        """``{kind: absolute path}`` for a path from an annotation file, or None (skip the row).

        Unsafe paths and unknown media types always skip the row. A missing file skips it too,
        unless ``require_media=False``: then the problem is recorded and ``{}`` returned.
        """
        try:
            path = safe_join(root, rel)
        except InputError as e:
            self.problem(file, line, f"rejected path {rel!r}: {e.reason}")
            return None
        if kind is None and media_kind(path) is None and path.is_file():
            # An unlisted extension (.flv, .3gp, none): the one router decides by content
            # (affectllm.io.item.route), so whatever PyAV opens is accepted. A listed extension is
            # trusted here (no probe per row of a 100k-row set); decoding checks it later.
            try:
                kind = route(path, media_only=True)
            except InputError as e:
                self.problem(file, line, f"{rel!r}: {e.reason}")
                return None
        kind = kind or media_kind(path)
        if kind is None:
            self.problem(file, line, f"{rel!r}: not a known image/audio/video file type")
            return None
        if not path.is_file():
            if self.require_media:
                self.problem(file, line, f"missing media file {rel!r} (under {root})")
                return None
            self.problem(file, line, f"missing media file {rel!r} (kept without it)", skipped=0)
            return {}
        return {kind: str(path)}

    # ---- readers ------------------------------------------------------------------------
    def _text(self, value: str, file: Path) -> str:
        # Files are decoded as UTF-8 with surrogateescape so one stray byte does not kill a
        # 40k-row file; such values are re-decoded as Windows-1252 (what MELD-era CSVs use).
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            if str(file) not in self._decode_noted:
                self._decode_noted.add(str(file))
                self.problem(file, None, "not valid UTF-8; affected values decoded as "
                             "Windows-1252", skipped=0)
            return value.encode("utf-8", "surrogateescape").decode("cp1252", errors="replace")

    def read_csv(self, file: str | os.PathLike, *, delimiter: str = ",",
                 required: tuple[str, ...] = (), header: list[str] | None = None,
                 ) -> Iterator[tuple[int, dict[str, str]]]:
        """Rows of a CSV/TSV as ``(line number, {column: stripped value})``.

        Column names are stripped (some sets write ``" Usage"``). Missing required columns
        skip the file with one problem; rows with too many or too few fields are reported.
        ``header`` reads a file without a header row (TSVs such as GoEmotions).
        """
        file = Path(file)
        quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
        with open(file, encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
            reader = csv.reader(f, delimiter=delimiter, quoting=quoting)
            prev = 0
            if header is None:
                try:
                    header = [h.strip() for h in next(reader)]
                except (StopIteration, csv.Error) as e:
                    self.problem(file, 1, f"no header row ({e or 'empty file'})", skipped=0)
                    return
                prev = reader.line_num
            missing = [c for c in required if c not in header]
            if missing:
                n = sum(1 for _ in reader)
                self.problem(file, 1, f"missing column(s) {missing}; file skipped "
                             f"({n} row(s)); columns are {header}", skipped=n)
                return
            while True:
                try:
                    fields = next(reader)
                except StopIteration:
                    break
                except csv.Error as e:  # e.g. a field over the csv module's size limit
                    self.problem(file, prev + 1, f"unreadable CSV row: {e}")
                    prev = reader.line_num
                    continue
                start, prev = prev + 1, reader.line_num
                if not fields or fields == [""]:
                    continue  # blank line: not an item
                if len(fields) != len(header):
                    self.problem(file, start, f"{len(fields)} field(s), expected {len(header)}")
                    continue
                yield start, {h: self._text(v, file).strip() for h, v in zip(header, fields)}

    def read_jsonl(self, file: str | os.PathLike) -> Iterator[tuple[int, dict]]:
        """Objects of a JSON Lines file as ``(line number, dict)``; bad lines are reported."""
        file = Path(file)
        for n, obj, problem in jsonl.iter_lines(file, torn="report"):
            if problem:
                self.problem(file, n, problem)
            else:
                yield n, obj

    def read_json_items(self, file: str | os.PathLike) -> Iterator[tuple[int, dict]]:
        """Items of a JSON file holding a list of objects, as ``(item number, dict)``.

        JSON arrays carry no usable line numbers, so problems name the 1-based item number in
        the ``line`` field (the reason says "item N").
        """
        file = Path(file)
        try:
            data = json.loads(io.open(file, encoding="utf-8-sig").read())
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            self.problem(file, getattr(e, "lineno", None), f"not valid JSON: {e}; file skipped")
            return
        if isinstance(data, dict):  # some exports wrap the list: {"data": [...]} / {"annotations": [...]}
            lists = [v for v in data.values() if isinstance(v, list)]
            data = lists[0] if len(lists) == 1 else data
        if not isinstance(data, list):
            self.problem(file, None, "expected a JSON list of objects; file skipped")
            return
        for n, obj in enumerate(data, 1):
            if not isinstance(obj, dict):
                self.problem(file, n, f"item {n}: expected an object, got {type(obj).__name__}")
                continue
            yield n, obj
