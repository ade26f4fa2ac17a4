"""i2i.metrics.texture: dense SIFT statistics and their Fréchet distance (FD_SIFT)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from kornia.feature import SIFTDescriptor
from kornia.filters import gaussian_blur2d
from skimage import data

from i2i.errors import MetricError
from i2i.metrics.generation import frechet_distance
from i2i.metrics.texture import DIM, frechet_from_moments, sift_features, texture_frechet_distance, texture_moments


def _grass() -> torch.Tensor:
    return torch.from_numpy(data.grass() / 255.0).float()[None, None]  # (1, 1, 512, 512)


def test_features_are_sift_of_each_grid_window():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 48, 40)
    f = sift_features(x, patch=32, stride=8)
    assert f.shape == (2, 3 * 2, DIM)  # windows at rows 0, 8, 16 and columns 0, 8
    grey = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]  # BT.601, kornia's rgb_to_grayscale
    ref = SIFTDescriptor(32, 8, 4, rootsift=True)
    # window k = (row r, column c) in row-major order; check the last one of image 1 by hand
    window = grey[1, 16:48, 8:40][None, None]
    torch.testing.assert_close(f[1, 5], ref(window)[0], atol=1e-5, rtol=1e-4)
    # grey input gives the same as its RGB repetition
    torch.testing.assert_close(sift_features(grey[:, None]), sift_features(grey[:, None].expand(-1, 3, -1, -1)))


def test_moments_give_numpys_mean_and_covariance():
    """The summed moments reproduce np.mean / np.cov (unbiased) of all patches' descriptors,
    so the distance equals frechet_distance on those statistics computed directly."""
    g = _grass()
    a, b = g[..., :160, :160], g[..., 200:360, 240:400]
    fa = sift_features(a).reshape(-1, DIM).double().numpy()
    fb = sift_features(b).reshape(-1, DIM).double().numpy()
    direct = frechet_distance(fa.mean(0), np.cov(fa, rowvar=False), fb.mean(0), np.cov(fb, rowvar=False))
    assert texture_frechet_distance(a, b) == pytest.approx(direct, rel=1e-9, abs=1e-12)


def test_sharded_moments_add_up():
    torch.manual_seed(1)
    imgs = torch.rand(4, 3, 40, 40)
    real = torch.rand(3, 3, 40, 40)
    whole = texture_moments(imgs)
    shards = torch.cat([texture_moments(imgs[:1]), texture_moments(imgs[1:])])
    torch.testing.assert_close(whole, shards)
    assert frechet_from_moments(shards, texture_moments(real)) == pytest.approx(
        frechet_from_moments(whole.sum(0, keepdim=True), texture_moments(real)), rel=1e-12)


def test_identical_sets_are_at_zero_and_blur_moves_away():
    """Two crops of one texture are close; blurring one of them moves it away monotonically,
    and a different kind of image (camera) is further still."""
    g = _grass()
    a, b = g[..., :256, :256], g[..., 256:, 256:]
    assert abs(texture_frechet_distance(a, a)) < 1e-9
    same_texture = texture_frechet_distance(a, b)
    blurred = [texture_frechet_distance(a, gaussian_blur2d(b, (9, 9), (s, s))) for s in (1.0, 2.0)]
    camera = torch.from_numpy(data.camera() / 255.0).float()[None, None][..., :256, :256]
    assert same_texture < blurred[0] < blurred[1]
    assert same_texture < texture_frechet_distance(a, camera)


def test_one_line_errors():
    with pytest.raises(MetricError, match=r"^sift_features expects \(N, 1 or 3, H, W\) images, got \(2, 2, 40, 40\)$"):
        sift_features(torch.rand(2, 2, 40, 40))
    with pytest.raises(MetricError, match=r"^sift_features: images of 20x40 are smaller than the 32-px patch$"):
        sift_features(torch.rand(1, 3, 20, 40))
    with pytest.raises(MetricError, match=r"^texture moments of length 5 are not 1 \+ D \+ D² for any D$"):
        frechet_from_moments(torch.ones(1, 5), torch.ones(1, 5))
    one_patch = texture_moments(torch.rand(1, 1, 32, 32))
    with pytest.raises(MetricError, match=r"^the Fréchet distance needs at least 2 patches, got 1$"):
        frechet_from_moments(one_patch, one_patch)
