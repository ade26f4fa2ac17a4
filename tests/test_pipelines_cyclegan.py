"""i2i.pipelines.cyclegan: both directions on arrays, checked against the generators run by hand."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from i2i.errors import ConfigError
from i2i.inference import LoadedModel
from i2i.nn.resnet_generator import ResnetGenerator
from i2i.pipelines.cyclegan import CycleGANPipeline

LOSSES = {"adversarial": {"type": "adversarial", "objective": "lsgan"}, "cycle": {"type": "l1", "weight": 10.0}}


def _model(meta: bool = True) -> LoadedModel:
    """A: gray (1 channel), B: RGB (3): G maps 1 -> 3, F maps 3 -> 1; both need H, W % 4 == 0."""
    torch.manual_seed(0)
    G = ResnetGenerator(in_channels=1, out_channels=3, base_channels=4, n_blocks=1).eval()
    Fn = ResnetGenerator(in_channels=3, out_channels=1, base_channels=4, n_blocks=1).eval()
    m = {"value_range": [-1, 1], "multiple": 4, "a_channels": 1, "b_channels": 3,
         "directions": {"AtoB": "generator_ab", "BtoA": "generator_ba"}} if meta else {}
    return LoadedModel(nets={"generator_ab": G, "generator_ba": Fn}, task="cyclegan", recipe={"type": "cyclegan"},
                       meta=m, config={"losses": LOSSES}, path=Path("."))


@torch.no_grad()
def _by_hand(net: torch.nn.Module, img: np.ndarray) -> np.ndarray:
    """(H, W, C) uint8 -> [-1, 1], reflection padding to a multiple of 4 split between the two
    sides (the odd pixel after), the network, crop, back to (H, W, C_out) uint8."""
    x = torch.from_numpy(img.transpose(2, 0, 1).astype(np.float32) / 127.5 - 1)[None]
    h, w = img.shape[:2]
    ph, pw = -h % 4, -w % 4
    y = net(F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), mode="reflect"))
    y = y[..., ph // 2:ph // 2 + h, pw // 2:pw // 2 + w]
    return ((y[0].permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)


def _image(h: int, w: int, c: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)


@pytest.mark.parametrize("h, w", [(16, 20), (13, 21), (9, 6)])
def test_each_direction_equals_its_generator_on_the_padded_tensor(h: int, w: int) -> None:
    model = _model()
    pipe = CycleGANPipeline(model)
    a, b = _image(h, w, 1, 1), _image(h, w, 3, 2)
    out_ab, out_ba = pipe(a), pipe(b, direction="BtoA")
    assert out_ab.shape == (h, w, 3) and out_ba.shape == (h, w, 1) and out_ab.dtype == out_ba.dtype == np.uint8
    assert np.abs(out_ab.astype(int) - _by_hand(model.nets["generator_ab"], a).astype(int)).max() <= 1
    assert np.abs(out_ba.astype(int) - _by_hand(model.nets["generator_ba"], b).astype(int)).max() <= 1
    # the pipeline's own default direction
    assert np.array_equal(CycleGANPipeline(model, direction="BtoA")(b), out_ba)


def test_directions_follow_the_exports_slot_table() -> None:
    """An export whose table says AtoB = generator_ba (and A = RGB) gets generator_ba for AtoB."""
    model = _model()
    model.meta.update(directions={"AtoB": "generator_ba", "BtoA": "generator_ab"}, a_channels=3, b_channels=1)
    pipe = CycleGANPipeline(model)
    rgb, gray = _image(12, 12, 3), _image(12, 12, 1)
    out_ab, out_ba = pipe(rgb), pipe(gray, "BtoA")
    assert out_ab.shape == (12, 12, 1) and out_ba.shape == (12, 12, 3)
    assert np.abs(out_ab.astype(int) - _by_hand(model.nets["generator_ba"], rgb).astype(int)).max() <= 1
    assert np.abs(out_ba.astype(int) - _by_hand(model.nets["generator_ab"], gray).astype(int)).max() <= 1


def test_channels_are_converted_to_the_source_domains() -> None:
    model = _model()
    pipe = CycleGANPipeline(model)
    rgb = _image(16, 16, 3)
    gray = np.round(rgb.astype(np.float64) @ [0.299, 0.587, 0.114]).clip(0, 255).astype(np.uint8)
    assert np.array_equal(pipe(rgb), pipe(gray))  # A is gray: BT.601 luma
    assert np.array_equal(pipe(gray), pipe(gray[..., None]))
    # B is RGB: a gray image goes in as three equal channels
    assert np.array_equal(pipe(gray, direction="BtoA"), pipe(np.repeat(gray[..., None], 3, 2), direction="BtoA"))


def test_checkpoint_without_meta_reads_the_networks() -> None:
    model = _model(meta=False)
    pipe = CycleGANPipeline(model)
    assert pipe.multiple == 4 and pipe.channels == {"AtoB": 1, "BtoA": 3}
    b = _image(10, 14, 3)
    assert np.abs(pipe(b, "BtoA").astype(int) - _by_hand(model.nets["generator_ba"], b).astype(int)).max() <= 1


def test_bad_direction_image_and_model_are_one_line_errors() -> None:
    model = _model()
    for bad in ("AB", "atob", ""):
        with pytest.raises(ConfigError, match="expected AtoB or BtoA") as e:
            CycleGANPipeline(model, direction=bad)
        assert e.value.key == "direction" and "\n" not in str(e.value)
    pipe = CycleGANPipeline(model)
    with pytest.raises(ConfigError, match="expected AtoB or BtoA, got 'BtoB'"):
        pipe(_image(8, 8, 1), direction="BtoB")
    for img in (np.zeros((8, 8, 3), np.float32), np.zeros((8, 8, 4), np.uint8), np.zeros((2, 8, 8, 3), np.uint8)):
        with pytest.raises(ValueError, match=r"expected an \(H, W\) or \(H, W, 1\|3\) uint8 image"):
            pipe(img)
    del model.nets["generator_ba"]
    with pytest.raises(ConfigError, match="no generator_ba network"):
        CycleGANPipeline(model)


def test_pipeline_for_gives_the_cyclegan_pipeline() -> None:
    from i2i.pipelines import pipeline_for

    pipe = pipeline_for(_model(), direction="BtoA")
    assert isinstance(pipe, CycleGANPipeline) and pipe.direction == "BtoA"
