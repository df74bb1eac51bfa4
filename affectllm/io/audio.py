"""Audio decoding: files (and a video's audio track) to float32 mono at a chosen rate."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from affectllm.errors import InputError
from affectllm.io.sniff import _av_reason, _check_file, detect_kind

MAX_AUDIO_SECONDS = 600.0  # decode at most 10 minutes; the rest is cut and reported


@dataclass
class AudioInfo:
    """Facts about a decoded clip that the array alone does not tell."""

    source_sr: int
    channels: int
    duration_s: float  # of the returned samples
    truncated: bool = False  # the file ran on past max_seconds
    container: str = ""
    flags: list[str] = field(default_factory=list)


def load_audio(path: str | os.PathLike, sr: int = 16000, max_seconds: float = MAX_AUDIO_SECONDS) -> np.ndarray:
    """Decode audio (or a video's audio track) to ``[n]`` float32 mono at ``sr`` Hz, in [-1, 1]."""
    return decode_audio(path, sr=sr, max_seconds=max_seconds)[0]


def decode_audio(path: str | os.PathLike, sr: int = 16000,
                 max_seconds: float = MAX_AUDIO_SECONDS) -> tuple[np.ndarray, AudioInfo]:
    """Like :func:`load_audio`, also returning :class:`AudioInfo` (source rate, truncation...)."""
    p = _check_file(path)
    kind = detect_kind(p)
    if kind not in ("audio", "video"):
        raise InputError(p, f"not an audio or video file: the content is {kind}")
    with open(p, "rb") as f:
        head = f.read(12)
    if head[:4] == b"fLaC" or (head[:4] == b"RIFF" and head[8:12] == b"WAVE"):
        try:
            return _decode_soundfile(p, sr, max_seconds)
        except InputError:
            raise
        except Exception:
            pass  # e.g. a WAV codec libsndfile lacks (ADPCM variants): PyAV below reads more
    return _decode_av(p, sr, max_seconds, kind)


def _decode_soundfile(p: Path, sr: int, max_seconds: float) -> tuple[np.ndarray, AudioInfo]:
    import soundfile as sf

    with sf.SoundFile(str(p)) as f:
        src_sr, channels, frames = f.samplerate, f.channels, f.frames
        limit = int(max_seconds * src_sr)
        data = f.read(frames=min(frames, limit), dtype="float32", always_2d=True)
    if data.shape[0] == 0:
        raise InputError(p, "audio file holds no samples")
    mono = data.mean(axis=1)
    return _finish(p, mono, src_sr, sr, AudioInfo(src_sr, channels, 0.0, frames > limit, "wav/flac"))


def _decode_av(p: Path, sr: int, max_seconds: float, kind: str) -> tuple[np.ndarray, AudioInfo]:
    import av

    chunks, n, errors, truncated = [], 0, [], False
    limit = int(max_seconds * sr)
    try:
        container = av.open(str(p))
    except Exception as e:
        raise InputError(p, f"corrupt or unsupported audio ({_av_reason(e)})") from e
    with container:
        fmt = container.format.name
        if not container.streams.audio:
            what = "video has no audio track" if kind == "video" else "file holds no audio stream"
            raise InputError(p, what)
        stream = container.streams.audio[0]
        src_sr = stream.rate or stream.codec_context.sample_rate or 0
        channels = stream.channels or 0
        # libswresample does the down-mix and resampling in one pass (float32 planar mono out).
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=sr)
        try:
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.error.FFmpegError as e:
                    errors.append(_av_reason(e))  # one bad packet: skip it, like ffmpeg does
                    if len(errors) > 50 and not chunks:
                        break
                    continue
                for frame in frames:
                    for out in resampler.resample(frame):
                        chunks.append(out.to_ndarray()[0])
                        n += out.samples
                if n >= limit:
                    truncated = True
                    break
            if not truncated:
                for out in resampler.resample(None):  # flush
                    chunks.append(out.to_ndarray()[0])
        except Exception as e:
            if not chunks:
                raise InputError(p, f"corrupt audio: decoding failed ({_av_reason(e)})") from e
            errors.append(_av_reason(e))
    if not chunks or n == 0:
        why = f" ({errors[0]})" if errors else ""
        raise InputError(p, f"corrupt audio: no samples could be decoded{why}")
    mono = np.concatenate(chunks).astype(np.float32)[:limit]
    info = AudioInfo(int(src_sr), int(channels), 0.0, truncated, fmt)
    if errors:
        info.flags.append("decode_errors")
    return _finish(p, mono, sr, sr, info)


def _finish(p: Path, mono: np.ndarray, src_sr: int, sr: int, info: AudioInfo) -> tuple[np.ndarray, AudioInfo]:
    if src_sr != sr:
        import soxr  # librosa's own resampler backend; fast and good quality

        mono = soxr.resample(mono, src_sr, sr, quality="HQ")
    mono = np.asarray(mono, dtype=np.float32)
    if not np.isfinite(mono).all():  # NaN/inf samples: a broken file; zeroed, and said (the gate drops it)
        info.flags.append("non_finite")
    mono = np.nan_to_num(mono, nan=0.0, posinf=1.0, neginf=-1.0)
    if mono.size == 0:
        raise InputError(p, "audio decoded to zero samples")
    np.clip(mono, -1.0, 1.0, out=mono)
    info.duration_s = mono.size / sr
    return mono, info
