"""i2i.pipelines.segmentation: class ids, colours and overlays on arrays, checked by hand.

The network is a 1×1 convolution with identity weights, so its class for a pixel is the
index of the pixel's largest RGB channel: the expected ids are computed with numpy.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from i2i.errors import ConfigError
from i2i.inference import LoadedModel
from i2i.pipelines.segmentation import VOID_COLOUR, SegmentationPipeline, class_table, colourise

PALETTE = [[128, 0, 0], [0, 128, 0], [0, 0, 128]]
NAMES = ["red", "green", "blue"]


def _model(meta: dict | None = None) -> LoadedModel:
    G = torch.nn.Conv2d(3, 3, 1)
    with torch.no_grad():
        G.weight.copy_(torch.eye(3)[..., None, None])
        G.bias.zero_()
    meta = {"class_names": NAMES, "palette": PALETTE, "ignore_index": 255} if meta is None else meta
    return LoadedModel(nets={"generator": G}, task="seg", recipe={"type": "seg_adversarial", "num_classes": 3},
                       meta=meta, config={}, path=Path("."))


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_ids_are_the_networks_argmax_at_any_size() -> None:
    pipe = SegmentationPipeline(_model())
    for h, w in ((5, 7), (16, 11)):
        img = _image(h, w, seed=h)
        ids = pipe(img)
        assert ids.shape == (h, w) and ids.dtype == np.int64
        assert np.array_equal(ids, img.argmax(2))


def test_resize_runs_smaller_and_returns_the_input_size() -> None:
    img = _image(12, 18)
    ids = SegmentationPipeline(_model(), resize=6)(img)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255  # by hand: down (antialiased), back up
    small = F.interpolate(x, size=(6, 9), mode="bilinear", align_corners=False, antialias=True)
    want = F.interpolate(small, size=(12, 18), mode="bilinear", align_corners=False).argmax(1)[0].numpy()
    assert ids.shape == (12, 18) and np.array_equal(ids, want)
    assert not np.array_equal(ids, img.argmax(2))  # the resize did something


def test_overlay_colours_are_the_palette_blended_with_the_image() -> None:
    img = _image(9, 10)
    ids = img.argmax(2)
    pal = np.asarray(PALETTE)
    assert np.array_equal(SegmentationPipeline(_model(), alpha=1.0).overlay(img), pal[ids])  # pure class colours
    assert np.array_equal(SegmentationPipeline(_model(), alpha=0.0).overlay(img), img)
    half = SegmentationPipeline(_model(), alpha=0.5).overlay(img, ids).astype(int)
    assert np.abs(half - (img.astype(int) + pal[ids]) / 2).max() <= 0.5  # rounded, never truncated
    quarter = SegmentationPipeline(_model(), alpha=0.25).overlay(img, ids)
    assert np.array_equal(quarter, np.rint(0.75 * img + 0.25 * pal[ids]).astype(np.uint8))


def test_colourise_paints_void_ids_in_the_void_colour() -> None:
    ids = np.array([[0, 1, 2], [-1, 3, 255]])
    out = colourise(ids, np.asarray(PALETTE, np.uint8))
    assert out[0].tolist() == PALETTE
    assert out[1].tolist() == [list(VOID_COLOUR)] * 3


def test_class_table_and_bad_parameters() -> None:
    names, pal, ignore = class_table(_model())
    assert names == NAMES and pal.dtype == np.uint8 and pal.tolist() == PALETTE and ignore == 255
    with pytest.raises(ConfigError, match="3 class names but 2 palette colours"):
        class_table(_model({"class_names": NAMES, "palette": PALETTE[:2]}))
    for kwargs, key in (({"alpha": 1.5}, "alpha"), ({"resize": 0}, "resize")):
        with pytest.raises(ConfigError) as e:
            SegmentationPipeline(_model(), **kwargs)
        assert e.value.key == key


def test_pipeline_for_picks_the_tasks_pipeline() -> None:
    from i2i.errors import I2IError
    from i2i.pipelines import pipeline_for

    pipe = pipeline_for(_model(), alpha=0.25)
    assert isinstance(pipe, SegmentationPipeline) and pipe.alpha == 0.25
    other = _model()
    other.task = "inpainting"
    with pytest.raises(I2IError, match="no inference pipeline for task 'inpainting'"):
        pipeline_for(other)
