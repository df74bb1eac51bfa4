"""Projector builder: shapes, the resampler's padding mask, and unknown names."""

import pytest
import torch

from affectllm.config import PROJECTOR_KINDS
from affectllm.model.projector import Resampler, build_projector


@pytest.mark.parametrize("kind", PROJECTOR_KINDS)
def test_every_configurable_kind_builds_with_documented_shapes(kind):
    torch.manual_seed(0)
    p = build_projector(kind, 12, 32, num_tokens=3)
    x = torch.randn(2, 5, 12)
    y = p(x)
    expected = (2, 3, 32) if kind == "resampler" else (2, 5, 32)
    assert y.shape == expected and torch.isfinite(y).all()


def test_unknown_kind_raises():
    with pytest.raises(ValueError, match="unknown projector kind 'qformer'"):
        build_projector("qformer", 4, 8)
    with pytest.raises(ValueError, match="needs num_tokens"):
        build_projector("resampler", 4, 8)


def test_resampler_ignores_padded_tokens():
    torch.manual_seed(0)
    r = Resampler(6, 16, num_tokens=2).eval()
    x = torch.randn(1, 4, 6)
    padded = torch.cat([x, 100 * torch.randn(1, 3, 6)], dim=1)  # 3 junk frames after the real 4
    mask = torch.tensor([[True] * 4 + [False] * 3])
    torch.testing.assert_close(r(padded, mask), r(x), rtol=1e-5, atol=1e-5)
    # and the junk does matter when not masked (the test can fail)
    assert not torch.allclose(r(padded), r(x), atol=1e-3)


def test_resampler_sees_order_and_handles_whisper_length():
    torch.manual_seed(0)
    r = Resampler(8, 16, num_tokens=4).eval()
    x = torch.randn(1, 5, 8)
    assert not torch.allclose(r(x), r(x.flip(1)), atol=1e-4)  # positions make frame order visible
    assert r(torch.randn(2, 1500, 8)).shape == (2, 4, 16)  # Whisper encoder frames


def test_resampler_rejects_empty_rows_and_bad_masks():
    r = Resampler(4, 8, num_tokens=2)
    with pytest.raises(ValueError, match="no real tokens"):
        r(torch.randn(2, 3, 4), torch.tensor([[True, False, False], [False, False, False]]))
    with pytest.raises(ValueError, match="mask must be"):
        r(torch.randn(2, 3, 4), torch.ones(2, 4, dtype=torch.bool))
