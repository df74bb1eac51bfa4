"""AffectConfig: defaults, round trips, partial overrides and clear errors."""

import json

import pytest

from affectllm.config import CONFIG_NAME, MODALITIES, AffectConfig, ModalityConfig


def test_defaults_match_the_offline_encoders():
    c = AffectConfig()
    assert c.llm.name == "smollm2-135m-instruct"
    assert (c.encoders["face"].feature_dim, c.encoders["audio"].feature_dim, c.encoders["image"].feature_dim) == (128, 384, 1280)
    assert c.encoders["audio"].projector == "resampler"
    assert c.quantization.mode == "none" and c.prompting.taxonomy == "ekman7"
    assert c.soft_modalities() == list(MODALITIES)


def test_dict_round_trip_is_exact():
    c = AffectConfig.from_dict({"seed": 7, "encoders": {"audio": {"num_tokens": 16, "evidence": "text"}},
                                "lora": {"r": 8, "target_modules": ["q_proj"]}})
    d = c.to_dict()
    assert AffectConfig.from_dict(d) == c
    assert AffectConfig.from_dict(json.loads(json.dumps(d))) == c
    assert c.encoders["audio"].num_tokens == 16 and c.encoders["audio"].feature_dim == 384  # merged with defaults
    assert c.soft_modalities() == ["face", "image"]  # audio evidence=text: no soft tokens


def test_save_load(tmp_path):
    c = AffectConfig.from_dict({"llm": {"dtype": "bfloat16"}, "quantization": {"mode": "4bit"}})
    c.save(tmp_path)
    assert (tmp_path / CONFIG_NAME).is_file()
    assert AffectConfig.load(tmp_path) == c
    assert AffectConfig.load(tmp_path / CONFIG_NAME) == c


@pytest.mark.parametrize("d, needle", [
    ({"llmm": {}}, "'llmm'"),
    ({"llm": {"nme": "x"}}, "'llm.nme'"),
    ({"encoders": {"face": {"dim": 3}}}, "'encoders.face.dim'"),
    ({"encoders": {"smell": {}}}, "'smell'"),
    ({"lora": {"r": "16"}}, "lora.r must be int"),
    ({"lora": {"r": True}}, "lora.r must be int"),
    ({"encoders": {"face": {"projector": "qformer"}}}, "projector must be one of"),
    ({"encoders": {"face": {"evidence": "all"}}}, "evidence must be one of"),
    ({"quantization": {"mode": "3bit"}}, "quantization.mode"),
    ({"lora": {"target_modules": "q_proj"}}, "list of str"),
])
def test_bad_keys_and_values_raise_clearly(d, needle):
    with pytest.raises(ValueError, match=None) as e:
        AffectConfig.from_dict(d)
    assert needle in str(e.value)


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        AffectConfig.load(tmp_path)
    (tmp_path / CONFIG_NAME).write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        AffectConfig.load(tmp_path)


def test_modality_flags():
    m = ModalityConfig(encoder="x", feature_dim=4, evidence="text")
    assert m.text and not m.soft
    m = ModalityConfig(encoder="x", feature_dim=4, evidence="both", enabled=False)
    assert not m.text and not m.soft
