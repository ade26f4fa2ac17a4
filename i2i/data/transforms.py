"""Joint random augmentation on ``torchvision.transforms.v2``, one seed per item.

An image and its label map (segmentation), or the two images of a pair (pix2pix), go
through one v2 pipeline, so they get the same scale, crop and flip; ``tv_tensors.Mask``
makes v2 resample labels with nearest neighbour and pad them with their own fill value.

**Seeding.** v2 draws every random parameter from torch's global CPU generator. :func:`seeded`
runs a pipeline with that generator seeded from the item's own NumPy generator (from
:func:`i2i.data.base.split_index`) and puts the caller's state back afterwards. So an item
is a pure function of ``(index, sample_seed)`` -- exact resume relies on that -- and an item
loaded in the training process (``data.num_workers: 0``) leaves the training loop's random
stream where it was.

**Why v2 and not albumentations**, measured (``docs/performance.md``, "Library building
blocks"; ``docs/measure_libraries.py``): v2's image resampling is the antialiased bilinear of
``F.interpolate`` that i2i used before (the same output to 1e-5), as fast on photo-sized
images (slower on tiny ones: v2's per-call Python dispatch). albumentations is faster
(OpenCV) but resamples differently when shrinking (INTER_AREA, mean |Δ| 0.004), gets no
fixes since June 2025 (its successor AlbumentationsX is AGPL-3.0), and its per-transform
``set_random_seed`` gives every transform the same stream (scale and flip correlated,
r = -0.86). Label statistics after augmentation agree for all three within their errors.
"""
from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import InterpolationMode, v2

__all__ = ["seeded", "ScaleJitterExactMasks", "segmentation_train", "paired_train"]


def seeded(transform: v2.Transform, rng: np.random.Generator, *inputs: Any) -> Any:
    """``transform(*inputs)`` with torch's CPU generator seeded from ``rng``; the caller's state is restored."""
    seed = int(rng.integers(2**63))
    with torch.random.fork_rng(devices=[]):  # CPU only: a CUDA generator is neither used nor touched
        torch.default_generator.manual_seed(seed)
        return transform(*inputs)


class ScaleJitterExactMasks(v2.ScaleJitter):
    """``v2.ScaleJitter`` that resizes masks with ``NEAREST_EXACT``.

    v2 resizes masks with legacy ``NEAREST`` (source index ``floor(i / s)``), which shifts
    labels by up to half a pixel against the bilinear image (centres at ``(i + ½) / s - ½``);
    nearest-exact picks the source pixel whose centre is nearest, so labels stay aligned.
    """

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if isinstance(inpt, tv_tensors.Mask):
            return v2.functional.resize(inpt, list(params["size"]), interpolation=InterpolationMode.NEAREST_EXACT)
        return super().transform(inpt, params)


@functools.lru_cache(maxsize=64)  # v2 transforms hold no state: one pipeline per image size is reused
def segmentation_train(image_size: tuple[int, int], crop_size: tuple[int, int], scale: tuple[float, float],
                       hflip: bool, ignore_index: int) -> v2.Compose:
    """Random scale -> random crop (padding image 0, mask ``ignore_index``) -> random h-flip.

    Args (hashable: the pipeline is cached):
        image_size: (H, W) of the input: the scale factor is relative to it.
        crop_size: (h, w) of the output. Where the scaled image is smaller, v2 pads both
            sides by the shortfall, so the whole image lands at a random place in the crop.
        scale: range of the uniform scale factor.
        hflip: flip left-right with probability 1/2.
    """
    h, w = image_size
    return v2.Compose([
        ScaleJitterExactMasks(target_size=(w, h), scale_range=scale, antialias=True),  # v2 takes (width, height)
        v2.RandomCrop(crop_size, pad_if_needed=True, fill={tv_tensors.Image: 0.0, tv_tensors.Mask: ignore_index}),
        v2.RandomHorizontalFlip(0.5 if hflip else 0.0),
    ])


def paired_train(crop_size: int, flip: bool) -> v2.Compose:
    """pix2pix jitter after the resize to ``load_size``: random ``crop_size`` square, mirror with p = 1/2."""
    return v2.Compose([v2.RandomCrop(crop_size), v2.RandomHorizontalFlip(0.5 if flip else 0.0)])
