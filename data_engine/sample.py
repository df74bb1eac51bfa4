"""One dataset item, as every reader in ``data_engine.sources`` yields it.

A :class:`Sample` is the common currency between the dataset readers and the rest of the data
engine (perception, prompting, record building) and eval. It holds *references* (media paths)
and gold annotations, never decoded pixels or waveforms: decoding belongs to ``affectllm.io``.

What it deliberately does not do: read files, check that media exist (the readers do that,
against the dataset root), or know any dataset's label codes (each reader maps its own codes to
affectllm taxonomy names before building a Sample).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

MODALITIES = ("image", "audio", "video")
SPLITS = ("train", "dev", "test")


@dataclass
class Sample:
    """A labelled (or unlabelled) item from one dataset.

    ``labels`` is a list because some sets are multi-label (GoEmotions); an empty list means
    unlabelled (kept, never dropped). ``gold_aus`` maps ``"AU12"`` to a 0-5 intensity, or to
    None when the set only says the AU is present.
    """

    id: str  # unique within its source, prefixed by the source kind ("emodb/03a01Fa")
    media: dict[str, str] = field(default_factory=dict)  # "image"|"audio"|"video" -> absolute path
    text: str | None = None  # transcript / utterance / comment, when the set has one
    labels: list[str] = field(default_factory=list)  # affectllm taxonomy names, first = primary
    gold_aus: dict[str, float | None] | None = None  # None: the set has no AU annotation
    split: str | None = None  # "train" | "dev" | "test" | None (not assigned yet)
    speaker: str | None = None  # speaker / subject / identity: the unit of disjoint splits
    source: str = ""  # reader kind that produced it ("emodb", "manifest", ...)
    meta: dict[str, Any] = field(default_factory=dict)  # everything else (rationale, bbox, ...)

    def __post_init__(self) -> None:
        # Fail at construction: a bad Sample would otherwise surface far downstream.
        if not self.id:
            raise ValueError("Sample.id must be a non-empty string")
        bad = set(self.media) - set(MODALITIES)
        if bad:
            raise ValueError(f"{self.id}: unknown media kind(s) {sorted(bad)}; use {MODALITIES}")
        if self.split is not None and self.split not in SPLITS:
            raise ValueError(f"{self.id}: split {self.split!r} not in {SPLITS}")
        if isinstance(self.labels, str):
            raise TypeError(f"{self.id}: labels must be a list, got the string {self.labels!r}")
        self.labels = list(self.labels)

    @property
    def label(self) -> str | None:
        """The primary label (first of :attr:`labels`), or None when unlabelled."""
        return self.labels[0] if self.labels else None

    @property
    def subject(self) -> str | None:
        """Alias of :attr:`speaker` for face sets, where the unit is a person photographed."""
        return self.speaker

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(m for m in MODALITIES if m in self.media)

    def replace(self, **changes: Any) -> "Sample":
        """A copy with some fields changed (meta and media are copied, not shared)."""
        changes.setdefault("meta", dict(self.meta))
        changes.setdefault("media", dict(self.media))
        return dataclasses.replace(self, **changes)

    def to_item(self):
        """The perception :class:`affectllm.io.item.Item` of this sample (its media, text and meta)."""
        from affectllm.io.item import Item

        return Item(id=self.id, text=self.text, meta=dict(self.meta), **dict(self.media))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict (what JSONL exports and caches store)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Sample":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown Sample field(s): {sorted(unknown)}")
        return cls(**d)
