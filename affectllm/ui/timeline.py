"""The timeline of an uploaded video for the UI: a PNG, AU onset/apex of the tracked face, and a citable text.

    tl = obs_timeline(obs)     # VideoTimeline(png, events, text, n_rows), or None without a video timeline
    tl.text    # "face 0 (20 frames): AU12 (lip corner puller) onset 0.60 s, apex 1.80 s, peak 3.1 (C); ..."

Built from the Observations the explainer already has (``VideoObs.timeline``, the frames that
``perception.video`` analysed): no second decode of the video. The per-frame table comes from
``frame_table.video_table``; ``perception.timeline`` draws it and reads each AU's onset, apex
and peak, which are the ``au_summary`` times the rationale cites (the same frames, the same
rounding), so the chart, this text and the explanation agree.

Not here: the gradio layout (``app.py`` places the PNG and shows ``text``), the live webcam
stream (``perception.live``), the multi-face table of a long video (``affectllm perceive --frames``).
"""

from __future__ import annotations

from dataclasses import dataclass

from affectllm.knowledge.facs import AU_NAMES, intensity_letter

MAX_AUS_IN_TEXT = 6  # per face, highest peaks first


@dataclass
class VideoTimeline:
    png: bytes  # the AU and expression chart (PNG file bytes)
    events: dict  # face_id -> AU -> {"onset_s", "apex_s", "peak", "frames"}
    text: str  # events_text(events): one line per face
    n_rows: int  # analysed frames (rows of the per-frame table)


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


def obs_timeline(obs, title: str = "") -> VideoTimeline | None:
    """The timeline of ``obs.video`` (module doc); None when there is no video or it kept no timeline
    (a video perceived with face analysis off, or a cache entry from before timelines were kept)."""
    from affectllm.perception.frame_table import video_table
    from affectllm.perception.timeline import au_events, timeline_png

    video = getattr(obs, "video", None)
    if video is None or not (video.timeline or {}).get("t"):
        return None
    df = video_table(video)
    events = au_events(df, min_frames=1)  # one tracked face: every frame it was found in counts
    n_face = int((df.success == 1).sum())
    if not title and getattr(obs, "file", None):
        from pathlib import Path

        title = Path(obs.file).name
    return VideoTimeline(png=timeline_png(df, title=title, min_frames=1), events=events,
                         text=events_text(events, {0: n_face} if n_face else None), n_rows=len(df))
