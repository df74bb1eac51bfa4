"""VisionEncoder with random encoders: token count, pooling, open_clip weight handling."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from affectllm.errors import InputError, WeightsNotFound
from affectllm.perception.observations import VisionObs
from affectllm.perception.vision import VisionEncoder, pool_tokens, token_grid

TINY_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 1000, "width": 32, "heads": 2, "layers": 1},
}


def _rgb(seed=0, h=80, w=120):
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def random_effnet():
    from affectllm.weights import EfficientNetLite0

    torch.manual_seed(0)
    return EfficientNetLite0().eval()


def test_token_grid_and_pooling():
    assert token_grid(1) == (1, 1) and token_grid(4) == (2, 2) and token_grid(6) == (2, 3)
    assert token_grid(5) == (1, 5)
    with pytest.raises(ValueError):
        token_grid(0)
    fmap = torch.arange(16.0).view(1, 1, 4, 4)
    toks = pool_tokens(fmap, 4)  # 2x2 quadrants, row-major
    assert toks.shape == (1, 4, 1)
    assert toks[0, :, 0].tolist() == [2.5, 4.5, 10.5, 12.5]


def test_efficientnet_tokens(random_effnet, tmp_path):
    enc = VisionEncoder(model=random_effnet, n_tokens=4)
    feats = enc.encode(_rgb())
    assert feats.shape == (4, 1280) and feats.dtype == torch.float32 and enc.feature_dim == 1280
    assert torch.equal(feats, enc.encode(_rgb()))  # deterministic (eval mode)
    assert not torch.equal(feats, enc.encode(_rgb(seed=1)))
    assert VisionEncoder(model=random_effnet, n_tokens=1).encode(_rgb()).shape == (1, 1280)
    # Mean of the 4 quadrant tokens is the global average of the 7x7 map (7 is odd: near, not equal).
    glob = VisionEncoder(model=random_effnet, n_tokens=1).encode(_rgb())
    assert torch.allclose(feats.mean(0), glob[0], rtol=0.2, atol=1e-3)
    batch = enc.encode_batch([_rgb(), _rgb(seed=1)])
    assert batch.shape == (2, 4, 1280) and torch.allclose(batch[0], feats, atol=1e-5)


def test_perceive_returns_obs_and_names_bad_items(random_effnet, tmp_path):
    from PIL import Image

    enc = VisionEncoder(model=random_effnet)
    path = tmp_path / "scene.png"
    Image.fromarray(_rgb()).save(path)
    obs = enc.perceive(path)
    assert isinstance(obs, VisionObs) and obs.to_dict() == {"encoder": "efficientnet-lite0",
                                                            "feature_shape": [4, 1280]}
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    with pytest.raises(InputError, match="frame-3"):
        enc.perceive(bad, item="frame-3")


def test_open_clip_needs_weights():
    with pytest.raises(WeightsNotFound, match="needs weights"):
        VisionEncoder("ViT-B-32")
    with pytest.raises(WeightsNotFound, match="not found"):
        VisionEncoder("ViT-B-32", pretrained="/nonexistent/clip.pt")
    with pytest.raises(ValueError, match="unknown vision encoder"):
        VisionEncoder("resnet-9000")


def test_open_clip_vit_tokens_from_local_checkpoint(tmp_path):
    open_clip = pytest.importorskip("open_clip")
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "TinyViT-affect-test.json").write_text(json.dumps(TINY_CLIP))
    open_clip.add_model_config(tmp_path / "cfg")
    torch.manual_seed(0)
    ref = open_clip.create_model("TinyViT-affect-test", pretrained_text=False)
    ckpt = tmp_path / "tiny_clip.pt"
    torch.save(ref.state_dict(), ckpt)

    enc = VisionEncoder("TinyViT-affect-test", pretrained=str(ckpt), n_tokens=4)
    feats = enc.encode(_rgb())
    assert feats.shape == (4, 32) and enc.feature_dim == 32
    # The checkpoint's weights were loaded: tokens match the reference model's own patch tokens.
    from PIL import Image

    _, _, preprocess = open_clip.create_model_and_transforms("TinyViT-affect-test", pretrained_text=False)
    ref.visual.output_tokens = True
    with torch.no_grad():
        _, tokens = ref.visual(preprocess(Image.fromarray(_rgb()))[None])
    fmap = tokens.transpose(1, 2).reshape(1, 32, 4, 4)
    assert torch.allclose(feats, pool_tokens(fmap, 4)[0], atol=1e-5)
