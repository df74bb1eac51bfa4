"""Voice expression classifier: fit, file round trip, perception, prompts, CoT and verification."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from affectllm.perception.observations import AudioObs, Observations, observations_from_dict
from affectllm.perception.voice_expression import ASSET, VoiceExpression, fit, load_default
from affectllm.explanation.template import write_rationale
from affectllm.explanation.evidence_facts import analyse, support
from data_engine.verify import verify_text

LABELS = ["anger", "sadness", "neutral"]


def _toy(d=6, n=20, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (len(LABELS), d))
    X = np.concatenate([c + rng.normal(0, 0.5, (n, d)) for c in centres])
    y = [lab for lab in LABELS for _ in range(n)]
    return X, y, centres


def test_fit_separates_classes_and_file_round_trip_is_exact(tmp_path):
    X, y, centres = _toy()
    model = fit(X, y, LABELS + ["boredom"], encoder="whisper-toy", C=1.0)
    assert model.labels == LABELS  # labels without examples are left out, order kept
    frames = torch.tensor(centres[1])[None].repeat(5, 1).float()  # a clip of 5 frames at the sadness centre
    s = model.scores(frames)
    assert max(s, key=s.get) == "sadness" and sum(s.values()) == pytest.approx(1.0)
    path = model.save(tmp_path / "v.safetensors")
    back = VoiceExpression.load(path)
    assert back.labels == LABELS and back.encoder == "whisper-toy" and len(back.digest) == 64
    for k, v in back.scores(frames).items():
        assert v == pytest.approx(s[k], abs=1e-5)
    assert load_default(path).encoder == "whisper-toy" and load_default(path).layer is None
    assert load_default(tmp_path / "missing.safetensors") is None
    layered = fit(X, y, LABELS, encoder="whisper-toy", C=1.0, layer=2)
    assert VoiceExpression.load(layered.save(tmp_path / "l.safetensors")).layer == 2
    with pytest.raises(ValueError, match=r"\[frames x 6\]"):
        model.scores(torch.zeros(3, 5))


def test_fit_needs_three_labels():
    X, y, _ = _toy()
    with pytest.raises(ValueError, match="at least 3"):
        fit(X[:40], y[:40], LABELS, encoder="e", C=1.0)


def test_shipped_classifier_names_the_whisper_layer_it_reads():
    model = load_default()
    assert model is not None and model.encoder in ("whisper-tiny.en", "whisper-base")
    assert model.dim == {"whisper-tiny.en": 384, "whisper-base": 512}[model.encoder]
    assert set(model.labels) == {"anger", "boredom", "disgust", "fear", "happiness", "sadness", "neutral"}
    assert "EmoDB train speakers" in model.info["data"] and model.info["dev_accuracy"] > 0.5


def test_audio_perceiver_adds_scores_when_dims_match():
    whisper = pytest.importorskip("whisper")
    from affectllm.perception.audio import AudioPerceiver

    dims = whisper.model.ModelDimensions(n_mels=80, n_audio_ctx=1500, n_audio_state=64, n_audio_head=2,
                                         n_audio_layer=1, n_vocab=51864, n_text_ctx=64, n_text_state=64,
                                         n_text_head=2, n_text_layer=1)
    torch.manual_seed(0)
    tiny = whisper.model.Whisper(dims).eval()
    X, y, _ = _toy(d=64)
    vm = fit(X, y, LABELS, encoder="whisper-tiny.en", C=1.0)
    t = np.arange(32000) / 16000
    wav = (0.3 * np.sin(2 * np.pi * 150 * t) * np.abs(np.sin(np.pi * 4 * t))).astype(np.float32)
    obs = AudioPerceiver(loader=lambda name: tiny, voice_model=vm).perceive(wav, transcribe=False)
    assert set(obs.expression) == set(LABELS) and sum(obs.expression.values()) == pytest.approx(1.0)
    off = AudioPerceiver(loader=lambda name: tiny, voice_model=None).perceive(wav, transcribe=False)
    assert off.expression == {}
    wrong = fit(*_toy(d=8)[:2], LABELS, encoder="whisper-tiny.en", C=1.0)  # 8-d: not these features
    assert AudioPerceiver(loader=lambda name: tiny, voice_model=wrong).perceive(wav, transcribe=False).expression == {}


def _toy_whisper(layers=2):
    whisper = pytest.importorskip("whisper")
    dims = whisper.model.ModelDimensions(n_mels=80, n_audio_ctx=1500, n_audio_state=64, n_audio_head=2,
                                         n_audio_layer=layers, n_vocab=51864, n_text_ctx=64, n_text_state=64,
                                         n_text_head=2, n_text_layer=1)
    torch.manual_seed(0)
    return whisper.model.Whisper(dims).eval()


def test_layer_features_match_the_encoder_and_feed_a_layer_classifier():
    from affectllm.perception.audio import AudioPerceiver

    tiny, other = _toy_whisper(), _toy_whisper(layers=3)
    audio = AudioPerceiver(loader=lambda name: {"whisper-tiny.en": tiny, "whisper-base": other}[name], voice_model=None)
    t = np.arange(24000) / 16000
    wav = (0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32)
    feats = audio.layer_features(wav, "whisper-tiny.en", [None, 0])
    enc = audio.encode(wav)
    assert feats[None].shape == enc.shape == (75, 64)  # 1.5 s: 75 real frames of 20 ms
    assert torch.allclose(feats[None], enc, atol=1e-4)  # the encoder's output, run block by block
    assert not torch.allclose(feats[0], enc, atol=1e-2)  # block 0 is another layer
    # A classifier of block 1 of another Whisper model: the perceiver runs that model for it.
    X, y, _ = _toy(d=64)
    vm = fit(X, y, LABELS, encoder="whisper-base", C=1.0, layer=1)
    obs = AudioPerceiver(loader=audio._loader, voice_model=vm).perceive(wav, transcribe=False)
    assert set(obs.expression) == set(LABELS)
    direct = vm.scores(audio.layer_features(wav, "whisper-base", [1])[1])
    assert obs.expression == pytest.approx(direct)


def test_voice_scores_are_skipped_with_a_flag_when_their_whisper_model_is_missing():
    from affectllm.errors import WeightsNotFound
    from affectllm.perception.audio import AudioPerceiver

    tiny = _toy_whisper()

    def loader(name):
        if name == "whisper-base":
            raise WeightsNotFound("whisper-base: pip install ...")
        return tiny

    vm = fit(*_toy(d=64)[:2], LABELS, encoder="whisper-base", C=1.0, layer=1)
    t = np.arange(24000) / 16000
    obs = AudioPerceiver(loader=loader, voice_model=vm).perceive((0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32),
                                                                 transcribe=False)
    assert obs.expression == {} and "no_voice_classifier" in obs.flags


SAD_VOICE = AudioObs(duration_s=2.0, descriptors={"pitch": "low pitch", "rate": "slow speech"},
                     expression={"sadness": 0.62, "boredom": 0.21, "neutral": 0.1, "anger": 0.07})


def test_prompt_text_and_dict_round_trip():
    text = SAD_VOICE.to_text()
    assert "Voice expression classifier: sadness 0.62, boredom 0.21, neutral 0.10." in text
    obs = observations_from_dict(Observations(file="a.wav", audio=SAD_VOICE).to_dict())
    assert obs.audio.expression == SAD_VOICE.expression


@pytest.mark.parametrize("label", ["sadness", "anger"])
def test_cot_cites_the_voice_classifier_and_verifies(label):
    obs = Observations(file="a.wav", audio=SAD_VOICE, text="Der Lappen liegt auf dem Eisschrank.")
    ev = analyse(obs, "emodb7")
    assert ev.voice_classifier[0] == ("sadness", 0.62)
    assert support(ev, "sadness")["voice_classifier"] == "supports"
    r = write_rationale("e1", obs, [label], taxonomy="emodb7", seed=0, media=("audio",))
    text = r.render()
    assert "classifier" in text and "sadness" in r.interpretation
    assert verify_text(text, obs, [label], "emodb7") == []
    if label == "anger":  # the classifier disagrees: said, and the call is not "supported"
        assert r.level != "supported"


def test_verify_catches_a_wrong_voice_classifier_claim():
    obs = Observations(file="a.wav", audio=SAD_VOICE)
    good = write_rationale("e1", obs, ["sadness"], taxonomy="emodb7", seed=0, media=("audio",)).render()
    bad = good.replace("Interpretation:", "Interpretation: The voice classifier favours anger (0.62).", 1)
    reasons = verify_text(bad, obs, ["sadness"], "emodb7")
    assert any(r.startswith("classifier:") and "anger" in r for r in reasons)
    no_voice = Observations(file="a.wav", audio=AudioObs(duration_s=2.0, descriptors={"pitch": "low pitch"}))
    reasons = verify_text(bad, no_voice, ["sadness"], "emodb7")
    assert any("none ran on a voice" in r for r in reasons)


def test_build_uses_out_of_fold_scores(monkeypatch):
    import affectllm.perception.pipeline as pipeline
    from data_engine.build import default_perceive
    from data_engine.sample import Sample

    class FakePerception:
        modalities, whisper_name, vision_name = {"audio"}, "whisper-tiny.en", "none"

        def __init__(self, **kw):
            pass

        def perceive(self, item):
            return Observations(file=item.audio, audio=AudioObs(duration_s=2.0, expression={"anger": 0.9,
                                                                                          "sadness": 0.1}))

    monkeypatch.setattr(pipeline, "Perception", FakePerception)
    perceive = default_perceive(voice_scores={"emodb/a": {"sadness": 0.7, "anger": 0.3}})
    a = perceive(Sample(id="emodb/a", media={"audio": "/x/a.wav"}))
    b = perceive(Sample(id="emodb/b", media={"audio": "/x/b.wav"}))
    assert a.audio.expression == {"sadness": 0.7, "anger": 0.3}
    assert b.audio.expression == {"anger": 0.9, "sadness": 0.1}
    assert ASSET.name == "voice_expression.safetensors"
