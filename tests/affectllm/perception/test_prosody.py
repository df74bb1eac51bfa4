"""Prosody measures on synthetic signals whose answers are known, and the descriptor words."""

from __future__ import annotations

import time

import numpy as np
import pytest

from affectllm.perception.prosody import REFERENCE_RANGES, describe, prosody

SR = 16000


def voice(f0, seconds=2.0, amp=0.3, harmonics=8):
    """A harmonic 'vowel' at f0 (Hz, scalar or per-sample array) with a falling spectrum."""
    n = int(seconds * SR)
    f = np.broadcast_to(np.asarray(f0, dtype=np.float64), (n,))
    phase = 2 * np.pi * np.cumsum(f) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, harmonics + 1))
    return (amp * x / np.abs(x).max()).astype(np.float32)


def syllables(rate_hz=4.0, seconds=3.0, f0=150.0, gaps=()):
    """Voiced bursts at ``rate_hz`` (one per syllable), silent between, optional long gaps (s)."""
    x = voice(f0, seconds)
    t = np.arange(len(x)) / SR
    env = np.abs(np.sin(np.pi * rate_hz * t)) ** 3  # one hump per 1/rate s, brief dips between
    for start, stop in gaps:
        env[(t >= start) & (t < stop)] = 0.0
    return (x * env).astype(np.float32)


def test_higher_tone_has_higher_f0():
    low, high = prosody(voice(110.0)), prosody(voice(220.0))
    assert low["f0_mean_hz"] == pytest.approx(110.0, rel=0.03)
    assert high["f0_mean_hz"] == pytest.approx(220.0, rel=0.03)
    assert high["voiced_ratio"] > 0.9 and low["voiced_ratio"] > 0.9
    assert high["f0_std_st"] < 0.5  # a steady tone is monotone


def test_louder_signal_has_higher_energy():
    quiet, loud = prosody(voice(150.0, amp=0.05)), prosody(voice(150.0, amp=0.5))
    assert loud["energy_db_mean"] - quiet["energy_db_mean"] == pytest.approx(20.0, abs=0.5)


def test_glide_is_variable_pitch():
    f0 = np.geomspace(120.0, 480.0, 2 * SR)  # two octaves up
    m = prosody(voice(f0))
    assert m["f0_range_st"] > 18 and m["f0_std_st"] > 4.0
    assert "variable" in describe(m)["pitch"]


def test_speech_rate_and_pauses():
    m = prosody(syllables(rate_hz=4.0, seconds=4.0, gaps=[(1.5, 2.25)]))
    # 16 humps minus the ~3 swallowed by the gap; rate counted over the whole active span.
    assert 2.5 <= m["speech_rate_syl_s"] <= 4.5
    assert m["articulation_rate_syl_s"] > m["speech_rate_syl_s"]
    assert m["pause_count"] == 1 and 0.15 < m["pause_ratio"] < 0.3
    fast = prosody(syllables(rate_hz=7.0, seconds=3.0))
    slow = prosody(syllables(rate_hz=2.5, seconds=3.0))
    assert fast["speech_rate_syl_s"] > slow["speech_rate_syl_s"] + 2.5
    assert fast["pause_count"] == 0


def test_brightness_and_noise_voicing():
    dark = prosody(voice(150.0, harmonics=3))
    bright = prosody(voice(150.0, harmonics=30))
    assert bright["alpha_ratio_db"] > dark["alpha_ratio_db"] + 5
    assert bright["spectral_centroid_hz"] > dark["spectral_centroid_hz"]
    noise = prosody(np.random.default_rng(0).normal(0, 0.1, 2 * SR).astype(np.float32))
    assert noise["voiced_ratio"] < 0.1 and noise["f0_mean_hz"] is None


def test_silence_and_tiny_inputs_do_not_crash():
    silent = prosody(np.zeros(SR, np.float32))
    assert silent["active_s"] == 0.0 and silent["f0_mean_hz"] is None
    assert describe(silent) == {}
    assert prosody(np.zeros(10, np.float32))["duration_s"] == pytest.approx(10 / SR)
    short = prosody(voice(200.0, seconds=0.1))
    assert short["duration_s"] == pytest.approx(0.1)


def test_two_second_clip_is_fast():
    x = syllables(seconds=2.0)
    prosody(x)  # warm-up (librosa imports, numba)
    t = time.perf_counter()
    prosody(x)
    assert time.perf_counter() - t < 1.0


def test_describe_words_and_baseline():
    m = {"f0_mean_hz": 280.0, "f0_std_st": 5.0, "energy_db_mean": -12.0, "speech_rate_syl_s": 6.5,
         "pause_ratio": 0.3, "pause_count": 3, "alpha_ratio_db": -3.0, "jitter_proxy": 0.01,
         "voiced_ratio": 0.6, "active_s": 2.0}
    d = describe(m)
    assert d["pitch"] == "high, variable pitch"
    assert d["loudness"] == "loud" and d["rate"] == "fast speech" and d["pauses"] == "many pauses"
    assert "bright" in d["voice"]
    low = dict(m, f0_mean_hz=95.0, f0_std_st=1.0, energy_db_mean=-40.0, speech_rate_syl_s=2.0,
               pause_count=0, pause_ratio=0.0, alpha_ratio_db=-25.0)
    d = describe(low)
    assert d["pitch"] == "low, monotone pitch" and d["loudness"] == "quiet" and d["rate"] == "slow speech"
    assert d["pauses"] == "no pauses" and "dark" in d["voice"]
    # Against the speaker's own baseline, a 280 Hz voice whose neutral is 250 Hz is only 2 st up.
    base = dict(m, f0_mean_hz=250.0, energy_db_mean=-20.0, speech_rate_syl_s=4.0)
    rel = describe(m, reference=base)
    assert rel["loudness"] == "louder than baseline" and rel["rate"] == "faster than baseline"
    assert rel["pitch"].startswith("pitch as baseline")
    assert describe(dict(m, f0_mean_hz=400.0), reference=base)["pitch"].startswith("higher pitch")
    assert set(REFERENCE_RANGES) >= {"f0_mean_hz", "energy_db_mean", "speech_rate_syl_s", "pause_ratio"}


def test_measures_on_real_shape():
    m = prosody(syllables(seconds=2.0))
    assert all(v is None or np.isfinite(v) for v in m.values())
    assert m["shimmer_proxy_db"] is not None and m["jitter_proxy"] is not None
