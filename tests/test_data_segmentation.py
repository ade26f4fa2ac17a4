"""Segmentation datasets: VOC / Cityscapes / folder layouts written here, the mosaic, augmentation."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from i2i.data.io import save_image
from i2i.data.segmentation import (
    CITYSCAPES_TRAIN_IDS, MOSAIC_CLASSES, VOC_PALETTE, CityscapesSegmentation, SegFolderDataset, SegMosaicDataset,
    VOCSegmentation, joint_augment, mosaic_sample,
)
from i2i.errors import ConfigError, DataError
from i2i.registry import DATASETS

FLAT_VOC_PALETTE = [c for rgb in VOC_PALETTE for c in rgb] + [0] * (3 * (256 - 21))
FLAT_VOC_PALETTE[3 * 255: 3 * 256] = [224, 224, 192]


def _photo(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _label(h, w, values, seed=0):
    return np.random.default_rng(seed).choice(np.asarray(values, dtype=np.uint8), size=(h, w))


def _write_voc(root, bad_value=None):
    base = root / "VOCdevkit" / "VOC2012"
    (base / "ImageSets" / "Segmentation").mkdir(parents=True)
    masks = {}
    for i, name in enumerate(["2007_000001", "2007_000002"]):
        save_image(base / "JPEGImages" / f"{name}.jpg", _photo(20, 30, i))
        m = _label(20, 30, [0, 3, 15, 255], i)
        if bad_value is not None and i == 1:
            m[0, 0] = bad_value
        save_image(base / "SegmentationClass" / f"{name}.png", m, palette=FLAT_VOC_PALETTE)
        masks[name] = m
    (base / "ImageSets" / "Segmentation" / "train.txt").write_text("2007_000001\n2007_000002\n")
    (base / "ImageSets" / "Segmentation" / "val.txt").write_text("2007_000002\n")
    return root / "VOCdevkit", masks


def test_voc_layout(tmp_path):
    root, masks = _write_voc(tmp_path)
    ds = DATASETS.get("voc")(root=str(root), split="val", crop_size=None)
    assert len(ds) == 1 and ds.num_classes == 21
    item = ds[0]
    assert item["image"].shape == (3, 20, 30) and item["image"].dtype == torch.float32
    assert 0.0 <= item["image"].min() and item["image"].max() <= 1.0
    assert item["mask"].dtype == torch.int64
    np.testing.assert_array_equal(item["mask"].numpy(), masks["2007_000002"])  # palette indices, 255 kept
    train = VOCSegmentation(str(root / "VOC2012"), "train", crop_size=16)
    b = train[(1, 7)]
    assert b["image"].shape == (3, 16, 16) and b["mask"].shape == (16, 16)
    assert set(b["mask"].unique().tolist()) <= {0, 3, 15, 255}
    # evaluation with a crop size: padded with ignore, centred
    e = VOCSegmentation(str(root), "val", crop_size=24)[0]
    assert e["mask"].shape == (24, 24) and (e["mask"][20:] == 255).all()


def test_voc_unknown_class_id_names_file_and_value(tmp_path):
    root, _ = _write_voc(tmp_path, bad_value=42)
    ds = VOCSegmentation(str(root), "val", crop_size=None)
    with pytest.raises(DataError, match=r"2007_000002\.png.*42"):
        ds[0]


def test_voc_missing_split_file(tmp_path):
    with pytest.raises(DataError, match="test.txt"):
        VOCSegmentation(str(tmp_path), "test")


def test_cityscapes_layout_maps_train_ids(tmp_path):
    img = tmp_path / "leftImg8bit" / "val" / "aachen" / "aachen_000000_000019_leftImg8bit.png"
    lab = tmp_path / "gtFine" / "val" / "aachen" / "aachen_000000_000019_gtFine_labelIds.png"
    save_image(img, _photo(8, 16))
    raw = _label(8, 16, [0, 7, 8, 26, 33, 3])
    save_image(lab, raw)
    ds = CityscapesSegmentation(str(tmp_path), "val", crop_size=None)
    m = ds[0]["mask"].numpy()
    expect = np.vectorize(CITYSCAPES_TRAIN_IDS.get)(raw)
    np.testing.assert_array_equal(m, expect)
    assert set(np.unique(m)) <= {0, 1, 13, 18, 255}
    raw[0, 0] = 40  # not a Cityscapes id
    save_image(lab, raw)
    with pytest.raises(DataError, match="40"):
        ds[0]


def _write_folder(root, fmt):
    table = ("ignore_value: 255\nignore_color: [255, 255, 255]\nclasses:\n"
             "  - {name: bg, color: [0, 0, 0]}\n  - {name: road, color: [128, 64, 128], value: 7}\n"
             "  - {name: car, color: [0, 0, 142], value: 26}\n")
    (root / "classes.yaml").write_text(table)
    raw = _label(10, 12, [0, 7, 26, 255])
    save_image(root / "images" / "train" / "a.jpg", _photo(10, 12))
    expect = np.select([raw == 0, raw == 7, raw == 26], [0, 1, 2], 255)
    if fmt == "index":
        save_image(root / "masks" / "train" / "a.png", raw)
    else:
        colours = {0: (0, 0, 0), 7: (128, 64, 128), 26: (0, 0, 142), 255: (255, 255, 255)}
        rgb = np.zeros((10, 12, 3), np.uint8)
        for v, c in colours.items():
            rgb[raw == v] = c
        save_image(root / "masks" / "train" / "a.png", rgb)
    return expect


@pytest.mark.parametrize("fmt", ["index", "color"])
def test_folder_layout(tmp_path, fmt):
    expect = _write_folder(tmp_path, fmt)
    ds = SegFolderDataset(str(tmp_path), "train", classes="classes.yaml", mask_format=fmt, augment=False)
    assert ds.classes == ("bg", "road", "car") and ds.palette[1] == (128, 64, 128)
    np.testing.assert_array_equal(ds[0]["mask"].numpy(), expect)


def test_folder_unknown_values_and_colours(tmp_path):
    _write_folder(tmp_path, "index")
    save_image(tmp_path / "masks" / "train" / "a.png", np.full((10, 12), 9, np.uint8))
    with pytest.raises(DataError, match=r"a\.png.*9"):
        SegFolderDataset(str(tmp_path), "train", augment=False)[0]
    rgb = np.zeros((10, 12, 3), np.uint8)
    rgb[0, 0] = (1, 2, 3)
    save_image(tmp_path / "masks" / "train" / "a.png", rgb)
    with pytest.raises(DataError, match=r"\(1, 2, 3\)"):
        SegFolderDataset(str(tmp_path), "train", mask_format="color", augment=False)[0]


def test_folder_inline_table_and_bad_table(tmp_path):
    _write_folder(tmp_path, "index")
    ds = SegFolderDataset(str(tmp_path), "train", classes={"classes": [{"name": "bg"}, {"name": "road", "value": 7},
                                                                        {"name": "car", "value": 26}]}, augment=False)
    assert ds.num_classes == 3
    with pytest.raises(ConfigError, match="name"):
        SegFolderDataset(str(tmp_path), "train", classes=[{"colour": [1, 2, 3]}])
    with pytest.raises(ConfigError, match="nope.yaml"):
        SegFolderDataset(str(tmp_path), "train", classes="nope.yaml")


def test_mosaic_deterministic_and_covers_classes():
    a = SegMosaicDataset(None, "train", size=32, num_images=60, seed=3)
    b = SegMosaicDataset(None, "train", size=32, num_images=60, seed=3, augment=False)
    assert torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks)
    img, lab = mosaic_sample(32, 3, "train", 5)
    np.testing.assert_array_equal(lab, a.masks[5].numpy())
    present = set(a.masks.unique().tolist())
    assert set(range(len(MOSAIC_CLASSES))) <= present and 255 in present
    assert present <= set(range(len(MOSAIC_CLASSES))) | {255}
    v = SegMosaicDataset(None, "val", size=32, num_images=60, seed=3)
    assert not torch.equal(v.images, a.images)  # disjoint streams
    c = SegMosaicDataset(None, "train", size=32, num_images=60, seed=4)
    assert not torch.equal(c.masks, a.masks)
    # the same (index, seed) gives the same augmented sample; items are the documented types
    x, y = a[(7, 11)], a[(7, 11)]
    assert torch.equal(x["image"], y["image"]) and torch.equal(x["mask"], y["mask"])
    assert x["image"].shape == (3, 32, 32) and x["mask"].dtype == torch.int64
    assert not b.augment and torch.equal(b[2]["mask"], b.masks[2].long())


def test_mosaic_default_sizes_and_root():
    ds = SegMosaicDataset(None, "val")
    assert len(ds) == 100 and ds.images.shape[-2:] == (64, 64)
    with pytest.raises(ConfigError, match="root"):
        SegMosaicDataset("/data", "train")


def test_joint_augment_keeps_ignore_and_alignment():
    g = np.random.default_rng(0)
    mask = torch.from_numpy(g.choice([0, 1, 2, 255], size=(24, 20))).long()
    image = (mask.float() / 255.0).expand(3, -1, -1).clone()  # image encodes the label
    seen_pad = False
    for seed in range(20):
        rng = np.random.default_rng(seed)
        im, m = joint_augment(image, mask, rng, crop_size=28, scale=(0.5, 2.0), hflip=True)
        assert im.shape == (3, 28, 28) and m.shape == (28, 28) and m.dtype == torch.int64
        assert set(m.unique().tolist()) <= {0, 1, 2, 255}  # nearest: no invented labels
        seen_pad |= bool((im.sum(0) == 0)[m == 255].any())
        # at scale 1 the image and mask are cropped/flipped identically: exact alignment
        im1, m1 = joint_augment(image, mask, np.random.default_rng(seed), crop_size=16, scale=(1.0, 1.0))
        torch.testing.assert_close(im1[0], m1.float() / 255.0)
    assert seen_pad  # crops larger than the scaled image pad the mask with 255


def test_augmented_item_is_a_pure_function_of_index_and_seed():
    """Exact resume needs it: same (index, seed) -> same tensors, whatever torch's global state;
    another seed -> another crop; and loading an item leaves torch's global generator alone."""
    ds = SegMosaicDataset(None, "train", size=32, num_images=4, crop_size=24, scale=(0.5, 2.0))
    torch.manual_seed(1)
    first = ds[(2, 123)]
    before = torch.get_rng_state()
    torch.manual_seed(999)  # another global state: the item must not depend on it
    again = ds[(2, 123)]
    assert torch.equal(first["image"], again["image"]) and torch.equal(first["mask"], again["mask"])
    torch.set_rng_state(before)
    ds[(3, 5)]
    assert torch.equal(torch.get_rng_state(), before), "__getitem__ moved torch's global generator"
    others = [ds[(2, s)] for s in range(8)]
    assert sum(not torch.equal(o["image"], first["image"]) for o in others) == 8
    assert len({o["mask"].numpy().tobytes() for o in others}) > 4
    assert torch.equal(ds[2]["image"], ds[2]["image"])  # a plain int is deterministic too


def test_joint_augment_pads_both_sides_with_ignore_and_shrinks_antialiased():
    """Upscaled content is never cropped when it fits (v2 pads the shortfall on both sides), and at
    scale 0.5 the image is the antialiased bilinear of F.interpolate (what i2i used before)."""
    mask = torch.full((16, 16), 2, dtype=torch.long)
    image = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0))
    tops = set()
    for seed in range(30):
        im, m = joint_augment(image, mask, np.random.default_rng(seed), crop_size=24, scale=(1.0, 1.0), hflip=False)
        assert (m == 2).sum() == 256 and (m == 255).sum() == 24 * 24 - 256  # all content kept, the rest ignore
        assert (im.sum(0)[m == 255] == 0).all()
        rows = (m == 2).any(1).nonzero()
        tops.add(int(rows[0]))
    assert len(tops) > 3  # placed at random, not always top-left
    im, m = joint_augment(image, mask, np.random.default_rng(0), crop_size=8, scale=(0.5, 0.5), hflip=False)
    ref = torch.nn.functional.interpolate(image[None], size=(8, 8), mode="bilinear", antialias=True)[0]
    torch.testing.assert_close(im, ref, atol=1e-6, rtol=0)
    assert (m == 2).all()
