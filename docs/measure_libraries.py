"""The figures of docs/performance.md, "Library building blocks" (issue 14).

    pip install albumentations==2.0.8   # only for this comparison; i2i does not depend on it
    nice python docs/measure_libraries.py            # ~3 minutes on 2 cores

Joint augmentation: the hand-written code i2i had, albumentations and torchvision v2 --
speed per item (one thread, as in a DataLoader worker), equality of the resampling at a fixed
scale, label statistics over 2000 seeds. Then i2i's kornia-based SSIM/PSNR against the
grouped-convolution SSIM it replaced. "before" is the code as it was (kept here, not in the
package); "v2" and "kornia" are the package's own code paths.
"""
from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import albumentations as A
import cv2
import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from skimage import data
from torchvision import tv_tensors
from torchvision.transforms import v2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from i2i.data.paired import to_tensor  # noqa: E402
from i2i.data.segmentation import _resize_pair, joint_augment  # noqa: E402
from i2i.data.transforms import paired_train, seeded  # noqa: E402
from i2i.metrics import image as metrics  # noqa: E402

torch.set_num_threads(1)
cv2.setNumThreads(1)


# --- the hand-written code before issue 14 -------------------------------------------------
def before_seg(image, mask, rng, crop, scale, ignore=255):
    h0, w0 = mask.shape
    s = float(rng.uniform(*scale))
    image, mask = _resize_pair(image, mask, max(1, round(h0 * s)), max(1, round(w0 * s)))
    ph, pw = max(0, crop - mask.shape[0]), max(0, crop - mask.shape[1])
    if ph or pw:
        image, mask = F.pad(image, (0, pw, 0, ph), value=0.0), F.pad(mask, (0, pw, 0, ph), value=ignore)
    top, left = int(rng.integers(0, mask.shape[0] - crop + 1)), int(rng.integers(0, mask.shape[1] - crop + 1))
    image, mask = image[:, top:top + crop, left:left + crop], mask[top:top + crop, left:left + crop]
    if rng.random() < 0.5:
        image, mask = image.flip(-1), mask.flip(-1)
    return image.contiguous(), mask.contiguous()


def before_pair(images, rng, c):
    h, w = images[0].shape[:2]
    top, left = int(rng.integers(0, h - c + 1)), int(rng.integers(0, w - c + 1))
    out = [im[top:top + c, left:left + c] for im in images]
    return [im[:, ::-1] for im in out] if rng.random() < 0.5 else out


def before_ssim_map(a, b):
    """The SSIM map i2i computed before kornia: 11-tap σ = 1.5 Gaussian, valid, L = 255."""
    x = torch.arange(-5, 6, dtype=a.dtype)
    k = torch.exp(-0.5 * (x / 1.5) ** 2)
    k = k / k.sum()
    c = a.shape[1]
    stack = torch.cat([a, b, a * a, b * b, a * b], dim=1)
    g = stack.shape[1]
    stack = F.conv2d(stack, k.view(1, 1, 11, 1).expand(g, 1, 11, 1), groups=g)
    stack = F.conv2d(stack, k.view(1, 1, 1, 11).expand(g, 1, 1, 11), groups=g)
    ux, uy, uxx, uyy, uxy = stack.split(c, dim=1)
    vx, vy, vxy = uxx - ux * ux, uyy - uy * uy, uxy - ux * uy
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    return ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))


# --- albumentations, seeded the way that keeps transforms independent ----------------------
def alb_seeded(pipe, rng, **targets):
    # Compose.set_random_seed(s) gives every transform its own generator seeded with the same
    # s, so their draws coincide (scale and flip correlate, r = -0.86); one shared state does not
    pipe.set_random_state(rng, random.Random(int(rng.integers(2**63))))
    return pipe(**targets)


def alb_seg_pipe(crop, scale, ignore=255):
    return A.Compose([
        A.RandomScale(scale_limit=(scale[0] - 1, scale[1] - 1), interpolation=cv2.INTER_LINEAR,
                      mask_interpolation=cv2.INTER_NEAREST_EXACT, area_for_downscale="image", p=1),
        A.PadIfNeeded(crop, crop, position="top_left", border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=ignore),
        A.RandomCrop(crop, crop), A.HorizontalFlip(p=0.5)])


def seg_case(h, w):
    img = np.ascontiguousarray(data.astronaut()[:h, :w]).astype(np.float32) / 255
    m = np.zeros((h, w), np.uint8)
    m[h // 4: 3 * h // 4, w // 3: 2 * w // 3] = 3
    m[:, :4] = 255
    return img, m


def to_chw(img):
    return torch.from_numpy(img).permute(2, 0, 1).contiguous()


def seg_fns(img, m, crop, scale):
    t, mt = to_chw(img), torch.from_numpy(m).long()
    ap = alb_seg_pipe(crop, scale)

    def alb(s):
        o = alb_seeded(ap, np.random.default_rng(s), image=img, mask=m)
        return to_chw(o["image"]), torch.from_numpy(o["mask"]).long()

    return {"before": lambda s: before_seg(t, mt, np.random.default_rng(s), crop, scale),
            "albumentations": alb,
            "v2 (i2i now)": lambda s: joint_augment(t, mt, np.random.default_rng(s), crop, scale, True)}


def per_item_us(fns: dict, n: int, rounds: int = 5, warm: int = 20) -> list[float]:
    """µs per item of each function: the median of ``rounds`` interleaved rounds of ``n`` items."""
    for f in fns.values():
        for s in range(warm):
            f(s)
    times: dict[str, list[float]] = {k: [] for k in fns}
    for r in range(rounds):
        for k in (list(fns) if r % 2 == 0 else list(fns)[::-1]):
            t0 = time.perf_counter()
            for s in range(n):
                fns[k](s)
            times[k].append((time.perf_counter() - t0) / n * 1e6)
    return [float(np.median(v)) for v in times.values()]


def main() -> None:
    n = 300
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, albumentations {A.__version__}, "
          f"OpenCV {cv2.__version__}; one thread; median of 5 interleaved rounds of {n} items\n")
    print("| case | before | albumentations | v2 (i2i now) |\n|---|---|---|---|")
    for name, (h, w, crop, scale) in {"segmentation, 500×375 photo → 320² crop, scale 0.5–2": (375, 500, 320, (0.5, 2.0)),
                                      "segmentation, 64² mosaic → 64², scale 0.8–1.25": (64, 64, 64, (0.8, 1.25))}.items():
        fns = seg_fns(*seg_case(h, w), crop, scale)
        print(f"| {name} | " + " | ".join(f"{t:.0f} µs" for t in per_item_us(fns, n)) + " |")

    a = np.ascontiguousarray(data.astronaut()[:286, :286, :1])
    b = np.ascontiguousarray(data.astronaut()[:286, :286])
    ap = A.Compose([A.RandomCrop(256, 256), A.HorizontalFlip(p=0.5)], additional_targets={"B": "image"})
    tp = paired_train(256, True)

    def alb_pair(s):
        o = alb_seeded(ap, np.random.default_rng(s), image=a, B=b)
        return [to_tensor(o["image"]), to_tensor(o["B"])]

    def v2_pair(s):
        out = seeded(tp, np.random.default_rng(s), *(tv_tensors.Image(torch.from_numpy(x.copy()).permute(2, 0, 1))
                                                      for x in (a, b)))
        return [to_tensor(t.as_subclass(torch.Tensor).permute(1, 2, 0).numpy()) for t in out]

    fns = {"before": lambda s: [to_tensor(x) for x in before_pair([a, b], np.random.default_rng(s), 256)],
           "albumentations": alb_pair, "v2": v2_pair}
    print("| pix2pix jitter, A 286²×1 + B 286²×3 → 256² crop + flip (+ to_tensor) | "
          + " | ".join(f"{t:.0f} µs" for t in per_item_us(fns, n)) + " |")

    print("\nResampling at a fixed scale, 500×375 photo and a 4-label map of 5-px blocks "
          "(image: max / mean |Δ| against before, [0, 1] units; mask: share of labels that differ)")
    img, _ = seg_case(375, 500)
    m = np.random.default_rng(1).choice(np.array([0, 1, 2, 255], np.uint8), size=(75, 100)).repeat(5, 0).repeat(5, 1)
    t, mt = to_chw(img), torch.from_numpy(m).long()
    for s in (0.6, 1.7):
        hh, ww = int(375 * s), int(500 * s)
        ri, rm = _resize_pair(t, mt, hh, ww)
        ai = to_chw(cv2.resize(img, (ww, hh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR))
        am = torch.from_numpy(cv2.resize(m, (ww, hh), interpolation=cv2.INTER_NEAREST_EXACT)).long()
        vi = v2.functional.resize(tv_tensors.Image(t), [hh, ww], antialias=True).clamp(0, 1)
        vm = v2.functional.resize(tv_tensors.Mask(mt), [hh, ww], interpolation=v2.InterpolationMode.NEAREST_EXACT)
        vn = v2.functional.resize(tv_tensors.Mask(mt), [hh, ww])  # v2's default for masks: legacy NEAREST
        print(f"  scale {s}: albumentations image {(ai - ri).abs().max():.2e} / {(ai - ri).abs().mean():.2e}, "
              f"mask {(am != rm).float().mean():.4f}; v2 image {(vi - ri).abs().max():.2e} / {(vi - ri).abs().mean():.2e}, "
              f"mask {(vm.long() != rm).float().mean():.4f} (v2's default NEAREST: {(vn.long() != rm).float().mean():.4f})")

    # albumentations' Compose.set_random_seed seeds every transform with the same seed
    img40 = np.zeros((40, 40, 3), np.float32)
    img40[:, :20] = 1
    pipe = A.Compose([A.RandomScale(scale_limit=(-0.5, 1.0), p=1), A.HorizontalFlip(p=0.5)])
    for how in ("set_random_seed(s)", "set_random_state(shared)"):
        rows = []
        for seed in range(400):
            if how.startswith("set_random_seed"):
                pipe.set_random_seed(seed)
            else:
                pipe.set_random_state(np.random.default_rng(seed), random.Random(seed))
            o = pipe(image=img40)["image"]
            rows.append((o.shape[0] / 40, float(o[0, 0, 0] == 0)))
        r = np.corrcoef(np.array(rows).T)[0, 1]
        print(f"  albumentations {how}: correlation of scale and flip over 400 seeds r = {r:+.2f}")

    print("\nStatistics over 2000 seeds, segmentation 500×375 → 320², scale 0.5–2 (mean ± standard error)")
    for k, f in seg_fns(*seg_case(375, 500), 320, (0.5, 2.0)).items():
        ign, cls, mean = [], [], []
        for s in range(2000):
            i, mm = f(s)
            ign.append((mm == 255).float().mean().item())
            cls.append((mm == 3).float().mean().item())
            mean.append(i.mean().item())
        se = lambda v: np.std(v) / np.sqrt(len(v))  # noqa: E731
        print(f"  {k:15s} ignore share {np.mean(ign):.4f} ± {se(ign):.4f}, class-3 share {np.mean(cls):.4f} ± {se(cls):.4f}, "
              f"image mean {np.mean(mean):.4f} ± {se(mean):.4f}")

    print("\nSSIM/PSNR: kornia (i2i now) against the code it replaced, float64, 3 photos + noise σ = 0.05")
    g = torch.Generator().manual_seed(0)
    worst = {"ssim": 0.0, "ssim_y": 0.0, "psnr": 0.0}
    for name in ("astronaut", "coffee", "chelsea"):
        x = torch.from_numpy(getattr(data, name)()).permute(2, 0, 1)[None].double() / 255
        y = (x + 0.05 * torch.randn(x.shape, generator=g, dtype=x.dtype)).clamp(0, 1)
        a, b = metrics.quantize(x), metrics.quantize(y)
        worst["ssim"] = max(worst["ssim"], (before_ssim_map(a, b).mean() - metrics.ssim(x, y)).abs().item())
        ya, yb = metrics.rgb_to_y(a[..., 4:-4, 4:-4]), metrics.rgb_to_y(b[..., 4:-4, 4:-4])
        worst["ssim_y"] = max(worst["ssim_y"], (before_ssim_map(ya, yb).mean() - metrics.ssim(x, y, 4, True)).abs().item())
        mse = (a - b).pow(2).mean()
        worst["psnr"] = max(worst["psnr"], (10 * torch.log10(255**2 / mse) - metrics.psnr(x, y)).abs().item())
    print("  max |before - kornia|: " + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()))
    x = torch.from_numpy(data.astronaut()).permute(2, 0, 1)[None].double() / 255
    y = (x + 0.05 * torch.randn(x.shape, generator=g, dtype=x.dtype)).clamp(0, 1)
    a, b = metrics.quantize(x), metrics.quantize(y)
    fns = {"before": lambda s: before_ssim_map(a, b).mean(), "kornia": lambda s: metrics.ssim(x, y)}
    t_before, t_kornia = per_item_us(fns, 2, rounds=5, warm=1)
    print(f"  SSIM of a 512²×3 pair (float64, one thread): before {t_before / 1e3:.0f} ms, kornia {t_kornia / 1e3:.0f} ms")


if __name__ == "__main__":
    main()
