"""i2i.pipelines.super_resolution: arrays in, arrays out, checked against the network run by hand."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from i2i.data.resize import imresize
from i2i.errors import ConfigError
from i2i.inference import LoadedModel
from i2i.nn.srresnet import SRResNet
from i2i.pipelines.super_resolution import (SuperResolutionPipeline, default_overlap, probe_input, receptive_radius,
                                            scale_of)

SCALE = 4


def _net(seed: int = 0, blocks: int = 1) -> SRResNet:
    torch.manual_seed(seed)
    net = SRResNet(scale=SCALE, width=8, num_blocks=blocks)
    for m in net.modules():  # non-trivial BN statistics: eval-mode BN is not the identity
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return net.eval()


def _photo(h: int, w: int) -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[120:120 + h, 200:200 + w])


@torch.no_grad()
def _by_hand(net: SRResNet, rgb: np.ndarray) -> np.ndarray:
    """The whole image through the network at once, float in [0, 1]: (h·4, w·4, 3)."""
    x = torch.from_numpy(rgb.astype(np.float32) / 255).permute(2, 0, 1)[None]
    return net(x).clamp(0, 1)[0].permute(1, 2, 0).numpy()


def test_untiled_uint8_equals_the_network_rounded() -> None:
    net, img = _net(), _photo(13, 17)
    out = SuperResolutionPipeline(net, tile=None)(img)
    assert out.shape == (52, 68, 3) and out.dtype == np.uint8
    want = np.rint(_by_hand(net, img) * 255)
    assert np.abs(out.astype(int) - want).max() <= 1  # float round-off at .5 only
    assert (out.astype(int) != want).mean() < 0.001


def test_tiled_equals_untiled_and_overlap_matters() -> None:
    net, img = _net(1, blocks=2), _photo(30, 26)
    assert receptive_radius(net) == pytest.approx(2 * 2 + 7.5)  # 2B + 7.5 for SRResNet ×4
    assert default_overlap(net) == 14  # ceil(11.5) + 2
    f = img.astype(np.float32) / 255
    whole = SuperResolutionPipeline(net, tile=None)(f)
    tiled = SuperResolutionPipeline(net, tile=8)(f)  # 4 × 4 tiles of 8 (last ones smaller)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)
    np.testing.assert_allclose(whole, _by_hand(net, img), atol=1e-5)
    short = SuperResolutionPipeline(net, tile=8, overlap=2)(f)  # too little context
    assert np.abs(short - whole).max() > 1 / 255
    # the batched path is the same computation, tile by tile
    batched = SuperResolutionPipeline(net, tile=8, tile_batch=5)(img)
    assert np.array_equal(batched, SuperResolutionPipeline(net, tile=8, tile_batch=1)(img))


def test_gray_is_the_luma_of_the_rgb_replica_and_alpha_is_bicubic() -> None:
    net = _net(2)
    gray = (np.arange(9 * 11).reshape(9, 11) * 2).astype(np.uint8)
    out = SuperResolutionPipeline(net, tile=None)(gray)
    assert out.shape == (36, 44) and out.dtype == np.uint8
    rgb = _by_hand(net, np.repeat(gray[..., None], 3, axis=2))
    luma = np.clip(rgb @ np.array([0.299, 0.587, 0.114], np.float32), 0, 1)
    assert np.abs(out.astype(int) - np.rint(luma * 255)).max() <= 1
    # RGBA: colour through the network, alpha through MATLAB bicubic (not the network)
    rgba = np.dstack([_photo(9, 11), np.linspace(0, 255, 99).reshape(9, 11).astype(np.uint8)])
    up = SuperResolutionPipeline(net, tile=None)(rgba)
    assert up.shape == (36, 44, 4)
    assert np.array_equal(up[..., :3], SuperResolutionPipeline(net, tile=None)(rgba[..., :3]))
    alpha = imresize(torch.from_numpy(rgba[..., 3].astype(np.float32) / 255)[None, None], scale=4.0)
    assert np.array_equal(up[..., 3], np.rint(alpha.clamp(0, 1)[0, 0].numpy() * 255).astype(np.uint8))


def test_float_in_float_out_and_tensors() -> None:
    net, img = _net(3), _photo(7, 6)
    f = img.astype(np.float32) / 255
    pipe = SuperResolutionPipeline(net, tile=None)
    out = pipe(f)
    assert out.dtype == np.float32 and out.shape == (28, 24, 3)
    t = torch.from_numpy(f).permute(2, 0, 1)
    assert np.array_equal(pipe(t), out) and np.array_equal(pipe(t[None]), out)
    batch = torch.stack([t, t.flip(-1)])
    np.testing.assert_allclose(pipe.tensor(batch)[1].permute(1, 2, 0).numpy(), pipe(t.flip(-1)), atol=1e-6)
    with pytest.raises(ValueError, match="batch"):
        pipe(batch)


def test_bad_parameters_name_themselves() -> None:
    net = _net()
    for kwargs, key in (({"tile": -1}, "tile"), ({"overlap": -1}, "tile_overlap"), ({"tile_batch": 0}, "tile_batch")):
        with pytest.raises(ConfigError) as e:
            SuperResolutionPipeline(net, **kwargs)
        assert e.value.key == key
    with pytest.raises(ValueError, match="expected uint8 or float"):
        SuperResolutionPipeline(net)(np.zeros((4, 4, 3), np.int32))


def test_from_a_loaded_model_and_fast() -> None:
    net = _net(4)
    model = LoadedModel(nets={"generator": net}, task="sr", recipe={"type": "sr", "scale": SCALE}, meta={"scale": SCALE},
                        config={}, path=Path("."))
    assert scale_of(model) == SCALE
    (probe,) = probe_input(model)
    assert probe.shape == (1, 3, 64, 64) and 0 <= probe.min() and probe.max() <= 1
    img = _photo(12, 10)
    plain = SuperResolutionPipeline(model, tile=None)(img)
    fast = SuperResolutionPipeline(model, tile=None, fast=True)  # folded BN, channels-last, autocast
    assert fast.generator is not net and model.generator is net  # the loaded model is left as it was
    assert np.abs(fast(img).astype(int) - plain.astype(int)).max() <= 4
