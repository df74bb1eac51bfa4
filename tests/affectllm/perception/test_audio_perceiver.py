"""AudioPerceiver with tiny random Whisper models (1 layer, width 64): shapes, policy, flags.

Random weights cannot transcribe, so these tests check the plumbing that real weights rely on
(frame counts, the encoder/decoder split, which model serves which language, timestamp parsing,
flags); tests/slow/test_audio_real.py checks real transcripts.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from affectllm.errors import InputError, WeightsNotFound
from affectllm.perception.observations import AudioObs
from affectllm.perception.audio import AudioPerceiver, _clipped

whisper = pytest.importorskip("whisper")

SR = 16000


def tiny_whisper(multilingual: bool, seed: int = 0):
    torch.manual_seed(seed)
    dims = whisper.model.ModelDimensions(
        n_mels=80, n_audio_ctx=1500, n_audio_state=64, n_audio_head=2, n_audio_layer=1,
        n_vocab=51865 if multilingual else 51864, n_text_ctx=64, n_text_state=64, n_text_head=2,
        n_text_layer=1)
    return whisper.model.Whisper(dims).eval()


class Loader:
    """Stands in for affectllm.weights.load_whisper; records which names were asked for."""

    def __init__(self, multilingual_available: bool = True):
        self.calls: list[str] = []
        self.multilingual_available = multilingual_available

    def __call__(self, name: str):
        self.calls.append(name)
        if name == "whisper-base":
            if not self.multilingual_available:
                raise WeightsNotFound("whisper-base not installed")
            return tiny_whisper(True, seed=1)
        return tiny_whisper(False, seed=0)


@pytest.fixture(scope="module")
def perceiver():
    return AudioPerceiver(loader=Loader())


def voice(seconds: float, f0: float = 150.0, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 6))
    env = np.abs(np.sin(np.pi * 4 * t)) ** 2  # syllable-like humps
    return (amp * x * env / np.abs(x).max()).astype(np.float32)


def test_encode_keeps_real_frames(perceiver):
    assert perceiver.encode(voice(2.0)).shape == (100, 64)  # one frame per 20 ms
    assert perceiver.encode(voice(0.1)).shape == (5, 64)
    assert perceiver.encode(voice(30.0)).shape == (1500, 64)


def test_encode_matches_whisper_pipeline(perceiver):
    wav = voice(2.0)
    model = perceiver.model("whisper-tiny.en")
    mel = whisper.log_mel_spectrogram(torch.from_numpy(wav), 80, padding=whisper.audio.N_SAMPLES)
    with torch.no_grad():
        ref = model.embed_audio(whisper.pad_or_trim(mel, whisper.audio.N_FRAMES)[None])[0, :100]
    assert torch.allclose(perceiver.encode(wav), ref, atol=1e-5)


def test_long_audio_is_pooled_to_the_cap():
    p = AudioPerceiver(loader=Loader(), max_frames=50)
    feats = p.encode(voice(35.0))  # two windows: 1500 + 250 real frames -> pooled to 50
    assert feats.shape == (50, 64) and torch.isfinite(feats).all()


def test_language_policy():
    loader = Loader()
    p = AudioPerceiver(loader=loader)
    text, lang, segs = p.transcribe(voice(2.0), language="en")
    assert lang == "en" and isinstance(text, str) and loader.calls == ["whisper-tiny.en"]
    for s in segs:
        assert set(s) == {"start", "end", "text"} and 0.0 <= s["start"] <= s["end"] <= 2.0
    _, lang, _ = p.transcribe(voice(2.0), language="German")
    assert lang == "de" and loader.calls[-1] == "whisper-base"
    _, lang, _ = p.transcribe(voice(2.0))  # unknown: the multilingual model detects it
    assert lang in whisper.tokenizer.LANGUAGES
    with pytest.raises(ValueError, match="unknown language"):
        p.transcribe(voice(1.0), language="klingon")


def test_missing_multilingual_falls_back_to_english():
    p = AudioPerceiver(loader=Loader(multilingual_available=False))
    obs = p.perceive(voice(1.5), language="de")
    assert obs.language == "en" and "language_assumed_en" in obs.flags


def test_segments_from_timestamp_tokens():
    model = tiny_whisper(False)
    tok = whisper.tokenizer.get_tokenizer(False)
    ts = lambda s: tok.timestamp_begin + int(round(s / 0.02))  # noqa: E731
    tokens = [ts(0.0), *tok.encode(" Hello there."), ts(1.2), ts(1.2), *tok.encode(" Bye."), ts(2.4)]
    segs = AudioPerceiver._segments(model, "en", tokens, duration=3.0)
    assert segs == [{"start": 0.0, "end": 1.2, "text": "Hello there."},
                    {"start": 1.2, "end": 2.4, "text": "Bye."}]
    # No timestamps at all: one segment over the clip.
    assert AudioPerceiver._segments(model, "en", tok.encode(" Hi"), 1.0) == [{"start": 0.0, "end": 1.0, "text": "Hi"}]


def test_perceive_normal_clip(perceiver, tmp_path):
    path = tmp_path / "clip.wav"
    sf.write(path, voice(2.0), SR)
    obs = perceiver.perceive(path, language="en")
    assert isinstance(obs, AudioObs) and obs.duration_s == pytest.approx(2.0)
    assert obs.features.shape == (100, 64)
    assert obs.prosody["f0_mean_hz"] == pytest.approx(150.0, rel=0.05)
    assert obs.descriptors["pitch"].endswith("pitch")
    assert not {"silent", "clipped", "too_short"} & set(obs.flags)
    assert obs.language == "en"
    obs.to_dict(), obs.to_text()  # JSON-safe and textual forms work


def test_flags_not_crashes(perceiver):
    short = perceiver.perceive(voice(0.1))
    assert "too_short" in short.flags and short.transcript == "" and short.features.shape == (5, 64)
    silent = perceiver.perceive(np.zeros(2 * SR, np.float32))
    assert {"silent", "no_speech"} <= set(silent.flags) and silent.prosody == {}
    assert silent.features.shape == (100, 64)
    hot = np.clip(voice(2.0, amp=3.0), -1.0, 1.0)
    assert "clipped" in perceiver.perceive(hot, transcribe=False).flags
    assert "clipped" not in perceiver.perceive(voice(2.0, amp=0.9), transcribe=False).flags
    empty = perceiver.perceive(np.zeros(0, np.float32))
    assert "too_short" in empty.flags and "silent" in empty.flags


def test_clip_detector_on_scaled_flat_tops():
    x = np.clip(voice(1.0, amp=1.0), -0.4, 0.4) * 0.5  # clipped, then turned down
    assert _clipped(x)
    assert not _clipped(voice(1.0, amp=0.5))


def test_stereo_8k_array_and_bad_file(perceiver, tmp_path):
    stereo = np.stack([voice(1.0)[::2], voice(1.0)[::2]], axis=1)  # [n x 2] at 8 kHz
    obs = perceiver.perceive(stereo, sr=8000, transcribe=False)
    assert obs.duration_s == pytest.approx(1.0, abs=0.01) and obs.features.shape == (50, 64)
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 8)
    with pytest.raises(InputError, match="clip-7"):
        perceiver.perceive(bad, item="clip-7")


def test_long_audio_uses_whisper_transcribe(perceiver):
    text, lang, segs = perceiver.transcribe(voice(31.0), language="en")  # past one 30 s window
    assert lang == "en" and isinstance(text, str)
    assert all(0.0 <= s["start"] <= s["end"] for s in segs)
