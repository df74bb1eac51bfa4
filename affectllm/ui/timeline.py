"""The timeline of an uploaded video for the UI: a PNG, AU onset/apex per face, and a citable text.

    tl = video_timeline("clip.mp4")        # VideoTimeline(png, events, text, table)
    tl.text    # "face 0 (472 frames): AU12 onset 0.71 s, apex 18.56 s, peak 5.0 (E); ..."

Runs the per-frame table (``perception.frames`` through ``commands.perceive.frames_to_table``)
into a temporary folder at ``fps`` frames a second (default 10: an uploaded clip is short, and
a timeline does not need every frame), draws ``perception.timeline.timeline_png`` and lists, per
face, the AUs that reach presence with their onset, apex and peak. The text is what an
explanation of a video should cite for "when": times come from the table, not from the model.

Not here: the gradio layout (``app.py`` places the PNG and passes ``text`` to the explainer),
the live webcam stream (``perception.live``).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from affectllm.knowledge.facs import AU_NAMES, intensity_letter

MAX_AUS_IN_TEXT = 6  # per face, highest peaks first


@dataclass
class VideoTimeline:
    png: bytes
    events: dict  # face_id -> AU -> {"onset_s", "apex_s", "peak", "frames"}
    text: str
    n_rows: int


def events_text(events: dict, frames_per_face: dict[int, int] | None = None) -> str:
    """One line per face: "face 0 (n frames): AU12 (lip corner puller) onset 1.2 s, apex 2.0 s, peak 3.1 (C); ..."."""
    if not events:
        return "No face was found in the video."
    lines = []
    for fid, ev in events.items():
        head = f"face {fid}" + (f" ({frames_per_face[fid]} frames)" if frames_per_face and fid in frames_per_face else "")
        if not ev:
            lines.append(f"{head}: no AU reaches presence")
            continue
        top = sorted(ev.items(), key=lambda kv: -kv[1]["peak"])[:MAX_AUS_IN_TEXT]
        parts = [f"{au} ({AU_NAMES.get(au, '?')}) onset {e['onset_s']:.2f} s, apex {e['apex_s']:.2f} s, "
                 f"peak {e['peak']:.1f} ({intensity_letter(e['peak'])})" for au, e in top]
        lines.append(f"{head}: " + "; ".join(parts))
    return "\n".join(lines)


def video_timeline(path: str | Path, fps: float | None = 10.0, max_faces: int = 4, face=None) -> VideoTimeline:
    """Timeline of one video (module doc). ``face``: a ``FacePerceiver`` to reuse. Raises ``InputError``."""
    from affectllm.commands.perceive import frames_to_table
    from affectllm.perception.frame_table import read_table
    from affectllm.perception.timeline import au_events, timeline_png

    with tempfile.TemporaryDirectory(prefix="affectllm_timeline_") as tmp:
        table, n = frames_to_table(str(path), str(Path(tmp) / "frames.csv"), fps=fps, max_faces=max_faces,
                                   progress=False, face=face)
        df = read_table(table)
    events = au_events(df)
    counts = df[df.success == 1].groupby("face_id").size().to_dict()
    return VideoTimeline(png=timeline_png(df, title=Path(path).name), events=events,
                         text=events_text(events, {int(k): int(v) for k, v in counts.items()}), n_rows=n)
