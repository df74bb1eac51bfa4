"""The evidence perception hands to the LLM: one dataclass tree per input item.

``to_dict()`` is JSON-safe (tensors and landmark arrays are left out); ``to_text()`` is the
textualised evidence a small LLM reads. Feature tensors stay on the objects for the adapters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from affectllm.knowledge.facs import AU_NAMES, INTENSITY_WORDS, intensity_letter


@dataclass
class AUObs:
    au: str  # "AU12"
    intensity: float  # FACS-like 0-5 scale
    present: bool
    name: str = ""

    def __post_init__(self):
        if not self.name:
            self.name = AU_NAMES.get(self.au, "")

    @property
    def letter(self) -> str | None:
        return intensity_letter(self.intensity)

    def to_dict(self) -> dict:
        return {"au": self.au, "name": self.name, "intensity": round(float(self.intensity), 2),
                "present": bool(self.present), "letter": self.letter}

    def to_text(self) -> str:
        letter = self.letter
        if letter is None:
            return f"{self.au} {self.name} absent"
        return f"{self.au} {self.name}, intensity {letter} ({INTENSITY_WORDS[letter]})"


@dataclass
class FaceObs:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels
    score: float  # detector confidence 0-1
    pose: dict[str, float] = field(default_factory=dict)  # yaw, pitch, roll in degrees
    aus: list[AUObs] = field(default_factory=list)
    expression: dict[str, float] = field(default_factory=dict)  # Ekman-7 label -> probability
    flags: list[str] = field(default_factory=list)  # "small_face", "profile", "low_confidence"
    landmarks: Any = None  # np.ndarray [478 x 3], pixels (x, y) and relative depth
    embedding: Any = None  # torch.Tensor [d], expression network's penultimate features

    @property
    def present_aus(self) -> list[AUObs]:
        return [a for a in self.aus if a.present]

    def to_dict(self) -> dict:
        return {"box": [round(float(v), 1) for v in self.box], "score": round(float(self.score), 4),
                "pose": {k: round(float(v), 1) for k, v in self.pose.items()},
                "aus": [a.to_dict() for a in self.aus],
                "expression": {k: round(float(v), 4) for k, v in self.expression.items()},
                "flags": list(self.flags)}

    def to_text(self) -> str:
        present = sorted(self.present_aus, key=lambda a: -a.intensity)
        aus = "; ".join(a.to_text() for a in present) if present else "no action unit clearly active"
        parts = [f"Action units: {aus}."]
        if self.expression:
            top = sorted(self.expression.items(), key=lambda kv: -kv[1])[:3]
            parts.append("Expression classifier: " + ", ".join(f"{k} {v:.2f}" for k, v in top) + ".")
        if self.flags:
            parts.append("Caveats: " + ", ".join(f.replace("_", " ") for f in self.flags) + ".")
        return " ".join(parts)


@dataclass
class AudioObs:
    duration_s: float
    transcript: str = ""
    language: str | None = None
    segments: list[dict] = field(default_factory=list)  # {"start", "end", "text"}
    prosody: dict[str, float] = field(default_factory=dict)  # numeric measures
    descriptors: dict[str, str] = field(default_factory=dict)  # measure -> plain words
    flags: list[str] = field(default_factory=list)  # "silent", "clipped", "too_short", "no_speech"
    features: Any = None  # torch.Tensor [frames x d], Whisper encoder output
    expression: dict[str, float] = field(default_factory=dict)  # voice classifier: label -> probability

    def prosody_summary(self) -> str:
        return "; ".join(v for v in self.descriptors.values() if v)

    def to_dict(self) -> dict:
        return {"duration_s": round(float(self.duration_s), 3), "transcript": self.transcript,
                "language": self.language, "segments": self.segments,
                "prosody": {k: (round(float(v), 4) if v is not None else None)
                            for k, v in self.prosody.items()},
                "descriptors": dict(self.descriptors), "flags": list(self.flags),
                "expression": {k: round(float(v), 4) for k, v in self.expression.items()}}

    def to_text(self) -> str:
        parts = []
        if self.descriptors:
            parts.append(f"Voice: {self.prosody_summary()}.")
        if self.expression:
            top = sorted(self.expression.items(), key=lambda kv: -kv[1])[:3]
            parts.append("Voice expression classifier: " + ", ".join(f"{k} {v:.2f}" for k, v in top) + ".")
        if self.transcript:
            lang = f" ({self.language})" if self.language else ""
            parts.append(f'Transcript{lang}: "{self.transcript.strip()}"')
        if self.flags:
            parts.append("Caveats: " + ", ".join(f.replace("_", " ") for f in self.flags) + ".")
        return " ".join(parts) or "No usable speech."


@dataclass
class VisionObs:
    encoder: str  # "efficientnet-lite0" or an open_clip model name
    features: Any = None  # torch.Tensor [tokens x d]

    def to_dict(self) -> dict:
        shape = list(self.features.shape) if self.features is not None else None
        return {"encoder": self.encoder, "feature_shape": shape}


@dataclass
class VideoObs:
    fps: float
    n_frames: int  # frames analysed
    duration_s: float
    au_summary: dict[str, dict] = field(default_factory=dict)  # AU -> {"peak", "mean", "onset_s", "apex_s"}
    has_audio: bool = False
    # The analysed frames as series: {"t": [s], "aus": {AU: [intensity]}, "expression": {label: [p]}},
    # None where no face was found; only the AUs of ``au_summary``; 3 decimals. {} when not kept.
    timeline: dict = field(default_factory=dict)
    face_frame_s: float | None = None  # time of the frame the main FaceObs was read from (the apex)

    def times(self) -> list[float]:
        """Every time a rationale may cite: onsets, apexes, the duration and the face frame's time."""
        out = [float(self.duration_s)] + ([float(self.face_frame_s)] if self.face_frame_s is not None else [])
        for v in self.au_summary.values():
            out += [float(v[k]) for k in ("onset_s", "apex_s") if v.get(k) is not None]
        return out

    def to_dict(self) -> dict:
        return {"fps": self.fps, "n_frames": self.n_frames, "duration_s": round(self.duration_s, 3),
                "au_summary": self.au_summary, "has_audio": self.has_audio, "timeline": self.timeline,
                "face_frame_s": self.face_frame_s}

    def to_text(self) -> str:
        if not self.au_summary:
            return f"Video: {self.n_frames} frames analysed over {self.duration_s:.1f} s; no action unit rose above rest."
        rising = sorted(self.au_summary.items(), key=lambda kv: -kv[1].get("peak", 0))[:5]
        items = "; ".join(f"{au} {AU_NAMES.get(au, '')} from {v.get('onset_s', 0):.2f} s, peaking at "
                          f"{v['peak']:.1f} at {v.get('apex_s', 0):.2f} s" for au, v in rising)
        face = (f" (the face above is read at {self.face_frame_s:.2f} s, the frame of most AU activity)"
                if self.face_frame_s is not None else "")
        return f"Video over {self.duration_s:.1f} s{face}: {items}."


@dataclass
class Observations:
    """Everything perceived for one input item (an image, a clip, a video and/or text)."""

    file: str | None = None
    faces: list[FaceObs] = field(default_factory=list)  # largest first
    audio: AudioObs | None = None
    image: VisionObs | None = None
    video: VideoObs | None = None
    text: str | None = None
    errors: list[str] = field(default_factory=list)  # per-item problems, each naming the reason
    # The text expression classifier on ``text`` (Ekman-7 label -> probability); {} without text.
    text_expression: dict[str, float] = field(default_factory=dict)
    text_drivers: list[str] = field(default_factory=list)  # words of ``text`` that move it most (occlusion)

    @property
    def main_face(self) -> FaceObs | None:
        return self.faces[0] if self.faces else None

    def evidence_aus(self) -> list[str]:
        """AUs present on the main face: the set a rationale may cite."""
        face = self.main_face
        return [a.au for a in face.present_aus] if face else []

    def to_dict(self) -> dict:
        return {"file": self.file, "faces": [f.to_dict() for f in self.faces],
                "audio": self.audio.to_dict() if self.audio else None,
                "image": self.image.to_dict() if self.image else None,
                "video": self.video.to_dict() if self.video else None,
                "text": self.text, "errors": list(self.errors),
                "text_expression": {k: round(float(v), 4) for k, v in self.text_expression.items()},
                "text_drivers": list(self.text_drivers)}

    def to_text(self) -> str:
        lines = []
        if self.faces:
            lines.append(f"Face: {self.faces[0].to_text()}")
            if len(self.faces) > 1:
                lines.append(f"({len(self.faces) - 1} more face(s) in view; describing the largest.)")
        if self.video:
            lines.append(self.video.to_text())
        if self.audio:
            lines.append(self.audio.to_text())
        if self.text:
            lines.append(f'Text: "{self.text.strip()}"')
            if self.text_expression:
                lines.append(text_classifier_line(self.text_expression))
        if not lines:
            lines.append("No usable evidence was perceived.")
        return "\n".join(lines)


def text_classifier_line(scores: dict[str, float]) -> str:
    """The text expression classifier's top three, worded like the face and voice classifiers'."""
    top = sorted(scores.items(), key=lambda kv: -kv[1])[:3]
    return "Text classifier: " + ", ".join(f"{k} {v:.2f}" for k, v in top) + "."


def observations_from_dict(d: dict, tensors: dict | None = None) -> Observations:
    """Rebuild :class:`Observations` from ``to_dict()`` output plus cached feature tensors.

    ``tensors`` may hold ``face_embedding`` [d], ``audio`` [frames x d] and ``image`` [t x d].
    Landmarks are not cached (they are only needed for drawing overlays).
    """
    tensors = tensors or {}
    faces = []
    for i, f in enumerate(d.get("faces") or []):
        aus = [AUObs(au=a["au"], intensity=a["intensity"], present=a["present"], name=a.get("name", ""))
               for a in f.get("aus", [])]
        faces.append(FaceObs(box=tuple(f["box"]), score=f["score"], pose=dict(f.get("pose", {})), aus=aus,
                             expression=dict(f.get("expression", {})), flags=list(f.get("flags", [])),
                             embedding=tensors.get("face_embedding") if i == 0 else None))
    audio = None
    if d.get("audio"):
        a = d["audio"]
        audio = AudioObs(duration_s=a["duration_s"], transcript=a.get("transcript", ""), language=a.get("language"),
                         segments=list(a.get("segments", [])), prosody=dict(a.get("prosody", {})),
                         descriptors=dict(a.get("descriptors", {})), flags=list(a.get("flags", [])),
                         features=tensors.get("audio"), expression=dict(a.get("expression", {})))
    image = VisionObs(encoder=d["image"]["encoder"], features=tensors.get("image")) if d.get("image") else None
    video = None
    if d.get("video"):
        v = d["video"]
        video = VideoObs(fps=v["fps"], n_frames=v["n_frames"], duration_s=v["duration_s"],
                         au_summary=dict(v.get("au_summary", {})), has_audio=v.get("has_audio", False),
                         timeline=dict(v.get("timeline") or {}), face_frame_s=v.get("face_frame_s"))
    return Observations(file=d.get("file"), faces=faces, audio=audio, image=image, video=video,
                        text=d.get("text"), errors=list(d.get("errors", [])),
                        text_expression=dict(d.get("text_expression") or {}),
                        text_drivers=list(d.get("text_drivers") or []))


def observation_tensors(obs: Observations) -> dict:
    """The feature tensors of ``obs`` by cache name (inverse of ``observations_from_dict``)."""
    out = {}
    if obs.main_face is not None and obs.main_face.embedding is not None:
        out["face_embedding"] = obs.main_face.embedding
    if obs.audio is not None and obs.audio.features is not None:
        out["audio"] = obs.audio.features
    if obs.image is not None and obs.image.features is not None:
        out["image"] = obs.image.features
    return out
