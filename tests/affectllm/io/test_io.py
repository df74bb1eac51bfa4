"""The bad-input battery for affectllm.io: each broken file gives the right InputError or result.

Every file is synthesised in a temp folder (PIL, soundfile, PyAV), so this runs in seconds.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from affectllm.errors import InputError
from affectllm.io import decode_audio, detect_kind, ensure_rgb, load_audio, load_image, read_text

SR = 16000


def _tone(seconds: float, sr: int = SR, freq: float = 220.0, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _write_av(path: Path, fmt: str, audio: np.ndarray | None, video_frames: int = 0, codec: str = "aac",
              sr: int = SR) -> Path:
    """Write a media file with PyAV: optional video (mpeg4) and optional mono audio."""
    import av

    with av.open(str(path), "w", format=fmt) as c:
        vs = c.add_stream("mpeg4", rate=10) if video_frames else None
        if vs is not None:
            vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        as_ = c.add_stream(codec, rate=sr) if audio is not None else None
        if as_ is not None:
            as_.layout = "mono"
        for i in range(video_frames):
            img = np.full((48, 64, 3), (i * 20) % 255, np.uint8)
            for pkt in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        if vs is not None:
            for pkt in vs.encode():
                c.mux(pkt)
        if as_ is not None:
            pcm = audio.astype(np.float32)
            for start in range(0, len(pcm), 1024):
                # float planar in; PyAV converts to the codec's sample format and frame size.
                chunk = np.ascontiguousarray(pcm[start:start + 1024][None])
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
                frame.sample_rate = sr
                frame.pts = start
                for pkt in as_.encode(frame):
                    c.mux(pkt)
            for pkt in as_.encode():
                c.mux(pkt)
    return path


def _png_header_only(path: Path, w: int, h: int) -> Path:
    """A PNG whose header declares w x h but carries one tiny IDAT: a bomb we must not decode."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
                     + chunk(b"IEND", b""))
    return path


def _rgb(w=64, h=48, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


# ----------------------------------------------------------------------------- images

def test_zero_byte_file(tmp_path):
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    for fn in (load_image, load_audio, detect_kind, read_text):
        with pytest.raises(InputError, match="empty file"):
            fn(p)


def test_missing_file_names_it(tmp_path):
    with pytest.raises(InputError) as e:
        load_image(tmp_path / "nope.png")
    assert "nope.png" in str(e.value) and e.value.reason == "file not found"


def test_truncated_jpeg(tmp_path):
    p = tmp_path / "t.jpg"
    Image.fromarray(_rgb(128, 128)).save(p, quality=90)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated"):
        load_image(p)


def test_text_renamed_jpg(tmp_path):
    p = tmp_path / "photo.jpg"
    p.write_text("this is not a picture, just some notes\n" * 5)
    assert detect_kind(p) == "text"
    with pytest.raises(InputError, match="not an image: the content is a text file"):
        load_image(p)


def test_bomb_refused_before_decoding(tmp_path):
    p = _png_header_only(tmp_path / "bomb.png", 10_000, 5_000)  # 50 MP declared, ~100 bytes on disk
    assert p.stat().st_size < 200
    with pytest.raises(InputError, match=r"50\.0 megapixels.*refused before decoding"):
        load_image(p)


def test_one_pixel_image(tmp_path):
    p = tmp_path / "dot.png"
    Image.new("RGB", (1, 1), (10, 20, 30)).save(p)
    with pytest.raises(InputError, match="only 1x1 pixels"):
        load_image(p)


def test_normal_rgb_roundtrip_and_extension_ignored(tmp_path):
    arr = _rgb()
    p = tmp_path / "really_png.jpg"  # PNG bytes under a .jpg name: decoded as the PNG it is
    Image.fromarray(arr).save(p, format="PNG")
    out = load_image(p)
    assert out.dtype == np.uint8 and out.shape == (48, 64, 3)
    assert np.array_equal(out, arr)


def test_cmyk_jpeg(tmp_path):
    p = tmp_path / "cmyk.jpg"
    Image.new("RGB", (32, 32), (220, 30, 30)).convert("CMYK").save(p, quality=95)
    assert Image.open(p).mode == "CMYK"
    out = load_image(p)
    assert out.shape == (32, 32, 3)
    r, g, b = out.reshape(-1, 3).mean(0)
    assert r > 180 and g < 80 and b < 80  # still red, not inverted


def test_16bit_grey_png_is_scaled_not_clipped(tmp_path):
    p = tmp_path / "g16.png"
    a = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (32, 1))
    Image.fromarray(a).save(p)
    assert Image.open(p).mode.startswith("I;16")
    out = load_image(p)
    assert out.shape == (32, 64, 3)
    assert out[0, 0, 0] == 0 and out[0, -1, 0] == 255
    assert 120 <= out[0, 32, 0] <= 136  # mid-grey, where PIL's convert("RGB") gives 255


def test_16bit_rgb_png(tmp_path):
    cv2 = pytest.importorskip("cv2")
    p = tmp_path / "rgb16.png"
    bgr16 = np.zeros((20, 30, 3), np.uint16)
    bgr16[..., 2] = 60000  # red channel (OpenCV writes BGR)
    cv2.imwrite(str(p), bgr16)
    out = load_image(p)
    assert out.shape == (20, 30, 3)
    assert out[..., 0].min() > 220 and out[..., 1:].max() < 5


def test_palette_with_transparency_on_white(tmp_path):
    p = tmp_path / "pal.png"
    img = Image.new("P", (32, 32), 0)
    img.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)  # index 0 black (transparent), 1 blue
    img.paste(1, (0, 0, 16, 32))
    img.save(p, transparency=0)
    assert Image.open(p).mode == "P"
    la = tmp_path / "la.png"
    Image.new("LA", (32, 32), (0, 0)).save(la)
    out = load_image(p)
    assert tuple(out[5, 5]) == (0, 0, 255) and tuple(out[5, 25]) == (255, 255, 255)
    assert (load_image(la) == 255).all()  # fully transparent grey: white, not black


def test_animated_gif_first_frame(tmp_path):
    p = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (40, 30), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    frames[0].save(p, save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(p).n_frames == 3
    out = load_image(p)
    assert out.shape == (30, 40, 3)
    assert out[..., 0].mean() > 240 and out[..., 1].mean() < 15


def test_exif_orientation_applied(tmp_path):
    p = tmp_path / "rot.jpg"
    img = Image.new("RGB", (40, 20), (0, 0, 0))
    img.paste((255, 255, 255), (0, 0, 20, 20))  # white on the left half
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    img.save(p, exif=exif, quality=95)
    out = load_image(p)
    assert out.shape == (40, 20, 3)  # upright is portrait
    assert out[:20].mean() > 200 and out[20:].mean() < 50  # left half rotated to the top


def test_ensure_rgb_variants():
    grey = np.zeros((20, 20), np.uint8)
    assert ensure_rgb(grey).shape == (20, 20, 3)
    assert ensure_rgb(np.zeros((20, 20, 4), np.uint8)).shape == (20, 20, 3)
    assert ensure_rgb(np.ones((20, 20, 3), np.float32)).max() == 255
    with pytest.raises(InputError, match="expected"):
        ensure_rgb(np.zeros((5, 5, 7)))


# ----------------------------------------------------------------------------- audio

def test_short_audio_decodes(tmp_path):
    p = tmp_path / "short.wav"
    sf.write(p, _tone(0.1), SR)
    wav = load_audio(p)
    assert wav.dtype == np.float32 and wav.ndim == 1 and len(wav) == 1600


def test_silent_audio_decodes_to_zeros(tmp_path):
    p = tmp_path / "silence.flac"
    sf.write(p, np.zeros(SR, np.float32), SR)
    wav = load_audio(p)
    assert len(wav) == SR and np.abs(wav).max() == 0


def test_8k_stereo_to_16k_mono(tmp_path):
    p = tmp_path / "stereo.wav"
    left, right = _tone(1.0, 8000, 300, 0.4), np.zeros(8000, np.float32)
    sf.write(p, np.stack([left, right], 1), 8000)
    wav, info = decode_audio(p)
    assert info.source_sr == 8000 and info.channels == 2
    assert abs(len(wav) - SR) <= 2
    assert 0.17 < np.abs(wav[1000:-1000]).max() < 0.23  # averaged channels: half the amplitude
    spec = np.abs(np.fft.rfft(wav))
    assert abs(np.argmax(spec) * SR / len(wav) - 300) < 3  # pitch preserved by the resampler


def test_max_seconds_truncates(tmp_path):
    p = tmp_path / "long.wav"
    sf.write(p, _tone(3.0), SR)
    wav, info = decode_audio(p, max_seconds=1.0)
    assert len(wav) == SR and info.truncated


def test_mp3_named_wav_decodes(tmp_path):
    p = _write_av(tmp_path / "speech.wav", "mp3", _tone(1.0), codec="libmp3lame")
    assert p.read_bytes()[:3] in (b"ID3",) or p.read_bytes()[0] == 0xFF
    assert detect_kind(p) == "audio"
    wav = load_audio(p)
    assert abs(len(wav) / SR - 1.0) < 0.1 and np.abs(wav).max() > 0.1


def test_corrupt_mp3(tmp_path):
    p = tmp_path / "bad.mp3"
    rng = np.random.default_rng(1)
    p.write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00" + rng.integers(0, 255, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(InputError, match="corrupt"):
        load_audio(p)


def test_video_without_audio(tmp_path):
    p = _write_av(tmp_path / "silent_film.mp4", "mp4", None, video_frames=5)
    assert detect_kind(p) == "video"
    with pytest.raises(InputError, match="video has no audio track"):
        load_audio(p)


def test_video_audio_track_and_m4a(tmp_path):
    v = _write_av(tmp_path / "clip.mp4", "mp4", _tone(1.0), video_frames=10)
    assert detect_kind(v) == "video"
    wav = load_audio(v)
    assert abs(len(wav) / SR - 1.0) < 0.15 and np.abs(wav).max() > 0.1
    a = _write_av(tmp_path / "voice.m4a", "ipod", _tone(1.0))
    assert detect_kind(a) == "audio"


def test_image_is_not_audio(tmp_path):
    p = tmp_path / "x.wav"
    Image.fromarray(_rgb()).save(p, format="PNG")
    with pytest.raises(InputError, match="not an audio or video file"):
        load_audio(p)


def test_unrecognised_binary(tmp_path):
    p = tmp_path / "blob.bin"
    p.write_bytes(bytes(range(256)) * 10)
    with pytest.raises(InputError, match="unrecognised"):
        detect_kind(p)


# ----------------------------------------------------------------------------- text

def test_invalid_utf8(tmp_path):
    p = tmp_path / "latin1.txt"
    p.write_bytes("Grüße aus Köln".encode("latin-1"))
    assert detect_kind(p) == "text"
    with pytest.raises(InputError, match=r"not valid UTF-8 text: byte 0xfc at offset 2"):
        read_text(p)
    with pytest.raises(InputError, match="UTF-8"):
        read_text(b"\xff\xfe\xfd abc"[1:])


def test_long_text_truncated_and_flagged(tmp_path):
    long = ("word " * 20_000)[:100_000]
    text, flags = read_text(long, max_chars=20_000)
    assert flags == ["truncated"] and len(text) <= 20_000 and text.endswith("word")
    p = tmp_path / "long.txt"
    p.write_text(long, encoding="utf-8")
    text2, flags2 = read_text(p, max_chars=20_000)
    assert flags2 == ["truncated"] and text2 == text


def test_text_ok_bom_and_controls(tmp_path):
    p = tmp_path / "bom.txt"
    p.write_bytes(b"\xef\xbb\xbfI am so happy!\r\nReally.\x07")
    text, flags = read_text(p)
    assert text == "I am so happy!\nReally." and flags == []
    u16 = tmp_path / "u16.txt"
    u16.write_bytes("Ich bin wütend".encode("utf-16"))
    assert read_text(u16)[0] == "Ich bin wütend"
    assert read_text("plain words")[0] == "plain words"
    with pytest.raises(InputError, match="empty text"):
        read_text("   \n ")
