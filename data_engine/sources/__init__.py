"""Dataset readers: ``open_source("KIND:PATH", **opts)`` -> a :class:`Source` of Samples.

    >>> src = open_source("emodb")                       # shipped data, under AFFECTLLM_DATA
    >>> src = open_source("manifest:my/data.csv", root="my/media")
    >>> samples = list(src); src.problems, src.stats     # what was skipped, and why

KIND names a reader (see :data:`SOURCES`); PATH is its file or folder. For the sets shipped in
``shared/data`` (emodb, goemotions, faces_demo, faces_london) PATH may be left out. Options are
the reader's keyword arguments; every reader accepts ``require_media`` (default True: an item
whose media file is missing is skipped and reported; False keeps it without that media).

Every Source records malformed rows in ``source.problems`` (``{"file", "line", "reason"}``)
and skips them; ``source.stats`` counts yielded / skipped / unlabelled items.

What this package deliberately does not do: decode media, run perception, or build training
records -- those consume Samples downstream.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from affectllm.paths import data_root
from data_engine.sample import Sample
from data_engine.sources.base import Source, media_kind
from data_engine.sources.disfa import DISFASource
from data_engine.sources.faces import AffectNetSource, FER2013Source, RAFDBSource
from data_engine.sources.generic import ImageFolderSource, ManifestSource
from data_engine.sources.reasoning import ExpLLMSource, FacialR1Source
from data_engine.sources.shipped import (EMODB_DEV_SPEAKERS, EmoDBSource, FacesDemoSource,
                                         FacesLondonSource, GoEmotionsSource)
from data_engine.sources.splits import assign_splits, emodb_split, split_overlap
from data_engine.sources.video import EMERSource, MELDSource

SOURCES: dict[str, type[Source]] = {cls.kind: cls for cls in (
    ImageFolderSource, ManifestSource,
    EmoDBSource, GoEmotionsSource, FacesDemoSource, FacesLondonSource,
    RAFDBSource, AffectNetSource, FER2013Source, DISFASource, MELDSource, EMERSource,
    ExpLLMSource, FacialR1Source,
)}


def open_source(spec: str, **opts: Any) -> Source:
    """The reader for ``"KIND:PATH"`` (or ``"KIND"`` for data shipped in shared/data).

    Raises ValueError for an unknown kind (listing the known ones), TypeError for an option the
    reader does not take, and :class:`~affectllm.errors.InputError` when PATH does not exist.
    """
    kind, _, path = str(spec).partition(":")
    kind = kind.strip().lower()
    if kind not in SOURCES:
        raise ValueError(f"unknown source kind {kind!r}; known: {', '.join(sorted(SOURCES))}")
    cls = SOURCES[kind]
    if not path.strip():
        if cls.default_subdir is None:
            raise ValueError(f"{kind} needs a path: '{kind}:PATH'")
        root = data_root(required=True)
        return cls(root / cls.default_subdir, **opts)
    return cls(Path(path.strip()), **opts)


def list_sources() -> dict[str, str]:
    """Kind -> first docstring line of its reader class or module (for ``--help`` texts)."""
    out = {}
    for kind, cls in sorted(SOURCES.items()):
        doc = (cls.__doc__ or "").strip() or (__import__(cls.__module__, fromlist=["x"]).__doc__
                                              or "").strip()
        out[kind] = doc.splitlines()[0] if doc else ""
    return out


__all__ = ["SOURCES", "Sample", "Source", "open_source", "list_sources", "assign_splits",
           "emodb_split", "split_overlap", "media_kind", "EMODB_DEV_SPEAKERS"]
