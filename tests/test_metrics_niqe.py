"""NIQE (i2i.metrics.niqe) against the reference implementation's values and closed forms."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import tomllib
import torch
from skimage import data

from i2i.errors import MetricError
from i2i.metrics import niqe as mn

ROOT = Path(__file__).resolve().parents[1]

# BasicSR 1.4.2's calculate_niqe (the bench venv /work/benchvenv), exactly as SR papers call it:
#
#   import numpy as np, skimage.data as d
#   from basicsr.metrics.niqe import calculate_niqe
#   for name in ("camera", "astronaut", "chelsea"):
#       img = getattr(d, name)()
#       bgr = img[..., ::-1] if img.ndim == 3 else img          # basicsr reads BGR (cv2)
#       print(name, repr(calculate_niqe(np.ascontiguousarray(bgr), crop_border=0, input_order="HWC", convert_to="y")))
#
# (scikit-image 0.26.0). camera is grey: basicsr keeps the single channel as it is, as we do.
BASICSR = {"camera": 3.096206619345783, "astronaut": 3.0649476661847754, "chelsea": 2.6255243812915023}
# The same basicsr ``niqe()`` on the same rounded Y, with every step in float64 as MATLAB computes
# (basicsr runs its filters on float32 Y and its ``imresize`` in float32): the script above with,
# before importing basicsr,
#   torch.set_default_dtype(torch.float64); torch.FloatTensor = torch.DoubleTensor; torch.Tensor.float = torch.Tensor.double
# and ``basicsr.metrics.niqe.niqe(y.astype(np.float64), mu_pris_param, cov_pris_param, gaussian_window)``
# on ``y = np.squeeze(to_y_channel(bgr.astype(np.float32))).round()`` (what calculate_niqe computes first).
BASICSR_FLOAT64 = {"camera": 3.096202208122647, "astronaut": 3.100451533184568, "chelsea": 2.6255266796680012}
# Stated tolerance against the unmodified reference: 0.01. astronaut is the exception (0.036 off):
# its flat dark and saturated areas have a local σ near 0, where basicsr's float32 E[I²] − μ²
# (I² up to 235² = 55225, float32 ulp ~0.004) moves σ and so the MSCN values enough to change the
# grid-searched AGGD shapes of a few patches; in float64 the two implementations agree to 1e-12.
TOLERANCE = {"camera": 0.01, "astronaut": 0.04, "chelsea": 0.01}


def _image(name: str) -> torch.Tensor:
    a = getattr(data, name)()
    t = torch.from_numpy(np.ascontiguousarray(a))
    return (t[None] if t.dim() == 2 else t.permute(2, 0, 1))[None]  # (1, C, H, W) uint8


@pytest.fixture(scope="module")
def ours() -> dict[str, float]:
    return {name: mn.niqe(_image(name)).item() for name in BASICSR}


@pytest.mark.parametrize("name", list(BASICSR))
def test_niqe_matches_basicsr(ours: dict[str, float], name: str) -> None:
    assert ours[name] == pytest.approx(BASICSR_FLOAT64[name], abs=1e-9)
    assert abs(ours[name] - BASICSR[name]) <= TOLERANCE[name]


def test_niqe_takes_float_images_and_the_crop() -> None:
    u8 = _image("chelsea")
    as_float = u8.float() / 255.0  # quantised back to the same 8-bit values
    assert mn.niqe(as_float).item() == pytest.approx(BASICSR_FLOAT64["chelsea"], abs=1e-9)
    # crop_border removes the border first: the same as scoring the cropped image
    assert mn.niqe(u8, crop_border=4).item() == pytest.approx(mn.niqe(u8[..., 4:-4, 4:-4]).item(), abs=1e-12)


def test_blur_raises_niqe() -> None:
    """NIQE measures departure from natural-image statistics: a strong blur moves away from them."""
    from kornia.filters import gaussian_blur2d

    x = _image("chelsea").double() / 255.0
    blurred = gaussian_blur2d(x, (13, 13), (3.0, 3.0), border_type="replicate")
    assert mn.niqe(blurred).item() > mn.niqe(x).item() + 2.0


@pytest.mark.parametrize("sigma", [0.5, 2.0])
def test_aggd_fit_gaussian_gives_alpha_2(sigma: float) -> None:
    """N(0, s²) is the AGGD with α = 2 and β_l = β_r = s·√2 (the GGD density ∝ exp(−(|x|/β)^α))."""
    x = torch.randn(4, 200_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * sigma
    alpha, bl, br = mn.aggd_fit(x)
    assert alpha.shape == (4,)
    torch.testing.assert_close(alpha, torch.full((4,), 2.0, dtype=torch.float64), atol=0.03, rtol=0)
    torch.testing.assert_close(bl, torch.full((4,), sigma * math.sqrt(2), dtype=torch.float64), atol=0, rtol=0.02)
    torch.testing.assert_close(br, torch.full((4,), sigma * math.sqrt(2), dtype=torch.float64), atol=0, rtol=0.02)


def test_aggd_fit_laplace_and_asymmetry() -> None:
    g = torch.Generator().manual_seed(1)
    lap = torch.distributions.Laplace(0.0, 1.5).sample((200_000,)).double()  # α = 1, β = b = 1.5
    alpha, bl, br = mn.aggd_fit(lap)
    assert alpha.item() == pytest.approx(1.0, abs=0.03)
    assert bl.item() == pytest.approx(1.5, rel=0.03) and br.item() == pytest.approx(1.5, rel=0.03)
    # an AGGD with α = 2, β_l = √2·0.5, β_r = √2·2: half-normal magnitudes of scale s_l or s_r, on
    # the left with probability β_l / (β_l + β_r) (the AGGD's one normalising constant)
    z = torch.randn(200_000, generator=g, dtype=torch.float64).abs()
    left = torch.rand(200_000, generator=g, dtype=torch.float64) < 0.5 / (0.5 + 2.0)
    x = torch.where(left, -0.5 * z, 2.0 * z)
    alpha, bl, br = mn.aggd_fit(x)
    assert alpha.item() == pytest.approx(2.0, abs=0.05)
    assert bl.item() == pytest.approx(0.5 * math.sqrt(2), rel=0.02)
    assert br.item() == pytest.approx(2.0 * math.sqrt(2), rel=0.02)
    # no negative sample: β_l is undefined (NaN), α the grid's first point (as the release)
    alpha, bl, br = mn.aggd_fit(torch.rand(1000, generator=g, dtype=torch.float64) + 0.1)
    assert math.isnan(bl.item()) and alpha.item() == pytest.approx(0.2) and br.item() > 0


def test_gaussian_window_is_fspecial() -> None:
    w = mn.gaussian_window()
    assert w.shape == (7, 7) and w.sum().item() == pytest.approx(1.0, abs=1e-15)
    # the middle row of basicsr's niqe_pris_params.npz['gaussian_window'] (MATLAB's fspecial('gaussian', 7, 7/6))
    ref = [0.00430352, 0.02700894, 0.08130511, 0.11739636, 0.08130511, 0.02700894, 0.00430352]
    torch.testing.assert_close(w[3], torch.tensor(ref, dtype=torch.float64), atol=5e-9, rtol=0)
    # separable Gaussian: neighbouring values differ by exp(−(2k+1)/(2σ²))
    assert (w[3, 4] / w[3, 3]).item() == pytest.approx(math.exp(-1 / (2 * (7 / 6) ** 2)))


def test_mscn_closed_forms() -> None:
    const = torch.full((20, 30), 117.0, dtype=torch.float64)
    assert mn.mscn(const).abs().max().item() < 1e-12  # μ = I, σ = 0 (up to the rounding of the window sum)
    # a vertical step: away from it the MSCN is 0; at it, antisymmetric about the edge
    step = torch.zeros(20, 30, dtype=torch.float64)
    step[:, 15:] = 200.0
    m = mn.mscn(step)
    assert m[:, :11].abs().max().item() < 1e-12 and m[:, 19:].abs().max().item() < 1e-12
    torch.testing.assert_close(m[:, 14], -m[:, 15])


def test_pristine_model_file() -> None:
    mu, cov = mn.pristine_model()
    assert mu.shape == (36,) and cov.shape == (36, 36)
    torch.testing.assert_close(cov, cov.t(), atol=0, rtol=0)
    assert torch.linalg.eigvalsh(cov).min().item() > 0  # a covariance, positive definite
    # the release's first values (modelparameters.mat mu_prisparam(1:3), as in basicsr's npz)
    torch.testing.assert_close(mu[:3], torch.tensor([2.60131368, 0.90570272, 0.81204778], dtype=torch.float64),
                               atol=5e-9, rtol=0)
    meta = json.loads(mn.PARAMS_FILE.read_text())
    assert "Copyright (c) 2011 The University of Texas at Austin" in meta["notice"]
    assert len(meta["feature_order"]) == 36 and "niqe_release.zip" in meta["source"]
    # shipped with the package
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["i2i"]
    assert "metrics/*.json" in package_data


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(MetricError, match="at least two 96×96 patches"):
        mn.niqe(torch.rand(1, 3, 100, 150))
    with pytest.raises(MetricError, match="at least 96×96"):
        mn.niqe(torch.rand(1, 3, 64, 300))
    with pytest.raises(MetricError, match=r"\(N, 1 or 3, H, W\)"):
        mn.niqe(torch.rand(1, 4, 200, 200))
    with pytest.raises(MetricError, match="y_channel=True"):
        mn.niqe(torch.rand(1, 3, 200, 200), y_channel=False)
    with pytest.raises(MetricError, match="flat|texture"):
        mn.niqe(torch.full((1, 1, 200, 200), 0.5))  # a flat image has no MSCN statistics
