"""Decoding and validation of input files: images, audio (also a video's audio track) and text.

What a file *is* comes from its first bytes (magic numbers), never from its extension: a text
file renamed ``.jpg`` is rejected as "not an image", an MP3 named ``.wav`` still decodes.
Every problem raises :class:`affectllm.errors.InputError` naming the file and the reason, so a
batch can log it and go on with the next item.

- ``detect_kind(path) -> "image" | "audio" | "video" | "text"``
- ``load_image(path) -> np.ndarray [h x w x 3] uint8 RGB`` (size checked before decoding)
- ``load_audio(path, sr) -> np.ndarray [n] float32 mono`` (``decode_audio`` also returns facts)
- ``read_text(path_or_str) -> (text, flags)``

One module per concept: ``sniff`` (magic bytes, shared file checks), ``image``, ``audio``, ``text``.

Deliberately not here: face detection, video frame sampling (``perception/video.py``), and any
judgement about content (silence, clipping: ``perception/audio.py`` flags those).
"""

from __future__ import annotations

from affectllm.io.audio import MAX_AUDIO_SECONDS, AudioInfo, decode_audio, load_audio
from affectllm.io.image import MAX_PIXELS, MIN_SIDE, ensure_rgb, load_image, to_rgb_array
from affectllm.io.sniff import MAX_FILE_BYTES, detect_kind
from affectllm.io.text import MAX_READ_CHARS, MAX_TEXT_CHARS, read_text

__all__ = ["detect_kind", "load_image", "to_rgb_array", "ensure_rgb", "load_audio", "decode_audio", "AudioInfo",
           "read_text", "MAX_PIXELS", "MIN_SIDE", "MAX_FILE_BYTES", "MAX_AUDIO_SECONDS", "MAX_TEXT_CHARS",
           "MAX_READ_CHARS"]
