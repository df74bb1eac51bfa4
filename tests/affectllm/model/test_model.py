"""AffectLLM on tiny random Llama / Qwen2: splice, labels, trainable set, save/load, generation, scoring."""

from pathlib import Path

import pytest
import torch

import affectllm
from affectllm.explanation.format import PLACEHOLDERS
from affectllm.model.affect_llm import AffectLLM
from affectllm.model.label_scores import encode_labels

ARCHS = ["llama", "qwen2"]


def _batch(model, texts, side="right"):
    model.tokenizer.padding_side = side
    enc = model.tokenizer([model.expand_placeholders(t) for t in texts], return_tensors="pt", padding=True)
    return enc["input_ids"], enc["attention_mask"]


def _feats(k_face=1, k_audio=0, n_audio=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    f = {"face": torch.randn(k_face, 3, 8, generator=g)}
    if k_audio:
        f["audio"] = torch.randn(k_audio, n_audio, 12, generator=g)
    return f


@pytest.mark.parametrize("arch", ARCHS)
def test_features_land_exactly_at_placeholders(tiny_affect_factory, arch):
    m = tiny_affect_factory(arch)
    ids, _ = _batch(m, ["the face <face> looks happy", "voice <audio> and face <face> ."])
    feats = _feats(k_face=2, k_audio=1)
    emb = m.embed_inputs(ids, feats)
    proj_face = m.projectors["face"](feats["face"]).reshape(-1, emb.shape[-1])  # [2*2 x d]
    proj_audio = m.projectors["audio"](feats["audio"]).reshape(-1, emb.shape[-1])  # [3 x d]
    face_pos = (ids == m.placeholder_ids["face"]).nonzero()
    audio_pos = (ids == m.placeholder_ids["audio"]).nonzero()
    assert len(face_pos) == 4 and len(audio_pos) == 3
    assert face_pos[0, 0] == 0 and face_pos[-1, 0] == 1  # row 0's item first, then row 1's
    for i, (r, c) in enumerate(face_pos.tolist()):
        torch.testing.assert_close(emb[r, c], proj_face[i])
    for i, (r, c) in enumerate(audio_pos.tolist()):
        torch.testing.assert_close(emb[r, c], proj_audio[i])
    # every other position is the plain token embedding
    other = ~m.placeholder_mask(ids)
    plain = m.llm.get_input_embeddings()(ids.masked_fill(~other, 0))
    torch.testing.assert_close(emb[other], plain[other])


def test_count_mismatch_names_modality_and_counts(tiny_affect_factory):
    m = tiny_affect_factory()
    ids, _ = _batch(m, ["face <face> here"])
    with pytest.raises(ValueError, match=r"face: 2 <face> placeholder tokens in input_ids but 4 projected"):
        m.embed_inputs(ids, _feats(k_face=2))
    with pytest.raises(ValueError, match=r"face: 2 <face> placeholder tokens in input_ids but no face features"):
        m.embed_inputs(ids, {})
    ids1 = m.tokenizer("face <face> here", return_tensors="pt")["input_ids"]  # not expanded: 1 placeholder
    with pytest.raises(ValueError, match=r"face: 1 <face> placeholder tokens in input_ids but 2 projected"):
        m.embed_inputs(ids1, _feats(k_face=1))
    with pytest.raises(ValueError, match="features must be"):
        m.embed_inputs(ids, {"face": torch.randn(1, 3, 9)})


def test_modalities_without_soft_tokens_are_refused(tiny_affect_factory):
    m = tiny_affect_factory(encoders={"image": {"evidence": "text"}})
    assert "image" not in m.projectors
    with pytest.raises(ValueError, match="no soft tokens"):
        m.expand_placeholders("scene <image>")
    with pytest.raises(ValueError, match="no projector"):
        m.embed_inputs(torch.tensor([[5, 6]]), {"image": torch.randn(1, 16)})


def test_labels_are_ignored_at_placeholders(tiny_affect_factory):
    m = tiny_affect_factory()
    ids, att = _batch(m, ["face <face> looks happy"])
    feats = _feats()
    out = m(ids, att, labels=ids.clone(), features=feats)
    # Reference: the same loss with labels -100 at placeholders, computed by hand.
    logits = m(ids, att, features=feats).logits
    labels = ids.masked_fill(m.placeholder_mask(ids), -100)
    ref = torch.nn.functional.cross_entropy(logits[0, :-1].float(), labels[0, 1:], ignore_index=-100)
    torch.testing.assert_close(out.loss, ref)
    assert torch.isfinite(out.loss)


@pytest.mark.parametrize("arch", ARCHS)
def test_trainable_set_is_projectors_and_lora_and_only_they_move(tiny_affect_factory, arch):
    m = tiny_affect_factory(arch)
    names = m.trainable_parameter_names()
    assert names and all(n.startswith("projectors.") or "lora_" in n for n in names)
    assert any(n.startswith("projectors.face") for n in names) and any("lora_A" in n for n in names)
    proj_names = {f"projectors.{n}" for n, _ in m.projectors.named_parameters()}
    assert proj_names <= set(names)
    before = {n: p.detach().clone() for n, p in m.named_parameters()}
    opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.5)
    ids, att = _batch(m, ["voice <audio> and face <face> : happy"])
    for _ in range(2):  # LoRA B starts at zero: two steps so A moves too
        opt.zero_grad()
        m(ids, att, labels=ids.clone(), features=_feats(k_audio=1)).loss.backward()
        opt.step()
    moved = {n for n, p in m.named_parameters() if not torch.equal(p, before[n])}
    assert moved and moved <= set(names)
    assert any("lora_" in n for n in moved) and any(n.startswith("projectors.") for n in moved)


@pytest.mark.parametrize("arch", ARCHS)
def test_save_load_round_trip_gives_identical_logits(tiny_affect_factory, tiny_llm_factory, tmp_path, arch):
    m = tiny_affect_factory(arch)
    with torch.no_grad():  # make LoRA non-zero so the test sees the adapter
        for n, p in m.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)
    m.eval()
    ids, att = _batch(m, ["voice <audio> and face <face> : happy"])
    feats = _feats(k_audio=1)
    ref = m(ids, att, features=feats).logits
    out = m.save_pretrained(tmp_path / "ckpt")
    for f in ("config.json", "projectors.safetensors", "adapter/adapter_config.json",
              "adapter/adapter_model.safetensors", "tokenizer/tokenizer.json", "COMPLETE"):
        assert (out / f).is_file(), f
    base, _ = tiny_llm_factory(arch)
    m2 = AffectLLM.from_pretrained(out, llm=base)
    assert not m2.training and not m2.trainable_parameter_names()
    assert m2.placeholder_ids == m.placeholder_ids
    torch.testing.assert_close(m2(ids, att, features=feats).logits, ref, rtol=0, atol=0)
    # saving again over the same folder replaces it
    m.save_pretrained(out)
    assert (out / "COMPLETE").is_file()


def test_adapter_folder_is_plain_peft(tiny_affect_factory, tiny_llm_factory, tmp_path):
    from peft import PeftModel

    m = tiny_affect_factory()
    with torch.no_grad():
        for n, p in m.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)
    m.eval()
    out = m.save_pretrained(tmp_path / "ckpt")
    base, tok = tiny_llm_factory("llama")
    plain = PeftModel.from_pretrained(base, str(out / "adapter")).eval()
    ids = tok("the face looks happy", return_tensors="pt")["input_ids"]  # no placeholders
    torch.testing.assert_close(plain(input_ids=ids).logits, m(ids).logits, rtol=0, atol=0)
    fresh, _ = tiny_llm_factory("llama")
    assert not torch.allclose(fresh(input_ids=ids).logits, m(ids).logits)  # adapter matters


@pytest.mark.parametrize("arch", ARCHS)
def test_batched_left_padded_generation_equals_single(tiny_affect_factory, arch):
    m = tiny_affect_factory(arch).eval()
    texts = ["face <face> : the person looks", "voice <audio> and face <face> , a long prompt with more words : emotion"]
    feats_each = [_feats(k_face=1, seed=1), _feats(k_face=1, k_audio=1, seed=2)]
    singles = []
    for t, f in zip(texts, feats_each):
        ids, att = _batch(m, [t], side="left")
        singles.append(m.generate(ids, att, features=f, max_new_tokens=6, do_sample=False)[0])
    ids, att = _batch(m, texts, side="left")
    assert (att[:, 0] == 0).any()  # really padded
    feats = {"face": torch.cat([feats_each[0]["face"], feats_each[1]["face"]]), "audio": feats_each[1]["audio"]}
    batched = m.generate(ids, att, features=feats, max_new_tokens=6, do_sample=False)
    for i, s in enumerate(singles):
        assert batched[i].tolist() == s.tolist()
    ids_r, att_r = _batch(m, texts, side="right")
    with pytest.raises(ValueError, match="left padding"):
        m.generate(ids_r, att_r, features=feats, max_new_tokens=2)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_label_scoring_equals_separate_computation(tiny_affect_factory, arch, attn):
    m = tiny_affect_factory(arch).eval()
    m.llm.base_model.model.config._attn_implementation = attn
    with torch.no_grad():
        for n, p in m.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)
    labels = ["happiness", "sadness", "neutral", "anger"]
    lab_ids = encode_labels(m.tokenizer, labels)
    texts = ["face <face> looks <answer>", "voice <audio> and a much longer face <face> prompt <answer>"]
    feats = {"face": torch.randn(2, 3, 8), "audio": torch.randn(1, 5, 12)}
    for side in ("left", "right"):
        ids, att = _batch(m, texts, side=side)
        got = m.label_logprobs(ids, att, lab_ids, features=feats)
        assert got.shape == (2, len(labels))
        # reference: one sequence per (prompt, label), scored by a plain forward
        for b, t in enumerate(texts):
            f = {"face": feats["face"][b : b + 1]}
            if b == 1:
                f["audio"] = feats["audio"]
            pid, _ = _batch(m, [t])
            for j, lab in enumerate(lab_ids):
                full = torch.cat([pid, torch.tensor([lab])], dim=1)
                with torch.no_grad():
                    lp = m(full, torch.ones_like(full), features=f).logits.float().log_softmax(-1)
                s = pid.shape[1]
                ref = sum(lp[0, s - 1 + k, tok] for k, tok in enumerate(lab))
                torch.testing.assert_close(got[b, j], ref, rtol=1e-4, atol=1e-4)


def test_placeholder_tokens_do_not_resize_the_embedding_table(tiny_affect_factory):
    m = tiny_affect_factory()
    n = m.llm.get_input_embeddings().num_embeddings
    assert all(pid >= n for pid in m.placeholder_ids.values())
    assert m.expand_placeholders("a <face> b <audio>") == "a " + "<face>" * 2 + " b " + "<audio>" * 3
    assert set(PLACEHOLDERS) == {"face", "audio", "image"}


def test_merge_lora_keeps_the_outputs_and_runs_once(tiny_affect_factory):
    model = tiny_affect_factory("llama").eval()
    with torch.no_grad():
        for n, p in model.llm.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.2)  # a trained-looking adapter (peft starts B at zero)
    ids = model.tokenizer("hello there friend", return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        before = model.llm(input_ids=ids).logits
        base_before = model.llm.get_base_model().model.layers[0].self_attn.q_proj.base_layer.weight.clone()
        assert model.merge_lora() is True
        after = model.llm(input_ids=ids).logits
        base_after = model.llm.get_base_model().model.layers[0].self_attn.q_proj.base_layer.weight.clone()
        assert model.merge_lora() is True  # already merged: no second fold
        again = model.llm.get_base_model().model.layers[0].self_attn.q_proj.base_layer.weight
    assert not torch.equal(base_before, base_after)  # the delta went into the base weight
    assert torch.equal(base_after, again)
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-4)
    model.train()
    assert model.merge_lora() is False  # never while training


def test_shipped_model_is_found_wherever_the_builder_lives():
    # The shipped adapters are package assets: a move of the builder into a wing once pointed
    # SHIPPED at affectllm/model/assets and silently fell back to the untrained base.
    from affectllm.model.builder import SHIPPED
    from affectllm.paths import ASSETS

    assert ASSETS == Path(affectllm.__file__).resolve().parent / "assets"
    assert (SHIPPED["affectllm-mini"] / "config.json").is_file()
    assert (SHIPPED["affectllm-mini"] / "adapter").is_dir()
