"""Generic readers for data users bring: a folder per class, or a manifest file.

- ``imagefolder:DIR`` -- ``DIR/<class>/<files>``; or ``DIR/<split>/<class>/<files>`` when every
  top-level folder is a split name (train, val/valid/dev, test). Class folder names are mapped
  to taxonomy names ("angry" -> "anger"); unknown names are kept and flagged.
- ``manifest:FILE`` -- CSV, TSV, JSONL or a JSON list. Columns: ``path`` (media kind sniffed from
  the extension) and/or ``image`` / ``audio`` / ``video``, ``text``, ``label`` / ``labels`` / ``emotion``
  (``"a|b"`` or a JSON list: multi-label), ``aus`` (``"AU6:3,AU12:4"``, a list or a dict),
  ``split``, ``speaker`` or ``subject``, ``id``; other columns go to ``meta``. Paths are
  relative to ``root=`` (default: the manifest's folder) and must stay inside it.

What they deliberately do not do: guess labels from file names, or follow paths out of the root.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Iterator

from data_engine.sample import Sample
from affectllm.io.files import safe_join
from data_engine.sources.base import SPLIT_ALIASES, Source, normalize_split
from data_engine.sources.labels import map_labels, parse_aus
from affectllm.errors import InputError

MEDIA_COLUMNS = ("image", "audio", "video")
KNOWN_COLUMNS = {"id", "path", *MEDIA_COLUMNS, "text", "label", "labels", "emotion", "aus",
                 "split", "speaker", "subject"}


class ImageFolderSource(Source):
    """A folder per class (torchvision ImageFolder layout), optionally under split folders."""

    kind = "imagefolder"

    def __init__(self, path: str | os.PathLike, *, split: str | None = None, **base: Any):
        super().__init__(path, **base)
        if not self.path.is_dir():
            raise InputError(self.path, "imagefolder needs a directory")
        self.split = normalize_split(split)

    def _samples(self) -> Iterator[Sample]:
        root = self.path.resolve()
        tops = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
        if tops and all(d.name.lower() in SPLIT_ALIASES for d in tops):
            layout = [(SPLIT_ALIASES[d.name.lower()], d) for d in tops]
        else:
            layout = [(self.split, root)]
        for split, base in layout:
            for f in sorted(p for p in base.iterdir() if not p.is_dir()):
                self.problem(f, None, "file outside any class folder (no label)")
            for class_dir in sorted(d for d in base.iterdir() if d.is_dir()):
                yield from self._class_folder(root, class_dir, split)

    def _class_folder(self, root: Path, class_dir: Path, split: str | None) -> Iterator[Sample]:
        labels, flags = map_labels([class_dir.name])
        for f in self._walk(root, class_dir):
            rel = f.relative_to(root).as_posix()
            media = self.resolve_media(root, rel, f, None)
            if media is None:
                continue
            s = self.make(rel, None, id=f"{self.kind}/{Path(rel).with_suffix('').as_posix()}",
                          media=media, labels=labels, split=split,
                          meta={"class_folder": class_dir.name, **flags})
            if s:
                yield s

    def _walk(self, root: Path, top: Path) -> Iterator[Path]:
        # Walk without trusting symlinked folders: one that points out of root is reported.
        for d, dirs, files in os.walk(top, followlinks=False):
            for name in sorted(dirs):
                sub = Path(d) / name
                if sub.is_symlink():
                    try:
                        safe_join(root, sub.relative_to(root).as_posix())
                    except InputError as e:
                        self.problem(sub, None, f"symlinked folder not followed: {e.reason}")
                        continue
                    yield from self._walk(root, sub)
            dirs.sort()
            for name in sorted(files):
                yield Path(d) / name


def _split_labels(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    text = str(value).strip()
    if text.startswith("["):  # a JSON list written into a CSV cell
        try:
            return [str(v) for v in json.loads(text)]
        except json.JSONDecodeError:
            pass
    return [t for t in re.split(r"[|;,]", text) if t.strip()]


class ManifestSource(Source):
    """A CSV / TSV / JSONL / JSON manifest listing media paths, labels, text and AUs."""

    kind = "manifest"

    def __init__(self, path: str | os.PathLike, *, root: str | os.PathLike | None = None,
                 split: str | None = None, **base: Any):
        super().__init__(path, **base)
        if not self.path.is_file():
            raise InputError(self.path, "manifest must be a file (.csv, .tsv, .jsonl, .json)")
        self.root = Path(root).expanduser().resolve() if root else self.path.resolve().parent
        self.split = normalize_split(split)

    def _rows(self) -> Iterator[tuple[int, dict[str, Any]]]:
        ext = self.path.suffix.lower()
        if ext in (".jsonl", ".ndjson"):
            yield from self.read_jsonl(self.path)
        elif ext == ".json":
            yield from self.read_json_items(self.path)
        elif ext in (".csv", ".tsv", ".txt"):
            delim = "\t" if ext == ".tsv" else ","
            with open(self.path, encoding="utf-8-sig", errors="replace") as f:
                cols = {c.strip() for c in f.readline().split(delim)}
            if not cols & {"path", "text", *MEDIA_COLUMNS}:
                self.problem(self.path, 1, f"missing column: need 'path' (or image/audio/video)"
                             f" or 'text'; columns are {sorted(cols)}; file skipped",
                             skipped=max(0, sum(1 for _ in open(self.path, "rb")) - 1))
                return
            yield from self.read_csv(self.path, delimiter=delim)
        else:
            raise InputError(self.path, f"unknown manifest type {ext!r} (.csv .tsv .jsonl .json)")

    def _samples(self) -> Iterator[Sample]:
        file = self.path
        for line, row in self._rows():
            row = {k.strip(): v for k, v in row.items()}
            s = self._row(file, line, row)
            if s:
                yield s

    def _row(self, file: Path, line: int, row: dict[str, Any]) -> Sample | None:
        media: dict[str, str] = {}
        for col in ("path", *MEDIA_COLUMNS):
            rel = row.get(col)
            if rel in (None, ""):
                continue
            m = self.resolve_media(self.root, str(rel), file, line,
                                   kind=None if col == "path" else col)
            if m is None:
                return None
            media.update(m)
        text = row.get("text") or None
        if not media and text is None and not any(row.get(c) for c in ("path", *MEDIA_COLUMNS)):
            self.problem(file, line, "row has neither a media path nor text")
            return None
        try:
            labels, flags = map_labels(_split_labels(
                next((row[c] for c in ("labels", "label", "emotion") if c in row), None)))
            aus = parse_aus(row.get("aus"))
            split = normalize_split(row.get("split")) or self.split
        except ValueError as e:
            self.problem(file, line, str(e))
            return None
        first = next(iter(row.get(c) for c in ("path", *MEDIA_COLUMNS) if row.get(c)), None)
        sid = row.get("id") or (Path(str(first)).with_suffix("").as_posix() if first
                                else f"line{line}")
        meta = {k: v for k, v in row.items() if k not in KNOWN_COLUMNS and v not in (None, "")}
        speaker = row.get("speaker") or row.get("subject") or None
        return self.make(file, line, id=f"{self.kind}/{sid}", media=media,
                         text=str(text) if text is not None else None, labels=labels,
                         gold_aus=aus, split=split,
                         speaker=str(speaker) if speaker is not None else None,
                         meta={**meta, **flags})
