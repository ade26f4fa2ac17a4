"""i2i.data.transforms: joint augmentation on torchvision v2, one seed per item — reproducible,
the caller's random stream untouched, image and labels moved together, masks resized with
nearest-exact and padded with the ignore label."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import InterpolationMode, v2

from i2i.data.transforms import ScaleJitterExactMasks, paired_train, seeded, segmentation_train


def test_seeded_is_a_pure_function_of_the_items_rng_and_restores_the_global_stream() -> None:
    t = v2.RandomCrop(4)
    image = tv_tensors.Image(torch.arange(100.0).view(1, 10, 10))
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = seeded(t, np.random.default_rng(7), image)
    assert torch.equal(torch.get_rng_state(), before)  # the training loop's stream is where it was
    assert torch.equal(a, seeded(t, np.random.default_rng(7), image))
    crops = {tuple(seeded(t, np.random.default_rng(s), image)[0, 0, :1].tolist()) for s in range(20)}
    assert len(crops) > 5  # other seeds, other crops
    rng = np.random.default_rng(7)
    seeded(t, rng, image)
    assert int(rng.integers(10**9)) == rng_after_one(7)  # seeded took exactly one draw from the item's generator


def rng_after_one(seed: int) -> int:
    """What an item's generator draws next after ``seeded`` took its one integer."""
    g = np.random.default_rng(seed)
    g.integers(2**63)
    return int(g.integers(10**9))


def test_masks_are_resized_nearest_exact_and_images_as_v2_does() -> None:
    mask = tv_tensors.Mask(torch.arange(4).view(1, 1, 4).expand(1, 4, 4).clone())  # column index as the label
    t = ScaleJitterExactMasks(target_size=(4, 4), scale_range=(1.5, 1.5))
    out = t.transform(mask, {"size": (6, 6)})
    # output column j takes the source column whose centre is nearest: ⌊(j + ½)·4/6⌋
    assert out[0, 0].tolist() == [0, 1, 1, 2, 3, 3]
    legacy = v2.functional.resize(mask, [6, 6], interpolation=InterpolationMode.NEAREST)
    assert legacy[0, 0].tolist() == [0, 0, 1, 2, 2, 3]  # ⌊j·4/6⌋: half a pixel to the left
    image = tv_tensors.Image(torch.rand(3, 4, 4))
    assert torch.equal(t.transform(image, {"size": (6, 6)}), v2.functional.resize(image, [6, 6], antialias=True))


def test_segmentation_pads_with_zero_and_the_ignore_label_where_the_scaled_image_is_small() -> None:
    t = segmentation_train((8, 8), (8, 8), (0.5, 0.5), False, 255)
    assert t is segmentation_train((8, 8), (8, 8), (0.5, 0.5), False, 255)  # one cached pipeline per size
    image, mask = seeded(t, np.random.default_rng(0), tv_tensors.Image(torch.ones(3, 8, 8)),
                         tv_tensors.Mask(torch.full((8, 8), 3)))
    assert image.shape == (3, 8, 8) and mask.shape == (8, 8)
    assert (mask == 255).sum() == 64 - 16 and (mask == 3).sum() == 16  # the 4×4 image somewhere in the 8×8 crop
    assert torch.equal(image[0] == 0, mask == 255)  # padding in the same places


@pytest.mark.parametrize("seed", range(6))
def test_segmentation_moves_image_and_labels_together(seed: int) -> None:
    h, w = 12, 16
    labels = torch.randint(0, 10, (h, w), generator=torch.Generator().manual_seed(seed))
    image = tv_tensors.Image(labels.float().div(10).expand(3, h, w).clone())
    t = segmentation_train((h, w), (8, 8), (1.0, 1.0), True, 255)
    img, mask = seeded(t, np.random.default_rng(seed), image, tv_tensors.Mask(labels))
    assert torch.equal(img[0].mul(10).round().long(), mask)  # same crop, same flip
    # the crop is a window of the original or of its mirror image
    windows = [src[y:y + 8, x:x + 8] for src in (labels, labels.flip(1)) for y in range(h - 7) for x in range(w - 7)]
    assert any(torch.equal(mask, win) for win in windows)


def test_paired_crop_and_flip_are_the_same_for_both_images() -> None:
    a = tv_tensors.Image(torch.arange(3 * 10 * 12.0).view(3, 10, 12))
    b = tv_tensors.Image(a.clone() * 2)
    flips = set()
    for s in range(12):
        ca, cb = seeded(paired_train(6, True), np.random.default_rng(s), a, b)
        assert ca.shape == (3, 6, 6) and torch.equal(cb, ca * 2)
        flips.add(bool(ca[0, 0, 1] < ca[0, 0, 0]))  # columns decrease: mirrored
    assert flips == {True, False}
    ca, _ = seeded(paired_train(6, False), np.random.default_rng(0), a, b)
    assert bool((ca[0, 0, 1:] > ca[0, 0, :-1]).all())  # flip off: never mirrored
