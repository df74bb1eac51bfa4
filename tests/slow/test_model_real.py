"""AffectLLM over the real offline SmolLM2-135M-Instruct (converted by affectllm.weights)."""

import pytest
import torch

from affectllm.config import AffectConfig
from affectllm.model.affect_llm import AffectLLM
from affectllm.model.label_scores import encode_labels

pytestmark = pytest.mark.slow

LABELS = [" anger", " disgust", " fear", " happiness", " sadness", " surprise", " neutral"]


@pytest.fixture(scope="module")
def real():
    from affectllm.errors import WeightsNotFound

    try:
        return AffectLLM.build(AffectConfig.from_dict({"lora": {"r": 4, "alpha": 8}}))
    except WeightsNotFound as e:
        pytest.skip(f"SmolLM2 weights not installed: {e}")


def test_real_model_splices_generates_and_scores(real, tmp_path):
    m = real
    n = m.llm.get_input_embeddings().num_embeddings
    assert n == 49152 and min(m.placeholder_ids.values()) >= n  # table not resized
    msgs = [{"role": "user", "content": m.expand_placeholders("Face: <face>. Voice: <audio>. Which emotion?")}]
    enc = m.tokenizer.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    ids, att = enc["input_ids"], enc["attention_mask"]
    g = torch.Generator().manual_seed(0)
    feats = {"face": torch.randn(1, 2, 128, generator=g), "audio": torch.randn(1, 1500, 384, generator=g)}
    out = m.generate(ids, att, features=feats, max_new_tokens=8, do_sample=False)
    assert out.shape[0] == 1 and 0 < out.shape[1] <= 8
    lab = encode_labels(m.tokenizer, LABELS)
    lp = m.label_logprobs(ids, att, lab, features=feats)
    for j in (0, 3):  # spot-check two labels against a plain forward
        full = torch.cat([ids, torch.tensor([lab[j]])], dim=1)
        with torch.no_grad():
            ref = m(full, torch.ones_like(full), features=feats).logits.float().log_softmax(-1)
        s = ids.shape[1]
        want = sum(ref[0, s - 1 + k, t] for k, t in enumerate(lab[j]))
        torch.testing.assert_close(lp[0, j], want, rtol=1e-3, atol=1e-3)
    # round trip over the real base
    with torch.no_grad():
        ref_logits = m(ids, att, features=feats).logits
    folder = m.save_pretrained(tmp_path / "ckpt")
    m2 = AffectLLM.from_pretrained(folder)
    with torch.no_grad():
        torch.testing.assert_close(m2(ids, att, features=feats).logits, ref_logits)
