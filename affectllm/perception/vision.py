"""Scene / frame features: a frozen image encoder giving a fixed number of visual tokens.

``VisionEncoder(name)`` is a small builder over two kinds of encoder:

- ``"efficientnet-lite0"`` (default, offline): EfficientNet-Lite0 ImageNet weights from
  :func:`affectllm.weights.load_efficientnet`; its last feature map ``[1280 x 7 x 7]`` is
  average-pooled to a ``gh x gw`` grid of ``n_tokens`` tokens (d = 1280).
- an open_clip model: ``"hf-hub:org/repo"`` / ``"local-dir:/path"`` (weights and config come
  from there, the hub only if already cached), or a built-in open_clip architecture name such
  as ``"ViT-B-32"`` with ``pretrained=`` a local checkpoint path (or a tag already in the
  cache). No CLIP weights exist offline, so ``pretrained=None`` raises WeightsNotFound rather
  than silently encoding with random weights. Patch tokens of the ViT tower (after ``ln_post``,
  d = tower width) are pooled to the same grid.

``encode(image_rgb) -> [n_tokens x d]``; ``perceive(image) -> VisionObs``.

Deliberately not here: faces (``perception/face.py``), captioning, and any training: the
encoder is frozen and in eval mode; the projector that maps these tokens into the LLM lives in
``affectllm/projector.py``.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

import numpy as np

from affectllm.errors import InputError, WeightsNotFound
from affectllm.perception.observations import VisionObs

if TYPE_CHECKING:  # torch loads with the models, not on import
    import torch

EFFICIENTNET_NAMES = ("efficientnet-lite0", "efficientnet")


def token_grid(n_tokens: int) -> tuple[int, int]:
    """The most square ``(rows, cols)`` grid with ``rows * cols == n_tokens`` (4 -> 2x2, 6 -> 2x3)."""
    if n_tokens < 1:
        raise ValueError(f"n_tokens must be >= 1, got {n_tokens}")
    rows = max(r for r in range(1, int(math.isqrt(n_tokens)) + 1) if n_tokens % r == 0)
    return rows, n_tokens // rows


def pool_tokens(fmap: torch.Tensor, n_tokens: int) -> torch.Tensor:
    """Feature map ``[b x d x h x w]`` -> ``[b x n_tokens x d]`` by adaptive average pooling (row-major)."""
    import torch.nn.functional as F

    grid = F.adaptive_avg_pool2d(fmap, token_grid(n_tokens))
    return grid.flatten(2).transpose(1, 2)


class VisionEncoder:
    """Frozen image encoder -> ``[n_tokens x d]`` per image. Models load on construction."""

    def __init__(self, name: str = "efficientnet-lite0", pretrained: str | None = None, n_tokens: int = 4,
                 device: str = "cpu", model=None, preprocess=None):
        """``model``/``preprocess``: an already-built encoder (tests, sharing one across objects)."""
        token_grid(n_tokens)  # validate early
        self.name, self.n_tokens, self.device = name, n_tokens, device
        self.kind = "efficientnet" if name.lower() in EFFICIENTNET_NAMES else "open_clip"
        if self.kind == "efficientnet":
            if model is None:
                from affectllm.weights import load_efficientnet

                model = load_efficientnet()
            self._model = model.to(device).eval()
            self._preprocess = preprocess
        else:
            self._model, self._preprocess = (model, preprocess) if model is not None else \
                _build_open_clip(name, pretrained, device)
            self._model = self._model.to(device).eval()
            visual = self._model.visual
            if not hasattr(visual, "output_tokens") or not hasattr(visual, "grid_size"):
                raise ValueError(f"open_clip model '{name}': only ViT image towers give spatial tokens; "
                                 f"{type(visual).__name__} is not supported (use a ViT or efficientnet-lite0)")
            visual.output_tokens = True

    @property
    def feature_dim(self) -> int:
        if self.kind == "efficientnet":
            return int(self._model.head_bn.num_features)
        return int(self._model.visual.transformer.width)

    def _tensor(self, rgb: np.ndarray) -> torch.Tensor:
        if self.kind == "efficientnet":
            if self._preprocess is not None:
                return self._preprocess(rgb)
            from affectllm.weights import preprocess_rgb

            return preprocess_rgb(rgb)
        from PIL import Image

        return self._preprocess(Image.fromarray(rgb))[None]

    def encode_batch(self, images: list) -> torch.Tensor:
        """Images (paths, PIL or ``[h x w x 3]`` uint8 RGB) -> ``[b x n_tokens x d]`` float32."""
        import torch

        from affectllm.io import ensure_rgb

        x = torch.cat([self._tensor(ensure_rgb(im)) for im in images]).to(self.device)
        with torch.inference_mode():
            if self.kind == "efficientnet":
                fmap = self._model.forward_features(x)  # [b x 1280 x 7 x 7]
            else:
                visual = self._model.visual
                _, tokens = visual(x)  # [b x patches x width], class token already removed
                gh, gw = visual.grid_size
                fmap = tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], gh, gw)
            return pool_tokens(fmap.float(), self.n_tokens).cpu().contiguous()

    def encode(self, image_rgb) -> torch.Tensor:
        """One image -> ``[n_tokens x d]``."""
        return self.encode_batch([image_rgb])[0]

    def perceive(self, image, item: str | None = None) -> VisionObs:
        """Scene features of one image (path, PIL or array); bad files raise InputError naming ``item``."""
        try:
            feats = self.encode(image)
        except InputError as e:
            if item is None or str(item) == e.item:
                raise
            raise InputError(f"{item} ({e.item})", e.reason) from e
        return VisionObs(encoder=self.name, features=feats)


def _build_open_clip(name: str, pretrained: str | None, device: str):
    """open_clip model + eval transform, or WeightsNotFound saying what would provide weights."""
    import open_clip

    schema = name.startswith(("hf-hub:", "local-dir:"))
    if not schema:
        if name not in open_clip.list_models():
            raise ValueError(f"unknown vision encoder '{name}': use 'efficientnet-lite0', an open_clip "
                             "architecture (open_clip.list_models()), 'hf-hub:org/repo' or 'local-dir:/path'")
        if pretrained is None:
            raise WeightsNotFound(
                f"open_clip model '{name}' needs weights: pass pretrained=<local checkpoint path> (no CLIP or "
                "SigLIP weights are available offline, and random weights would make meaningless "
                "features); or use the offline default 'efficientnet-lite0'")
        looks_like_path = os.sep in pretrained or pretrained.endswith((".pt", ".pth", ".bin", ".safetensors"))
        if looks_like_path and not os.path.isfile(pretrained):
            raise WeightsNotFound(f"open_clip checkpoint not found: {pretrained}")
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            name, pretrained=None if schema else pretrained, device=device, pretrained_text=False)
    except WeightsNotFound:
        raise
    except Exception as e:  # offline hub misses, bad checkpoints: say what was tried
        raise WeightsNotFound(f"could not load open_clip '{name}' (pretrained={pretrained!r}) offline: "
                              f"{type(e).__name__}: {e}") from e
    return model, preprocess
