"""i2i.data.resize: MATLAB-compatible bicubic imresize."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from i2i.data.resize import cubic, imresize, output_size, resize_weights

# Antialiased Keys kernel (a=-0.5) for a ×1/2 downscale, hand-evaluated at the 8 input
# distances ±0.5, ±1.5, ±2.5, ±3.5 of an output centre: 0.5·k(d/2) with
# k(0.25)=0.8671875, k(0.75)=0.2265625, k(1.25)=-0.0703125, k(1.75)=-0.0234375.
HALF_TAPS = np.array([-0.0234375, -0.0703125, 0.2265625, 0.8671875,
                      0.8671875, 0.2265625, -0.0703125, -0.0234375]) / 2


def test_kernel_values() -> None:
    x = np.array([0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 2.5, -0.5])
    expect = np.array([1.0, 0.8671875, 0.5625, 0.0, -0.0625, 0.0, 0.0, 0.5625])
    assert np.allclose(cubic(x), expect)


def test_output_size_is_matlab_ceil() -> None:
    assert output_size(10, 0.25) == 3 and output_size(9, 1 / 3) == 3 and output_size(7, 4) == 28
    assert imresize(torch.zeros(1, 3, 10, 7), scale=0.25).shape == (1, 3, 3, 2)
    assert imresize(torch.zeros(3, 5, 6), scale=3).shape == (3, 15, 18)
    assert imresize(torch.zeros(5, 6), size=(4, 9)).shape == (4, 9)
    with pytest.raises(ValueError):
        imresize(torch.zeros(3, 5, 5))


@pytest.mark.parametrize("scale", [0.25, 1 / 3, 0.5, 0.7, 2.0, 3.0])
def test_constant_stays_constant(scale: float) -> None:
    x = torch.full((2, 3, 13, 17), 0.37)
    y = imresize(x, scale=scale)
    assert torch.allclose(y, torch.full_like(y, 0.37), atol=1e-6)
    assert np.allclose(resize_weights(13, output_size(13, scale), scale).sum(1), 1.0)


def test_hand_computed_weights_and_matlab_values_on_a_ramp() -> None:
    w = resize_weights(16, 8, 0.5)
    # 3rd output (1-based centre u = 3/0.5 - 0.5 = 5.5) uses 1-based inputs 2..9 = 0-based 1..8
    assert np.allclose(w[2], np.r_[0.0, HALF_TAPS, np.zeros(7)])
    # 1st output (u = 1.5): taps at 1-based inputs -2..5 mirror to 3,2,1,1,2,3,4,5
    expect0 = np.zeros(16)
    for src, tap in zip([2, 1, 0, 0, 1, 2, 3, 4], HALF_TAPS):
        expect0[src] += tap
    assert np.allclose(w[0], expect0)
    # Hence MATLAB's imresize(1:8, 0.5) along that axis, by hand: each output is the ramp
    # value at u (1.5, 3.5, 5.5, 7.5) plus tap × (mirrored value - ramp value) for the taps
    # that fall outside [1, 8]; e.g. output 2: 3.5 + (-0.01171875)·(1 - 0) = 3.48828125.
    ramp = torch.arange(1.0, 9.0, dtype=torch.float64).view(1, 8)
    out = imresize(ramp, size=(1, 4))
    assert torch.allclose(out, torch.tensor([[1.44921875, 3.48828125, 5.51171875, 7.55078125]], dtype=torch.float64))


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_integer_downscale_of_ramp_is_block_mean_in_interior(factor: int) -> None:
    n = 16 * factor
    x = torch.arange(n, dtype=torch.float64).view(1, 1, 1, n).expand(1, 1, 2 * factor, n) * 0.01 + 0.2
    y = imresize(x, scale=1 / factor)[0, 0, 0]
    blocks = x[0, 0, 1].view(-1, factor).mean(1)  # Keys reproduces linear functions exactly
    assert torch.allclose(y[3:-3], blocks[3:-3], atol=1e-12)
    assert not torch.allclose(y[:1], blocks[:1])  # the border differs (symmetric mirror)


def test_uint8_numpy_and_hwc_layout() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    out = imresize(a, scale=0.5)
    assert out.dtype == np.uint8 and out.shape == (6, 8, 3)
    ref = imresize(torch.from_numpy(a).permute(2, 0, 1).double(), scale=0.5).permute(1, 2, 0).numpy()
    assert np.array_equal(out, np.clip(np.rint(ref), 0, 255).astype(np.uint8))
    f = imresize(a.astype(np.float32) / 255, scale=2)
    assert f.dtype == np.float32 and f.shape == (24, 32, 3)


def _pil_float(channel: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(channel.astype(np.float32), "F").resize(size_wh, Image.BICUBIC))


@pytest.mark.parametrize("factor", [1 / 4, 1 / 3, 2.0])
def test_matches_pillow_bicubic_in_the_interior(factor: float) -> None:
    """Pillow's BICUBIC is the same antialiased a=-0.5 filter with truncated borders.

    On float ("F") images Pillow computes in double precision, so away from the borders
    (kernel support + 1 output pixel) the two agree to 1e-5 (values in [0, 1]).
    """
    from skimage import data

    photo = data.astronaut()[100:292, 140:332].astype(np.float32) / 255.0  # 192×192 RGB crop
    x = torch.from_numpy(photo).permute(2, 0, 1)
    h, w = photo.shape[:2]
    oh, ow = output_size(h, factor), output_size(w, factor)
    ours = imresize(x, size=(oh, ow)).permute(1, 2, 0).numpy()
    pil = np.stack([_pil_float(photo[..., c], (ow, oh)) for c in range(3)], axis=-1)
    m = 4 if factor < 1 else int(2 * factor) + 2
    assert np.abs(ours[m:-m, m:-m] - pil[m:-m, m:-m]).max() < 1e-5
    border = np.abs(ours - pil).max()
    assert border < 0.1  # borders differ, but not wildly


def test_differentiable_and_dtype_preserved() -> None:
    x = torch.rand(1, 2, 8, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: imresize(t, scale=0.5), (x,))
    assert imresize(torch.rand(1, 1, 8, 8, dtype=torch.float16), scale=0.5).dtype == torch.float16
