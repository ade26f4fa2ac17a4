import math

import numpy as np
import pytest
import torch
from skimage import data
from skimage.filters import gaussian
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from skimage.transform import resize

import i2i.metrics.image as mi


def _degraded(img_u8: np.ndarray, seed: int) -> np.ndarray:
    """A plausible SR output: x4 down/up-scaled, slightly blurred and noisy, float32 in ~[0, 1]."""
    rng = np.random.default_rng(seed)
    x = img_u8.astype(np.float64) / 255.0
    h, w = x.shape[:2]
    small = resize(x, (h // 4, w // 4), order=3, anti_aliasing=True)
    up = resize(small, (h, w), order=3)
    up = gaussian(up, sigma=0.5, channel_axis=-1)
    return (up + rng.normal(0, 0.02, up.shape)).astype(np.float32)  # may leave [0, 1]: clamped


def _to_tensor(hwc: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(hwc)).permute(2, 0, 1).unsqueeze(0)


def _q(hwc_float32: np.ndarray) -> np.ndarray:
    # the same 8-bit quantisation as i2i, done independently in numpy
    return np.clip(np.round(hwc_float32.astype(np.float64) * 255.0), 0, 255)


def _y(q: np.ndarray) -> np.ndarray:
    return 16.0 + (65.481 * q[..., 0] + 128.553 * q[..., 1] + 24.966 * q[..., 2]) / 255.0


def _ssim_ref(a, b, channel_axis):
    return structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=255, channel_axis=channel_axis)


PHOTOS = [("astronaut", 0), ("coffee", 1), ("chelsea", 2)]


@pytest.fixture(scope="module", params=PHOTOS, ids=[p[0] for p in PHOTOS])
def photo(request):
    name, seed = request.param
    hr = getattr(data, name)()  # uint8 (H, W, 3)
    hr = hr[: hr.shape[0] // 4 * 4, : hr.shape[1] // 4 * 4]
    return hr, _degraded(hr, seed)


def test_rgb_against_skimage(photo):
    hr, sr = photo
    pred, target = _to_tensor(sr), _to_tensor(hr)  # float32 [0,1]-ish vs uint8
    qs, qh = _q(sr), hr.astype(np.float64)
    ref_psnr = peak_signal_noise_ratio(qh, qs, data_range=255)
    ref_ssim = _ssim_ref(qh, qs, channel_axis=-1)
    assert 18 < ref_psnr < 40 and 0.3 < ref_ssim < 0.99  # a realistic, non-trivial pair
    assert mi.psnr(pred, target).item() == pytest.approx(ref_psnr, abs=1e-3)
    assert mi.ssim(pred, target).item() == pytest.approx(ref_ssim, abs=1e-4)


def test_y_channel_with_border_against_skimage(photo):
    hr, sr = photo
    pred, target = _to_tensor(sr), _to_tensor(hr.astype(np.float32) / 255.0)  # float HR quantises back exactly
    c = 4
    ys, yh = _y(_q(sr))[c:-c, c:-c], _y(hr.astype(np.float64))[c:-c, c:-c]
    assert 16 <= yh.min() and yh.max() <= 235
    ref_psnr = peak_signal_noise_ratio(yh, ys, data_range=255)
    ref_ssim = _ssim_ref(yh, ys, channel_axis=None)
    assert mi.psnr(pred, target, crop_border=c, y_channel=True).item() == pytest.approx(ref_psnr, abs=1e-3)
    assert mi.ssim(pred, target, crop_border=c, y_channel=True).item() == pytest.approx(ref_ssim, abs=1e-4)


def test_psnr_hand_computed_and_identity():
    a = torch.zeros(2, 1, 16, 16, dtype=torch.uint8)
    b = a.clone()
    b[0, 0, 0, 0] = 16  # one pixel off by 16 in 256 -> MSE = 1
    p = mi.psnr(b, a)
    assert p[0].item() == pytest.approx(10 * math.log10(255**2))
    assert math.isinf(p[1].item())
    assert torch.allclose(mi.ssim(a.float(), a.float()), torch.ones(2, dtype=torch.float64))


def test_quantisation_rounds_and_clamps():
    x = torch.tensor([-0.2, 0.0, 0.4 / 255, 0.6 / 255, 1.49 / 255, 1.51 / 255, 1.0, 1.3])
    assert mi.quantize(x).tolist() == [0.0, 0.0, 0.0, 1.0, 1.0, 2.0, 255.0, 255.0]
    u8 = torch.tensor([0, 7, 255], dtype=torch.uint8)
    assert mi.quantize(u8).tolist() == [0.0, 7.0, 255.0] and mi.quantize(u8).dtype == torch.float64
    # sub-quantum differences vanish, as in saved files
    t = torch.rand(1, 3, 16, 16)
    assert math.isinf(mi.psnr(t + 0.1 / 255, t).item()) or mi.psnr(t + 0.1 / 255, t).item() > 50


def test_y_matches_bt601_extremes():
    rgb = torch.tensor([[0.0, 0.0, 0.0], [255.0, 255.0, 255.0]]).T.reshape(1, 3, 1, 2)
    assert mi.rgb_to_y(rgb).flatten().tolist() == pytest.approx([16.0, 235.0])


def test_errors():
    with pytest.raises(ValueError, match="same shape"):
        mi.psnr(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 17))
    with pytest.raises(ValueError, match="at least 11"):
        mi.ssim(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 16), crop_border=3)
    with pytest.raises(ValueError, match="crop_border"):
        mi.psnr(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8), crop_border=4)
    with pytest.raises(ValueError, match="y_channel"):
        mi.psnr(torch.zeros(1, 2, 16, 16), torch.zeros(1, 2, 16, 16), y_channel=True)
    with pytest.raises(TypeError, match="uint8"):
        mi.psnr(torch.zeros(1, 3, 16, 16, dtype=torch.int64), torch.zeros(1, 3, 16, 16, dtype=torch.int64))


def _batches(seed=0, n_batches=3, bs=2):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n_batches):
        hr = torch.rand(bs, 3, 24, 24, generator=g)
        out.append(((hr + 0.05 * torch.randn(bs, 3, 24, 24, generator=g)).clamp(0, 1), hr))
    return out


def test_accumulator_means_equal_per_image_functions():
    q = mi.ImageQuality(crop_border=2, y_channel=True)
    batches = _batches()
    for p, t in batches:
        q.update(p, t)
    preds, targets = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
    res = q.compute()
    assert set(res) == {"psnr", "ssim", "psnr_y", "ssim_y"} and q.num_images == 6
    assert res["psnr"] == pytest.approx(mi.psnr(preds, targets, 2).mean().item())
    assert res["ssim"] == pytest.approx(mi.ssim(preds, targets, 2).mean().item())
    assert res["psnr_y"] == pytest.approx(mi.psnr(preds, targets, 2, True).mean().item())
    assert res["ssim_y"] == pytest.approx(mi.ssim(preds, targets, 2, True).mean().item())
    q.reset()
    assert q.num_images == 0 and math.isnan(q.compute()["psnr"])
    assert set(mi.ImageQuality(y_channel=False).compute()) == {"psnr", "ssim"}


def test_accumulator_gather_per_batch_drops_padding_duplicates():
    """Emulate 2 ranks with accelerate's gather_for_metrics semantics.

    5 images, 2 ranks, batch 1 per rank: the sampler pads rank 1's last batch with a
    duplicate of image 0; gather_for_metrics returns all ranks' rows and drops that
    duplicate on the last step. The accumulator must apply gather per update.
    """
    imgs = _batches(seed=1, n_batches=5, bs=1)
    rank_batches = {0: [imgs[0], imgs[2], imgs[4]], 1: [imgs[1], imgs[3], imgs[0]]}
    step = {"i": 0}
    calls = []

    def gather(values):  # called by rank 0; fetches rank 1's values for the same step
        i = step["i"]
        calls.append(tuple(values.shape))
        other = mi.ImageQuality(y_channel=False)
        other.update(*rank_batches[1][i])
        allv = torch.cat([values.cpu(), torch.cat(other._values)])
        return allv[:-1] if i == 2 else allv  # the last step holds one padding duplicate

    q = mi.ImageQuality(y_channel=False, gather=gather)
    for i, (p, t) in enumerate(rank_batches[0]):
        step["i"] = i
        q.update(p, t)
    assert calls == [(1, 2)] * 3  # one gather of (B, k) per batch
    assert q.num_images == 5
    preds, targets = torch.cat([b[0] for b in imgs]), torch.cat([b[1] for b in imgs])
    assert q.compute()["psnr"] == pytest.approx(mi.psnr(preds, targets).mean().item())
    assert q.compute()["ssim"] == pytest.approx(mi.ssim(preds, targets).mean().item())
