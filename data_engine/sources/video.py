"""Readers for video emotion sets users bring: MELD and EMER.

- ``meld:CSV_OR_DIR`` -- MELD.Raw ``train_sent_emo.csv`` / ``dev_sent_emo.csv`` /
  ``test_sent_emo.csv`` (Sr No., Utterance, Speaker, Emotion, Sentiment, Dialogue_ID,
  Utterance_ID, Season, Episode, StartTime, EndTime). Video ``dia{D}_utt{U}.mp4`` in
  ``train_splits/``, ``dev_splits_complete/``, ``output_repeated_splits_test/`` (or
  ``video_dir=``). Emotions: neutral, joy (-> happiness), sadness, anger, surprise, fear, disgust.
  The CSVs are partly Windows-1252: such values are re-decoded and the file noted once.
- ``emer:CSV_OR_DIR`` -- EMER (Lian et al., "Explainable Multimodal Emotion Reasoning"):
  v2 ``final-EMER-reason.csv`` (name, chinese, english) or v1 ``gt-eng.csv`` (names, emotions,
  subtitles, reasons). The English reference rationale goes to ``meta["rationale"]`` (ROUGE-L
  reference), the Chinese one to ``meta["rationale_zh"]``. v2 has no label column: pass
  ``labels=`` a MER2023 label CSV (name + discrete/emotion column). MER2023 labels: neutral,
  angry, happy, sad, surprise, worried; "worried" maps to fear (Ekman's fear family holds
  worry/anxiety) with the original kept in ``meta["orig_label"]``. Videos ``{name}.avi|.mp4``
  under ``video_dir=`` (default ``video/`` beside the CSV).

What they deliberately do not do: decode video or audio, or read the MELD test split unless
asked (``splits=`` names what to read; default: train and dev).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

from affectllm.errors import InputError
from data_engine.sample import Sample
from affectllm.io.files import safe_join
from data_engine.sources.base import MEDIA_EXTENSIONS, Source, normalize_split
from data_engine.sources.labels import label_flags

MELD_NAMES = {"neutral": "neutral", "joy": "happiness", "sadness": "sadness", "anger": "anger",
              "surprise": "surprise", "fear": "fear", "disgust": "disgust"}
MELD_FILES = {"train": ("train_sent_emo.csv", "train_splits"),
              "dev": ("dev_sent_emo.csv", "dev_splits_complete"),
              "test": ("test_sent_emo.csv", "output_repeated_splits_test")}
MER_NAMES = {"neutral": "neutral", "angry": "anger", "happy": "happiness", "sad": "sadness",
             "surprise": "surprise", "worried": "fear"}


class MELDSource(Source):
    """MELD utterance CSVs (Friends) + dia{D}_utt{U}.mp4 clips; speaker names."""

    kind = "meld"

    def __init__(self, path: str | os.PathLike, *, splits: tuple[str, ...] | str = ("train", "dev"),
                 video_dir: str | os.PathLike | None = None, **base: Any):
        super().__init__(path, **base)
        self.video_dir = Path(video_dir) if video_dir else None
        if self.path.is_file():
            split = next((s for s, (name, _) in MELD_FILES.items() if self.path.name == name), None)
            if split is None:
                split = next((s for s in MELD_FILES if self.path.name.startswith(s)), None)
            self.files = [(split, self.path)]
        else:
            wanted = (splits,) if isinstance(splits, str) else tuple(splits)
            bad = [s for s in wanted if s not in MELD_FILES]
            if bad:
                raise ValueError(f"meld splits {bad} not in {list(MELD_FILES)}")
            self.files = [(s, self.path / MELD_FILES[s][0]) for s in wanted
                          if (self.path / MELD_FILES[s][0]).is_file()]
            if not self.files:
                raise InputError(self.path, f"no MELD CSV for splits {wanted}")

    def _videos(self, split: str | None, csv_file: Path) -> Path:
        if self.video_dir:
            return self.video_dir
        if split:
            d = csv_file.parent / MELD_FILES[split][1]
            if d.is_dir():
                return d
        return csv_file.parent

    def _samples(self) -> Iterator[Sample]:
        required = ("Utterance", "Speaker", "Emotion", "Dialogue_ID", "Utterance_ID")
        for split, file in self.files:
            videos = self._videos(split, file)
            for line, row in self.read_csv(file, required=required):
                label = MELD_NAMES.get(row["Emotion"].lower())
                if label is None:
                    self.problem(file, line, f"emotion {row['Emotion']!r} not a MELD emotion")
                    continue
                try:
                    dia, utt = int(row["Dialogue_ID"]), int(row["Utterance_ID"])
                except ValueError:
                    self.problem(file, line, "Dialogue_ID / Utterance_ID not integers")
                    continue
                name = f"dia{dia}_utt{utt}"
                media = self.resolve_media(videos, f"{name}.mp4", file, line)
                if media is None:
                    continue
                meta = {k.lower().replace(" ", "_").rstrip("."): row[k] for k in
                        ("Sentiment", "Season", "Episode", "StartTime", "EndTime", "Sr No.")
                        if row.get(k)}
                meta.update(dialogue=dia, utterance=utt, **label_flags([label]))
                s = self.make(file, line, id=f"meld/{split or file.stem}/{name}", media=media,
                              text=row["Utterance"], labels=[label], split=split,
                              speaker=row["Speaker"] or None, meta=meta)
                if s:
                    yield s


def _first(row: dict[str, str], *names: str) -> str | None:
    return next((row[n] for n in names if row.get(n)), None)


class EMERSource(Source):
    """EMER reasoning CSV (v1 or v2); reference rationale in meta for ROUGE-L."""

    kind = "emer"

    def __init__(self, path: str | os.PathLike, *, labels: str | os.PathLike | None = None,
                 video_dir: str | os.PathLike | None = None, split: str | None = None, **base: Any):
        super().__init__(path, **base)
        if self.path.is_file():
            self.csv = self.path
        else:
            self.csv = next((self.path / n for n in ("final-EMER-reason.csv", "gt-eng.csv")
                             if (self.path / n).is_file()), None)
            if self.csv is None:
                raise InputError(self.path, "no final-EMER-reason.csv or gt-eng.csv")
        default_videos = self.csv.parent / "video"
        self.video_dir = Path(video_dir) if video_dir else (
            default_videos if default_videos.is_dir() else self.csv.parent)
        self.labels_csv = Path(labels) if labels else None
        self.split = normalize_split(split)

    def _label_table(self) -> dict[str, str]:
        table: dict[str, str] = {}
        if self.labels_csv is None:
            return table
        for line, row in self.read_csv(self.labels_csv):
            name, lab = _first(row, "name", "names"), _first(row, "discrete", "emotion", "emotions", "label")
            if not name or not lab:
                self.problem(self.labels_csv, line, "label row needs name and discrete/emotion",
                             skipped=0)
                continue
            table[name] = lab
        return table

    def _video(self, name: str, file: Path, line: int) -> dict[str, str] | None:
        try:  # the name comes from the CSV: it must not lead out of the video folder
            safe_join(self.video_dir, name)
        except InputError as e:
            self.problem(file, line, f"rejected name {name!r}: {e.reason}")
            return None
        for ext in sorted(MEDIA_EXTENSIONS["video"]):
            if (self.video_dir / f"{name}{ext}").is_file():
                return self.resolve_media(self.video_dir, f"{name}{ext}", file, line)
        if self.require_media:
            self.problem(file, line, f"no video {name}.* in {self.video_dir}")
            return None
        self.problem(file, line, f"no video {name}.* (kept without it)", skipped=0)
        return {}

    def _samples(self) -> Iterator[Sample]:
        table, file = self._label_table(), self.csv
        for line, row in self.read_csv(file):
            name = _first(row, "name", "names")
            rationale = _first(row, "english", "reasons", "reason")
            if not name or not (rationale or row.get("chinese")):
                self.problem(file, line, "row needs a name and a reason (english/reasons/chinese)")
                continue
            raw = _first(row, "emotions", "emotion", "discrete", "label") or table.get(name)
            labels, meta = [], {"rationale": rationale or ""}
            if row.get("chinese"):
                meta["rationale_zh"] = row["chinese"]
            if raw:
                label = MER_NAMES.get(raw.strip().lower())
                if label is None:
                    self.problem(file, line, f"label {raw!r} not a MER2023 emotion "
                                 f"({sorted(MER_NAMES)})")
                    continue
                labels = [label]
                meta["orig_label"] = raw
            media = self._video(name, file, line)
            if media is None:
                continue
            s = self.make(file, line, id=f"emer/{name}", media=media,
                          text=row.get("subtitles") or None, labels=labels, split=self.split,
                          meta=meta)
            if s:
                yield s
