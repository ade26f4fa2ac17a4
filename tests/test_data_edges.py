"""Sketch extraction: Canny and thresholded XDoG, black lines on white."""
from __future__ import annotations

import numpy as np
import pytest
from skimage import data
from skimage.transform import rescale

from i2i.data.edges import canny_sketch, to_gray01, xdog_sketch


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    img = rescale(data.astronaut(), 0.25, channel_axis=-1, anti_aliasing=True)  # (128, 128, 3) float in [0, 1]
    return (img * 255).round().astype(np.uint8)


def square(size: int = 64, lo: int = 60, hi: int = 200) -> np.ndarray:
    img = np.full((size, size, 3), lo, np.uint8)
    img[16:48, 16:48] = hi
    return img


@pytest.mark.parametrize("fn", [canny_sketch, xdog_sketch])
@pytest.mark.parametrize("channels", [1, 3])
def test_real_photo_shape_binaryish(photo: np.ndarray, fn, channels: int) -> None:
    s = fn(photo, channels=channels)
    assert s.shape == (*photo.shape[:2], channels) and s.dtype == np.uint8
    assert (s == s[..., :1]).all()
    black, white = (s < 64).mean(), (s > 191).mean()
    assert black + white > 0.97, "sketch should be (nearly) binary"
    assert 0.01 < black < 0.5, f"lines on paper: mostly white with some black, got black={black:.3f}"


@pytest.mark.parametrize("fn", [canny_sketch, xdog_sketch])
def test_square_edges_on_boundary(fn) -> None:
    s = fn(square())[..., 0]
    lines = s < 128
    ring = np.zeros_like(lines)
    ring[13:51, 13:51] = True
    ring[19:45, 19:45] = False  # a band of ±3 px around the square's border at 16 and 47/48
    assert lines.any()
    assert not lines[~ring].any(), "no lines away from the square's boundary"
    # every side of the square has a continuous line along its middle part
    for side in (lines[13:19, 20:44], lines[45:51, 20:44], lines[20:44, 13:19], lines[20:44, 45:51]):
        assert side.any(axis=0 if side.shape[0] < side.shape[1] else 1).all()


def test_flat_image_is_blank_paper() -> None:
    for fn in (canny_sketch, xdog_sketch):
        assert (fn(np.full((32, 40), 128, np.uint8)) == 255).all()


def test_gray_conversion_and_errors() -> None:
    assert to_gray01(np.full((2, 2, 3), 255, np.uint8)) == pytest.approx(np.ones((2, 2)))
    assert to_gray01(np.zeros((2, 2, 1), np.float32)).shape == (2, 2)
    with pytest.raises(ValueError, match="channels"):
        canny_sketch(square(), channels=2)
    with pytest.raises(ValueError, match="low"):
        canny_sketch(square(), low=0.5, high=0.1)
    with pytest.raises(ValueError, match="shape"):
        xdog_sketch(np.zeros((2, 2, 2, 2)))
