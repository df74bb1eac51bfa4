"""Readers for facial-expression sets users bring: RAF-DB, AffectNet, FER2013.

- ``rafdb:DIR`` -- RAF-DB ``basic/`` folder: ``EmoLabel/list_patition_label.txt`` lines
  ``"train_00001.jpg 5"`` (1 Surprise, 2 Fear, 3 Disgust, 4 Happiness, 5 Sadness, 6 Anger,
  7 Neutral); images ``Image/aligned/train_00001_aligned.jpg`` (``aligned=False``:
  ``Image/original/train_00001.jpg``). Split from the name prefix (train_/test_).
  ``DIR`` may also be the list file itself.
- ``affectnet:CSV_OR_DIR`` -- AffectNet ``training.csv`` / ``validation.csv`` (subDirectory_
  filePath, face_x, face_y, face_width, face_height, facial_landmarks, expression, valence,
  arousal); expression 0 Neutral 1 Happy 2 Sad 3 Surprise 4 Fear 5 Disgust 6 Anger 7 Contempt;
  8 None / 9 Uncertain / 10 No-Face are skipped with a reason. Images under
  ``Manually_Annotated_Images/`` (or ``images=``). The validation file is the de-facto AffectNet
  *test* set (the real test set was never released), so it is marked ``test``.
- ``fer2013:CSV_OR_DIR`` -- ``fer2013.csv`` (emotion, pixels, Usage); the 48x48 grey pixels are
  decoded once to PNG files in a cache folder keyed by the CSV's SHA-256 (built atomically).
  Usage Training / PublicTest / PrivateTest -> train / dev / test.

What they deliberately do not do: crop or align faces (the face perception module does), or
keep AffectNet's 8-10 non-emotion codes as labels.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from PIL import Image

from affectllm.errors import InputError
from affectllm.io.files import atomic_dir, is_complete, sha256_file
from affectllm.paths import cache_dir
from data_engine.sample import Sample
from data_engine.sources.base import Source, normalize_split
from data_engine.sources.labels import label_flags

RAFDB_CODES = {1: "surprise", 2: "fear", 3: "disgust", 4: "happiness", 5: "sadness",
               6: "anger", 7: "neutral"}
AFFECTNET_CODES = {0: "neutral", 1: "happiness", 2: "sadness", 3: "surprise", 4: "fear",
                   5: "disgust", 6: "anger", 7: "contempt"}
AFFECTNET_NON_EMOTION = {8: "None", 9: "Uncertain", 10: "No-Face"}
FER2013_CODES = {0: "anger", 1: "disgust", 2: "fear", 3: "happiness", 4: "sadness",
                 5: "surprise", 6: "neutral"}
FER2013_USAGE = {"Training": "train", "PublicTest": "dev", "PrivateTest": "test"}


def _int(value: str) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class RAFDBSource(Source):
    """RAF-DB basic: list_patition_label.txt (labels 1-7) + aligned images."""

    kind = "rafdb"

    def __init__(self, path: str | os.PathLike, *, aligned: bool = True,
                 images: str | os.PathLike | None = None, **base: Any):
        super().__init__(path, **base)
        if self.path.is_file():
            self.list_file = self.path
            parent = self.path.parent
            self.root = parent.parent if parent.name == "EmoLabel" else parent
        else:
            self.root = self.path
            self.list_file = next((p for p in (self.path / "EmoLabel" / "list_patition_label.txt",
                                               self.path / "list_patition_label.txt")
                                   if p.is_file()), None)
            if self.list_file is None:
                raise InputError(self.path, "no EmoLabel/list_patition_label.txt in RAF-DB folder")
        self.aligned = aligned
        sub = "aligned" if aligned else "original"
        self.images = Path(images) if images else self.root / "Image" / sub

    def _samples(self) -> Iterator[Sample]:
        file = self.list_file
        with open(file, encoding="utf-8-sig", errors="replace") as f:
            lines = f.read().splitlines()
        for line, text in enumerate(lines, 1):
            parts = text.split()
            if not parts:
                continue
            code = _int(parts[1]) if len(parts) == 2 else None
            if code not in RAFDB_CODES:
                self.problem(file, line, f"expected 'NAME LABEL' with LABEL 1-7, got {text!r}")
                continue
            name = parts[0]
            stem, _, ext = name.rpartition(".")
            prefix = stem.split("_", 1)[0]
            if prefix not in ("train", "test") or not ext:
                self.problem(file, line, f"{name!r} is not a RAF-DB image name (train_/test_)")
                continue
            rel = f"{stem}_aligned.{ext}" if self.aligned else name
            media = self.resolve_media(self.images, rel, file, line)
            if media is None:
                continue
            label = RAFDB_CODES[code]
            s = self.make(file, line, id=f"rafdb/{stem}", media=media, labels=[label],
                          split=prefix, meta={"code": code, **label_flags([label])})
            if s:
                yield s


class AffectNetSource(Source):
    """AffectNet CSV (expression 0-7; 8-10 skipped with a reason) + images."""

    kind = "affectnet"

    def __init__(self, path: str | os.PathLike, *, images: str | os.PathLike | None = None,
                 split: str | None = None, **base: Any):
        super().__init__(path, **base)
        if self.path.is_file():
            self.files = [self.path]
        else:
            self.files = [p for p in (self.path / "training.csv", self.path / "validation.csv")
                          if p.is_file()]
            if not self.files:
                raise InputError(self.path, "no training.csv / validation.csv in AffectNet folder")
        base_dir = self.files[0].parent
        candidates = [Path(images)] if images else [
            base_dir / "Manually_Annotated_Images", base_dir.parent / "Manually_Annotated_Images",
            base_dir]
        self.images = next((c for c in candidates if c.is_dir()), candidates[0])
        self.split = normalize_split(split)

    def _file_split(self, file: Path) -> str | None:
        if self.split:
            return self.split
        name = file.stem.lower()
        return "train" if "train" in name else "test" if ("valid" in name or "test" in name) else None

    def _samples(self) -> Iterator[Sample]:
        for file in self.files:
            split = self._file_split(file)
            for line, row in self.read_csv(file, required=("subDirectory_filePath", "expression")):
                code = _int(row["expression"])
                if code in AFFECTNET_NON_EMOTION:
                    self.problem(file, line, f"expression {code} ({AFFECTNET_NON_EMOTION[code]}) "
                                 "is not an emotion label; skipped")
                    continue
                if code not in AFFECTNET_CODES:
                    self.problem(file, line, f"expression {row['expression']!r} not in 0-10")
                    continue
                media = self.resolve_media(self.images, row["subDirectory_filePath"], file, line)
                if media is None:
                    continue
                label = AFFECTNET_CODES[code]
                meta: dict[str, Any] = {"code": code, **label_flags([label])}
                box = [_float(row.get(k)) for k in ("face_x", "face_y", "face_width", "face_height")]
                if all(v is not None for v in box):
                    meta["face_box"] = box  # x, y, w, h in pixels
                for k in ("valence", "arousal"):
                    v = _float(row.get(k))
                    if v is not None and -1 <= v <= 1:  # -2 marks "not annotated"
                        meta[k] = v
                s = self.make(file, line, id=f"affectnet/{Path(row['subDirectory_filePath']).with_suffix('').as_posix()}",
                              media=media, labels=[label], split=split, meta=meta)
                if s:
                    yield s


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


class FER2013Source(Source):
    """FER2013 CSV (emotion, pixels, Usage); pixels decoded to cached PNG files."""

    kind = "fer2013"

    def __init__(self, path: str | os.PathLike, *, cache: str | os.PathLike | None = None,
                 **base: Any):
        super().__init__(path, **base)
        self.csv = self.path if self.path.is_file() else self.path / "fer2013.csv"
        if not self.csv.is_file():
            raise InputError(self.path, "no fer2013.csv")
        self.cache_root = Path(cache) if cache else cache_dir("fer2013")

    def _decode(self, file: Path, line: int, pixels: str) -> np.ndarray | None:
        try:
            arr = np.array(pixels.split(), dtype=np.int64)
        except ValueError:
            self.problem(file, line, "pixels are not all integers")
            return None
        if arr.size != 48 * 48:
            self.problem(file, line, f"{arr.size} pixel values, expected 2304 (48x48)")
            return None
        if arr.min() < 0 or arr.max() > 255:
            self.problem(file, line, "pixel values outside 0-255")
            return None
        return arr.reshape(48, 48).astype(np.uint8)

    def _samples(self) -> Iterator[Sample]:
        folder = self.cache_root / sha256_file(self.csv)[:16]
        if is_complete(folder):
            yield from self._rows(folder, None)
            return
        # First run: decode every row into a temp folder that becomes the cache only when
        # complete, then yield (so every yielded path exists).
        with atomic_dir(folder) as tmp:
            samples = list(self._rows(folder, tmp))
        yield from samples

    def _rows(self, folder: Path, build: Path | None) -> Iterator[Sample]:
        file = self.csv
        for line, row in self.read_csv(file, required=("pixels",)):
            labels: list[str] = []
            if "emotion" in row:  # the Kaggle test.csv has no emotion column: unlabelled
                code = _int(row["emotion"])
                if code not in FER2013_CODES:
                    self.problem(file, line, f"emotion {row['emotion']!r} not in 0-6")
                    continue
                labels = [FER2013_CODES[code]]
            split = None
            if row.get("Usage"):
                if row["Usage"] not in FER2013_USAGE:
                    self.problem(file, line, f"Usage {row['Usage']!r} not one of "
                                 f"{sorted(FER2013_USAGE)}")
                    continue
                split = FER2013_USAGE[row["Usage"]]
            img = self._decode(file, line, row["pixels"])
            if img is None:
                continue
            name = f"{line:06d}.png"
            if build is not None:
                Image.fromarray(img).save(build / name, format="PNG")
            elif not (folder / name).is_file():
                self.problem(file, line, f"cached image {folder / name} missing (delete the "
                             "cache folder to rebuild it)")
                continue
            s = self.make(file, line, id=f"fer2013/{line}", media={"image": str(folder / name)},
                          labels=labels, split=split, meta=label_flags(labels))
            if s:
                yield s
