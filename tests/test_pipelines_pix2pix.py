"""i2i.pipelines.pix2pix: sketch -> photo on arrays, checked against the U-Net run by hand."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from i2i.data.edges import canny_sketch
from i2i.errors import ConfigError
from i2i.inference import LoadedModel
from i2i.nn.unet import UNet
from i2i.pipelines.pix2pix import Pix2PixPipeline, generator_mode, make_sketch

DATA = {"type": "photo_sketch", "sketch": "canny", "sketch_params": {"sigma": 1.5}, "sketch_channels": 1}


def _model(data: dict | None = None, in_channels: int = 1) -> LoadedModel:
    torch.manual_seed(0)
    G = UNet(in_channels=in_channels, out_channels=3, num_downs=3, base_channels=4, max_channels=8).eval()
    return LoadedModel(nets={"generator": G}, task="sketch2photo", recipe={"type": "pix2pix"},
                       meta={"in_channels": in_channels, "multiple": 8}, config={"data": data or DATA}, path=Path("."))


def _sketch(h: int, w: int) -> np.ndarray:
    a = np.full((h, w), 255, np.uint8)
    a[h // 3, :] = 0
    a[:, w // 2] = 0
    return a


@torch.no_grad()
def _by_hand(G: torch.nn.Module, gray: np.ndarray, multiple: int = 8) -> np.ndarray:
    """[-1, 1] input, reflection padding split between both sides, G, crop, back to uint8."""
    x = torch.from_numpy(gray.astype(np.float32) / 127.5 - 1)[None, None]
    h, w = gray.shape
    ph, pw = -h % multiple, -w % multiple
    y = G(F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), mode="reflect"))
    y = y[..., ph // 2:ph // 2 + h, pw // 2:pw // 2 + w]
    return ((y[0].permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)


def test_any_size_equals_the_padded_network() -> None:
    model = _model()
    pipe = Pix2PixPipeline(model)
    for h, w in ((16, 24), (13, 21), (9, 30)):
        s = _sketch(h, w)
        out = pipe(s)
        assert out.shape == (h, w, 3) and out.dtype == np.uint8
        assert np.abs(out.astype(int) - _by_hand(model.generator, s).astype(int)).max() <= 1


def test_colour_input_goes_in_as_bt601_gray() -> None:
    model = _model()
    rgb = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    gray = np.round(rgb.astype(np.float64) @ [0.299, 0.587, 0.114]).clip(0, 255).astype(np.uint8)
    pipe = Pix2PixPipeline(model)
    assert np.array_equal(pipe(rgb), pipe(gray))


def test_from_photo_sketches_in_the_runs_style_then_translates() -> None:
    model = _model()
    photo = np.random.default_rng(1).integers(0, 256, (20, 28, 3), dtype=np.uint8)
    pipe = Pix2PixPipeline(model, from_photo=True)
    sketch = pipe.input_for(photo)
    assert np.array_equal(sketch, canny_sketch(photo, sigma=1.5, channels=1))  # the run's function and parameters
    assert np.array_equal(sketch, make_sketch(model, photo))
    assert np.array_equal(pipe(photo), Pix2PixPipeline(model)(sketch))
    small = Pix2PixPipeline(model, from_photo=True, resize=10)
    assert small.input_for(photo).shape[:2] == (10, 14) and small(photo).shape == (10, 14, 3)


def test_wrong_runs_and_parameters_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="'aligned' pairs") as e:
        Pix2PixPipeline(_model({"type": "aligned"}), from_photo=True)
    assert e.value.key == "from_photo"
    with pytest.raises(ConfigError, match="direction BtoA"):
        Pix2PixPipeline(_model({**DATA, "direction": "BtoA"}), from_photo=True)
    with pytest.raises(ConfigError) as e:
        Pix2PixPipeline(_model(), resize=0)
    assert e.value.key == "resize"


def test_test_time_noise_and_modes_restored() -> None:
    model = _model()
    G = model.generator
    s = _sketch(16, 16)
    pipe = Pix2PixPipeline(model)
    assert np.array_equal(pipe(s), pipe(s))  # eval mode: deterministic
    noisy = Pix2PixPipeline(model, dropout=True, batch_stats=True)
    torch.manual_seed(0)
    a = noisy(s)
    torch.manual_seed(1)
    b = noisy(s)
    torch.manual_seed(0)
    assert not np.array_equal(a, b) and np.array_equal(a, noisy(s))  # the seed decides the noise
    assert not any(m.training for m in G.modules())  # each call leaves the modes as they were
    bn = next(m for m in G.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean)) and bn.momentum == 0.1
    with generator_mode(G, dropout=True) as g:
        assert all(m.training for m in g.modules() if isinstance(m, torch.nn.Dropout))
