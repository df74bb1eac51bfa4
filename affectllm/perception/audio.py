"""Speech perception: Whisper encoder features, a transcript with timestamps, and prosody.

``AudioPerceiver`` wraps two frozen openai-whisper models (loaded with
:func:`affectllm.weights.load_whisper`):

- ``encode(wav16k) -> [frames x d]``: encoder output of ``whisper_name`` (tiny.en, d = 384),
  one frame per 20 ms of real audio (padding frames dropped), at most ``max_frames`` (1500 =
  30 s; longer audio is encoded window by window, then average-pooled down to the cap). Features
  always come from the same model whatever the language, so their width never changes. Encoding
  is kept apart from decoding (whisper's ``embed_audio`` vs ``logits``) so callers can cache it.
- ``transcribe(wav16k, language=None) -> (text, language, segments)``.
- ``perceive(path_or_wav) -> AudioObs`` with transcript, prosody, descriptors, features, flags.

Language policy: ``language="en"`` uses the English model (``whisper_name``) and, for audio of
up to 30 s, decodes straight from the encoder output ``encode`` already computed. Any other
language, or ``None`` (unknown), uses the multilingual model (``multilingual_name``): an
English-only model would force-transcribe German as English-sounding nonsense. With ``None`` the
multilingual model detects the language (whisper's ``detect_language`` on the first 30 s)
and transcribes in it. If the multilingual weights are missing, the English model is used and
the flag ``language_assumed_en`` says so.

Silence, clipping, clips under 0.3 s and audio without speech give flags ("silent", "clipped",
"too_short", "no_speech"), never crashes; a silent or too-short clip is not sent to the
recogniser (Whisper hallucinates "Thank you." on silence).

Deliberately not here: file decoding (``affectllm.io``), emotion labels, speaker diarisation.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Callable

import numpy as np

from affectllm.errors import InputError
from affectllm.perception.observations import AudioObs
from affectllm.perception.prosody import describe, prosody

if TYPE_CHECKING:  # torch loads with the models, not on import
    import torch

SR = 16000
MIN_SECONDS = 0.3  # shorter clips carry no usable words or prosody
SILENT_DBFS = -55.0  # loudest 25 ms frame below this: nothing was recorded
CLIP_LEVEL, CLIP_FRACTION = 0.99, 1e-3  # >0.1% of samples at full scale: clipped recording
NO_SPEECH_PROB, LOGPROB_FLOOR = 0.6, -1.0  # whisper's own no-speech gate (transcribe defaults)
REPETITION_RATIO = 2.4  # gzip compression ratio above which whisper calls a decode a loop


def _language_code(language: str | None) -> str | None:
    """'en', 'English', 'german' -> ISO code known to whisper; None stays None."""
    if language is None:
        return None
    from whisper.tokenizer import LANGUAGES, TO_LANGUAGE_CODE

    key = language.strip().lower()
    if key in LANGUAGES:
        return key
    if key in TO_LANGUAGE_CODE:
        return TO_LANGUAGE_CODE[key]
    raise ValueError(f"unknown language '{language}' (use an ISO code such as 'en', 'de')")


def _mono16k(wav, sr: int) -> np.ndarray:
    a = np.asarray(wav, dtype=np.float32)
    if a.ndim == 2:  # [n x c] or [c x n]: average the (shorter) channel axis
        a = a.mean(axis=int(np.argmin(a.shape)))
    if a.ndim != 1:
        raise InputError("audio array", f"expected mono [n] samples, got shape {tuple(a.shape)}")
    if sr != SR:
        import soxr

        a = soxr.resample(a, sr, SR, quality="HQ").astype(np.float32)
    return np.nan_to_num(a, nan=0.0, posinf=1.0, neginf=-1.0)


def _loudest_dbfs(wav: np.ndarray, win: int = 400, hop: int = 160) -> float:
    """RMS level (dBFS) of the loudest 25 ms frame, from a running sum (no frame copies)."""
    if len(wav) == 0:
        return -200.0
    cs = np.concatenate([[0.0], np.cumsum(wav.astype(np.float64) ** 2)])
    w = min(win, len(wav))
    starts = np.arange(0, len(wav) - w + 1, hop)
    ms = (cs[starts + w] - cs[starts]) / w
    return float(10 * np.log10(max(ms.max(), 1e-20)))


def _clipped(wav: np.ndarray) -> bool:
    """Clipping: >0.1% of samples at full scale, or flat tops (runs of 3+ samples at the peak).

    Flat tops catch recordings clipped and then scaled down; a clean waveform passes its peak
    within a sample or two (speech and tones above ~70 Hz at 16 kHz).
    """
    a = np.abs(wav)
    peak = float(a.max()) if len(a) else 0.0
    if peak < 0.05:
        return False
    if peak >= CLIP_LEVEL and np.mean(a >= CLIP_LEVEL) > CLIP_FRACTION:
        return True
    top = a >= 0.9995 * peak
    plateau = top[:-2] & top[1:-1] & top[2:]
    return bool(plateau.sum() * 3 > CLIP_FRACTION * len(a))


class AudioPerceiver:
    """Frozen Whisper encoder + recogniser + prosody; models load on first use."""

    def __init__(self, whisper_name: str = "whisper-tiny.en", multilingual_name: str | None = "whisper-base",
                 *, loader: Callable[[str], object] | None = None, device: str = "cpu",
                 max_frames: int = 1500, voice_model="default"):
        self.whisper_name = whisper_name
        # Voice expression classifier: "default" = the shipped one (it names the Whisper model and
        # layer it reads); None = off; or a VoiceExpression.
        if voice_model == "default":
            from affectllm.perception.voice_expression import load_default

            voice_model = load_default()
        self.voice_model = voice_model
        self.multilingual_name = multilingual_name
        self.device = device
        self.max_frames = max_frames
        self._loader = loader
        self._models: dict[str, object] = {}

    # ------------------------------------------------------------------ models
    def model(self, name: str):
        """The Whisper model called ``name`` (loaded once, eval mode)."""
        if name not in self._models:
            if self._loader is not None:
                m = self._loader(name)
            else:
                from affectllm.weights import load_whisper

                m = load_whisper(name, device=self.device)
            self._models[name] = m.eval()
        return self._models[name]

    @property
    def feature_dim(self) -> int:
        return int(self.model(self.whisper_name).dims.n_audio_state)

    # ------------------------------------------------------------------ encoding
    def _windows(self, wav: np.ndarray, model) -> list[tuple[torch.Tensor, int]]:
        """Log-mel windows ``[n_mels x 3000]`` of 30 s and the real samples in each.

        The log-mel is computed over the whole clip first, as whisper's transcribe does (its
        dynamic range floor depends on the clip's loudest frame).
        """
        import torch
        import whisper

        mel = whisper.log_mel_spectrogram(torch.from_numpy(wav), model.dims.n_mels, padding=whisper.audio.N_SAMPLES)
        out = []
        for start in range(0, max(len(wav), 1), whisper.audio.N_SAMPLES):
            n = min(len(wav) - start, whisper.audio.N_SAMPLES)
            f0 = start // whisper.audio.HOP_LENGTH
            seg = whisper.pad_or_trim(mel[:, f0: f0 + whisper.audio.N_FRAMES], whisper.audio.N_FRAMES)
            out.append((seg.to(model.device), max(n, 0)))
        return out

    def _encode_windows(self, wav: np.ndarray, model) -> list[tuple[torch.Tensor, int]]:
        """Encoder output ``[1 x 1500 x d]`` per 30 s window, with the real frame count of each."""
        import torch
        import whisper

        out = []
        with torch.inference_mode():
            for mel, n in self._windows(wav, model):
                feats = model.embed_audio(mel[None].to(next(model.parameters()).dtype))
                frames = min(feats.shape[1], -(-n // whisper.audio.N_SAMPLES_PER_TOKEN))
                out.append((feats, max(frames, 1)))
        return out

    def _pool(self, windows) -> torch.Tensor:
        import torch
        import torch.nn.functional as F

        x = torch.cat([f[0, :n] for f, n in windows], dim=0)  # [frames x d]
        if x.shape[0] > self.max_frames:  # long audio: average neighbouring frames down to the cap
            x = F.adaptive_avg_pool1d(x.T[None], self.max_frames)[0].T
        return x.float().cpu().contiguous()

    def layer_features(self, wav: np.ndarray, name: str, layers) -> dict:
        """Frames ``[frames x d]`` of Whisper ``name``'s encoder at each of ``layers`` (k: the output
        of encoder block k; None: the encoder's output), over the real audio of the clip. Blocks
        after the deepest one asked for are not run."""
        import torch
        import torch.nn.functional as F
        import whisper

        model = self.model(name)
        enc = model.encoder
        last = len(enc.blocks) - 1 if None in layers else max(layers)
        parts: dict = {k: [] for k in layers}
        with torch.inference_mode():
            for mel, n in self._windows(wav, model):
                frames = max(1, min(enc.positional_embedding.shape[0], -(-n // whisper.audio.N_SAMPLES_PER_TOKEN)))
                x = mel[None].to(next(model.parameters()).dtype)
                x = F.gelu(enc.conv2(F.gelu(enc.conv1(x)))).permute(0, 2, 1)
                x = (x + enc.positional_embedding).to(x.dtype)
                for k, block in enumerate(enc.blocks[:last + 1]):
                    x = block(x)
                    if k in parts:
                        parts[k].append(x[0, :frames])
                if None in parts:
                    parts[None].append(enc.ln_post(x)[0, :frames])
        return {k: self._pool([(torch.cat(v)[None], sum(t.shape[0] for t in v))]) for k, v in parts.items()}

    def _voice_scores(self, wav: np.ndarray, features: torch.Tensor) -> dict[str, float]:
        """The voice classifier's scores, on the features it reads ({} when their size differs; raises
        WeightsNotFound when its Whisper model is not installed)."""
        vm = self.voice_model
        if vm.encoder != self.whisper_name or vm.layer is not None:
            if vm.layer is not None and vm.layer >= len(self.model(vm.encoder).encoder.blocks):
                return {}  # a Whisper model without that layer: not the features it reads
            features = self.layer_features(wav, vm.encoder, [vm.layer])[vm.layer]
        return vm.scores(features) if features.shape[-1] == vm.dim else {}

    def encode(self, wav16k: np.ndarray) -> torch.Tensor:
        """Whisper encoder features ``[frames x d]`` covering the real audio (<= max_frames)."""
        wav = _mono16k(wav16k, SR)
        return self._pool(self._encode_windows(wav, self.model(self.whisper_name)))

    # ------------------------------------------------------------------ recognition
    def transcribe(self, wav16k: np.ndarray, language: str | None = None) -> tuple[str, str | None, list[dict]]:
        """``(text, language, segments[{start, end, text}])``; see the module's language policy."""
        text, lang, segments, _ = self._transcribe(_mono16k(wav16k, SR), _language_code(language))
        return text, lang, segments

    def _choose_model(self, lang: str | None) -> tuple[str, list[str]]:
        if lang == "en" or not self.multilingual_name:
            return self.whisper_name, ([] if lang == "en" else ["language_assumed_en"])
        try:
            self.model(self.multilingual_name)
            return self.multilingual_name, []
        except FileNotFoundError:  # WeightsNotFound: degrade to English rather than fail the item
            return self.whisper_name, ["language_assumed_en"]

    def _transcribe(self, wav: np.ndarray, lang: str | None, windows=None):
        """Returns (text, language, segments, flags). ``windows``: the English model's encoding."""
        import whisper

        name, flags = self._choose_model(lang)
        model = self.model(name)
        if not model.is_multilingual:
            lang = "en"
        if len(wav) > whisper.audio.N_SAMPLES:
            # Long audio: whisper's own sliding-window transcribe (it re-encodes each window).
            res = whisper.transcribe(model, wav, language=lang, fp16=False, temperature=0.0,
                                     condition_on_previous_text=False, verbose=None)
            segs = [{"start": round(float(s["start"]), 2), "end": round(float(s["end"]), 2),
                     "text": s["text"].strip()} for s in res["segments"]]
            return res["text"].strip(), res.get("language", lang), segs, flags
        if windows is None or name != self.whisper_name:
            windows = self._encode_windows(wav, model)
        feats = windows[0][0]
        if lang is None:
            _, probs = model.detect_language(feats)
            lang = max(probs[0], key=probs[0].get)
        result = self._decode(model, feats, lang)
        if result.no_speech_prob > NO_SPEECH_PROB and result.avg_logprob < LOGPROB_FLOOR:
            return "", lang, [], flags
        if result.avg_logprob < LOGPROB_FLOOR:
            flags = flags + ["low_confidence_transcript"]
        segments = self._segments(model, lang, result.tokens, len(wav) / SR)
        return result.text.strip(), lang, segments, flags

    def _decode(self, model, feats, lang: str):
        """Greedy decoding; a repetition loop is retried once with beam search (still deterministic)."""
        import torch
        import whisper

        opts = dict(task="transcribe", language=lang, fp16=False, without_timestamps=False)
        with torch.inference_mode():
            result = whisper.decode(model, feats, whisper.DecodingOptions(temperature=0.0, **opts))
            result = result[0] if isinstance(result, list) else result
            if result.compression_ratio > REPETITION_RATIO:
                beam = whisper.decode(model, feats, whisper.DecodingOptions(beam_size=5, **opts))
                beam = beam[0] if isinstance(beam, list) else beam
                if beam.compression_ratio < result.compression_ratio:
                    result = beam
        return result

    @staticmethod
    def _segments(model, lang: str, tokens: list[int], duration: float) -> list[dict]:
        """Timestamped segments from whisper's <|t|> text <|t|> token pairs."""
        from whisper.tokenizer import get_tokenizer

        tok = get_tokenizer(model.is_multilingual, num_languages=model.num_languages, language=lang,
                            task="transcribe")
        begin, segments, start, text_tokens = tok.timestamp_begin, [], None, []

        def close(end):
            text = tok.decode(text_tokens).strip()
            if text:
                segments.append({"start": round(start or 0.0, 2), "end": round(min(end, duration), 2),
                                 "text": text})

        for t in tokens:
            if t >= begin:
                time = (t - begin) * 0.02
                if start is not None and text_tokens:
                    close(time)
                    start, text_tokens = None, []
                else:
                    start = time
            elif t < tok.eot:
                text_tokens.append(t)
        if text_tokens:
            close(duration)
        return segments

    # ------------------------------------------------------------------ everything
    def perceive(self, path_or_wav, item: str | None = None, language: str | None = None,
                 sr: int = SR, reference: dict | None = None, transcribe: bool = True) -> AudioObs:
        """Features, transcript, prosody and flags for one clip (a file path or samples at ``sr``).

        ``reference``: a speaker-baseline :func:`~affectllm.perception.prosody.prosody` dict for
        the descriptors (population ranges otherwise). Bad files raise InputError naming ``item``.
        """
        flags: list[str] = []
        if isinstance(path_or_wav, (str, os.PathLike)):
            from affectllm.io import decode_audio

            try:
                wav, info = decode_audio(path_or_wav, sr=SR)
            except InputError as e:
                if item is None or str(item) == e.item:
                    raise
                raise InputError(f"{item} ({e.item})", e.reason) from e
            flags += (["truncated"] if info.truncated else []) + info.flags
        else:
            if not np.isfinite(np.asarray(path_or_wav, dtype=np.float32)).all():
                flags.append("non_finite")
            try:
                wav = _mono16k(path_or_wav, sr)
            except InputError as e:
                raise InputError(item or "audio array", e.reason) from e
        duration = len(wav) / SR
        silent = _loudest_dbfs(wav) < SILENT_DBFS
        if silent:
            flags += ["silent", "no_speech"]
        if duration < MIN_SECONDS:
            flags.append("too_short")
        if not silent and _clipped(wav):
            flags.append("clipped")

        model = self.model(self.whisper_name)
        windows = self._encode_windows(wav if len(wav) else np.zeros(1, np.float32), model)
        obs = AudioObs(duration_s=duration, features=self._pool(windows))
        if silent or duration < MIN_SECONDS:
            obs.flags = flags
            return obs
        obs.prosody = prosody(wav, SR)
        obs.descriptors = describe(obs.prosody, reference=reference)
        if self.voice_model is not None:
            try:
                obs.expression = self._voice_scores(wav, obs.features)
            except FileNotFoundError:  # its Whisper model is not installed (`affectllm doctor` says how)
                flags.append("no_voice_classifier")
        if transcribe:
            text, lang, segments, more = self._transcribe(wav, _language_code(language), windows)
            obs.transcript, obs.language, obs.segments = text, lang, segments
            flags += more
            if not text:
                flags.append("no_speech")
        obs.flags = list(dict.fromkeys(flags))
        return obs
