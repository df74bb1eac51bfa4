"""Fast tests of the pure-PyTorch ports in affectllm.weights (FER mini-Xception, EfficientNet-Lite0)
with random weights: Keras-layout weight mapping, TF 'same' padding, preprocessing, shapes and
state-dict names. The real weights are checked in tests/slow/test_weights_real.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch



def test_fer_keras_layout_roundtrip_and_shapes(tmp_path):
    import h5py

    from affectllm.weights.fer_net import FER_LABELS, FerNet, _keras_to_state_dict

    torch.manual_seed(0)
    net = FerNet().eval()
    sd = net.state_dict()
    for v in sd.values():
        if v.is_floating_point():
            v.uniform_(0.5, 1.5)
    h5 = tmp_path / "m.hdf5"
    with h5py.File(h5, "w") as f:  # the Keras 2 layout: model_weights/<layer>/<layer>_1/<var>:0
        g = f.create_group("model_weights")

        def put(layer, var, arr):
            g.require_group(layer).require_group(f"{layer}_1")[f"{var}:0"] = arr.numpy()

        conv = {"conv1": "conv2d_1", "conv2": "conv2d_2", "classifier": "conv2d_7"}
        bns = {"bn1": "batch_normalization_1", "bn2": "batch_normalization_2"}
        for i in range(4):
            conv[f"blocks.{i}.skip"] = f"conv2d_{i + 3}"
            bns.update({f"blocks.{i}.skip_bn": f"batch_normalization_{3 * i + 3}",
                        f"blocks.{i}.bn1": f"batch_normalization_{3 * i + 4}",
                        f"blocks.{i}.bn2": f"batch_normalization_{3 * i + 5}"})
            for j in (1, 2):
                layer = f"separable_conv2d_{2 * i + j}"
                put(layer, "depthwise_kernel", sd[f"blocks.{i}.sep{j}.depthwise.weight"].permute(2, 3, 0, 1))
                put(layer, "pointwise_kernel", sd[f"blocks.{i}.sep{j}.pointwise.weight"].permute(2, 3, 1, 0))
        for name, layer in conv.items():
            put(layer, "kernel", sd[f"{name}.weight"].permute(2, 3, 1, 0))
        put("conv2d_7", "bias", sd["classifier.bias"])
        for name, layer in bns.items():
            for var, key in (("gamma", "weight"), ("beta", "bias"), ("moving_mean", "running_mean"),
                             ("moving_variance", "running_var")):
                put(layer, var, sd[f"{name}.{key}"])
    ported = _keras_to_state_dict(h5)
    for k, v in ported.items():
        torch.testing.assert_close(v, sd[k], msg=k)
    x = torch.rand(3, 1, 64, 64) * 2 - 1
    assert net(x).shape == (3, len(FER_LABELS)) and net.embed(x).shape == (3, 128)
    torch.testing.assert_close(net.probs(x).sum(-1), torch.ones(3))


def test_tf_same_maxpool_pads_bottom_right():
    from affectllm.weights.fer_net import _maxpool_tf_same

    x = torch.arange(16.0).view(1, 1, 4, 4)
    # TF 'same', 3x3 stride 2 on 4x4: windows rows/cols {0,1,2} and {2,3,(pad)}.
    assert _maxpool_tf_same(x).flatten().tolist() == [10.0, 11.0, 14.0, 15.0]
    assert _maxpool_tf_same(torch.zeros(1, 1, 15, 15)).shape[-1] == 8


def test_preprocess_gray_matches_fer_formula():
    from affectllm.weights.fer_net import preprocess_gray

    face = np.full((64, 64), 255, np.uint8)
    face[0, 0] = 0
    x = preprocess_gray(face)
    assert x.shape == (1, 1, 64, 64) and x.dtype == torch.float32
    assert x[0, 0, 0, 0] == -1.0 and x[0, 0, 1, 1] == 1.0
    assert preprocess_gray(np.zeros((100, 80), np.uint8)).shape == (1, 1, 64, 64)
    with pytest.raises(ValueError):
        preprocess_gray(np.zeros((10, 10, 3), np.uint8))


def test_efficientnet_shapes_and_state_dict_names():
    from affectllm.weights.efficientnet import STAGES, EfficientNetLite0, _rename

    net = EfficientNetLite0().eval()
    with torch.no_grad():
        feats = net.forward_features(torch.zeros(2, 3, 224, 224))
        logits = net(torch.zeros(2, 3, 224, 224))
    assert feats.shape == (2, 1280, 7, 7) and logits.shape == (2, 1000)
    # EfficientNet-PyTorch names (as in the package's .pth) must map onto every parameter.
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    names = ["_conv_stem.weight", "_conv_head.weight", "_fc.weight", "_fc.bias"]
    names += [f"_bn0.{s}" for s in bn] + [f"_bn1.{s}" for s in bn]
    i = 0
    for repeats, *_, expand, _cout in STAGES:
        for _ in range(repeats):
            p = f"_blocks.{i}"
            if expand != 1:
                names += [f"{p}._expand_conv.weight"] + [f"{p}._bn0.{s}" for s in bn]
            names += [f"{p}._depthwise_conv.weight", f"{p}._project_conv.weight"]
            names += [f"{p}._bn1.{s}" for s in bn] + [f"{p}._bn2.{s}" for s in bn]
            i += 1
    assert {_rename(n) for n in names} == set(net.state_dict())
    assert json.dumps(sorted(net.state_dict())) and i == 16
