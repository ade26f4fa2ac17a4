"""Paired datasets: aligned A|B, paired folders, photo -> sketch (files and embedded)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from i2i.errors import ConfigError, DataError
from i2i.data.paired import EMBEDDED_SPLITS, AlignedDataset, PairedFoldersDataset, PhotoSketchDataset, to_channels
from i2i.registry import DATASETS


def _gradient(h: int, w: int, seed: int) -> np.ndarray:
    """A smooth colour image whose left/top/colour identify it after jitter."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = rng.integers(0, 256, 3)
    img = (base + np.stack([x * 200 / w, y * 200 / h, (x + y) * 50 / (h + w)], -1)) % 256
    return img.astype(np.uint8)


def _save(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)


@pytest.fixture()
def aligned_root(tmp_path: Path) -> Path:
    for split, n in (("train", 3), ("val", 2)):
        for k in range(n):
            a = np.full((40, 40, 3), 0, np.uint8)  # A: black, B: white -> halves are easy to tell apart
            b = np.full((40, 40, 3), 255, np.uint8)
            a[:, :20, 0] = 120  # left half of A tinted, so flips are visible
            _save(tmp_path / split / f"{k:03d}.png", np.concatenate([a, b], 1))
    return tmp_path


@pytest.fixture()
def folders_root(tmp_path: Path) -> Path:
    for k in range(3):
        _save(tmp_path / "train" / "A" / f"{k}.png", _gradient(36, 44, k))
        _save(tmp_path / "train" / "B" / f"{k}.jpg", _gradient(36, 44, 10 + k))
    return tmp_path


def _check_item(item: dict, ca: int, cb: int, size: int) -> None:
    assert set(item) == {"A", "B"}
    assert item["A"].shape == (ca, size, size) and item["B"].shape == (cb, size, size)
    for t in item.values():
        assert t.dtype == torch.float32 and t.min() >= -1.0 and t.max() <= 1.0


def test_aligned(aligned_root: Path) -> None:
    ds = DATASETS.build({"type": "aligned", "root": str(aligned_root), "split": "train", "load_size": 36,
                         "crop_size": 32})
    assert len(ds) == 3
    item = ds[(0, 7)]
    _check_item(item, 3, 3, 32)
    assert item["A"].mean() < 0 and (item["B"] == 1).all()
    swapped = AlignedDataset(str(aligned_root), "train", direction="BtoA", load_size=36, crop_size=32)[(0, 7)]
    assert torch.equal(swapped["A"], item["B"])
    val = AlignedDataset(str(aligned_root), "val", load_size=36, crop_size=32, a_channels=1)
    _check_item(val[1], 1, 3, 32)
    assert torch.equal(val[(1, 1)]["A"], val[(1, 2)]["A"]), "no randomness outside training"


def test_aligned_flip_and_crop_are_joint(tmp_path: Path) -> None:
    a, b = _gradient(32, 32, 0), _gradient(32, 32, 0)
    _save(tmp_path / "train" / "x.png", np.concatenate([a, b], 1))
    ds = AlignedDataset(str(tmp_path), "train", load_size=32, crop_size=24)
    seen_flip = set()
    for seed in range(12):
        item = ds[(0, seed)]
        assert torch.equal(item["A"], item["B"]), "A and B must get the same crop and flip"
        seen_flip.add(bool(item["A"][0, 0, 0] > item["A"][0, 0, -1]))  # red grows with x unless flipped
    assert seen_flip == {True, False}


def test_aligned_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="root"):
        AlignedDataset(None, "train")
    with pytest.raises(DataError, match="train"):
        AlignedDataset(str(tmp_path), "train")
    _save(tmp_path / "train" / "odd.png", np.zeros((8, 9, 3), np.uint8))
    with pytest.raises(DataError, match="odd.png"):
        AlignedDataset(str(tmp_path), "train", load_size=8, crop_size=8)[0]
    with pytest.raises(ConfigError, match="load_size"):
        AlignedDataset(str(tmp_path), "train", load_size=8, crop_size=16)


def test_paired_folders(folders_root: Path) -> None:
    ds = PairedFoldersDataset(str(folders_root), "train", load_size=40, crop_size=32)
    assert len(ds) == 3
    _check_item(ds[(2, 5)], 3, 3, 32)
    # same (index, seed) -> identical sample; another seed -> (almost surely) another crop
    x, y, z = ds[(1, 3)], ds[(1, 3)], ds[(1, 4)]
    assert torch.equal(x["A"], y["A"]) and torch.equal(x["B"], y["B"])
    assert not torch.equal(x["A"], z["A"]) or not torch.equal(ds[(1, 5)]["A"], x["A"])
    gray = PairedFoldersDataset(str(folders_root), "train", load_size=40, crop_size=32, b_channels=1)
    _check_item(gray[0], 3, 1, 32)


def test_paired_folders_errors(folders_root: Path) -> None:
    _save(folders_root / "train" / "A" / "lonely.png", _gradient(36, 44, 99))
    with pytest.raises(DataError, match="lonely.png"):
        PairedFoldersDataset(str(folders_root), "train")
    (folders_root / "train" / "A" / "lonely.png").unlink()
    _save(folders_root / "train" / "B" / "1.jpg", _gradient(30, 44, 11))  # overwrite with another size
    ds = PairedFoldersDataset(str(folders_root), "train", load_size=40, crop_size=32)
    ds[0]
    with pytest.raises(DataError, match=r"1\.jpg.*does not match"):
        ds[1]


def test_photo_sketch_folder(tmp_path: Path) -> None:
    for k in range(2):
        _save(tmp_path / "train" / f"p{k}.png", _gradient(50, 70, k))
    ds = PhotoSketchDataset(str(tmp_path), "train", sketch="canny", sketch_params={"sigma": 1.0}, repeat=5,
                            load_size=40, crop_size=32)
    assert len(ds) == 10
    item = ds[(7, 1)]
    _check_item(item, 1, 3, 32)
    assert torch.equal(ds[(7, 1)]["A"], item["A"])
    assert len(ds._cache) == 1, "photo and sketch are cached"
    with pytest.raises(ConfigError, match="sketch_params"):
        PhotoSketchDataset(str(tmp_path), "train", sketch_params={"nonsense": 1.0})


def test_photo_sketch_embedded() -> None:
    assert set(EMBEDDED_SPLITS["train"]).isdisjoint(EMBEDDED_SPLITS["val"])
    train = DATASETS.build({"type": "photo_sketch", "root": None, "split": "train", "repeat": 3,
                            "load_size": 72, "crop_size": 64})
    assert len(train) == 3 * len(EMBEDDED_SPLITS["train"])
    for index in [(0, 0), (1, 1), (len(train) - 1, 2)]:
        item = train[index]
        _check_item(item, 1, 3, 64)
        a = item["A"]
        # a sketch: mostly white paper, some dark lines
        assert (a > 0.5).float().mean() > 0.5 and (a < -0.5).any()
    assert torch.equal(train[(4, 9)]["B"], train[(4, 9)]["B"])
    val = PhotoSketchDataset(None, "val", sketch_channels=3, load_size=72, crop_size=64, repeat=3)
    assert len(val) == len(EMBEDDED_SPLITS["val"])
    _check_item(val[0], 3, 3, 64)
    photo_to_sketch = PhotoSketchDataset(None, "val", direction="BtoA", load_size=72, crop_size=64)
    _check_item(photo_to_sketch[0], 3, 1, 64)
    with pytest.raises(ConfigError, match="split"):
        PhotoSketchDataset(None, "holdout")


def test_jitter_is_a_pure_function_of_index_and_seed(folders_root: Path) -> None:
    """Exact resume needs it: same (index, seed) -> same tensors whatever torch's global state,
    other seeds -> other crops, and torch's global generator is left where it was."""
    ds = PairedFoldersDataset(str(folders_root), "train", load_size=40, crop_size=24)
    torch.manual_seed(0)
    first = ds[(1, 77)]
    state = torch.get_rng_state()
    torch.manual_seed(12345)
    again = ds[(1, 77)]
    assert torch.equal(first["A"], again["A"]) and torch.equal(first["B"], again["B"])
    torch.set_rng_state(state)
    ds[(2, 3)]
    assert torch.equal(torch.get_rng_state(), state), "__getitem__ moved torch's global generator"
    crops = {ds[(1, s)]["A"].numpy().tobytes() for s in range(12)}
    assert len(crops) >= 10  # 17² crop positions × 2 flips: repeats are rare


def test_jitter_crops_the_same_window_of_a_and_b(tmp_path: Path) -> None:
    """The v2 crop is a window of the resized pair: found exactly in the resized image."""
    a = _gradient(30, 30, 1)
    _save(tmp_path / "train" / "x.png", np.concatenate([a, a], 1))
    ds = AlignedDataset(str(tmp_path), "train", load_size=30, crop_size=20, flip=False)
    full = torch.from_numpy(a.transpose(2, 0, 1).astype(np.float32)).div(127.5).sub(1)
    for seed in range(5):
        item = ds[(0, seed)]
        hits = [(t, l) for t in range(11) for l in range(11) if torch.equal(full[:, t:t + 20, l:l + 20], item["A"])]
        assert len(hits) == 1 and torch.equal(item["A"], item["B"])


# ----------------------------------------------------------------------------- to_channels
def test_to_channels_composites_alpha_on_white_like_read_image(tmp_path):
    """RGBA/gray+alpha arrays from the Python API: composited on white (not one channel copied)."""
    rgba = np.array([[[200, 40, 10, 255], [200, 40, 10, 0], [0, 100, 250, 128]]], np.uint8)
    want = np.array([[[200, 40, 10], [255, 255, 255],
                      # by hand: c * a + 255 * (1 - a), a = 128/255
                      [round(0 * 128 / 255 + 255 * 127 / 255), round(100 * 128 / 255 + 255 * 127 / 255),
                       round(250 * 128 / 255 + 255 * 127 / 255)]]], np.uint8)
    np.testing.assert_array_equal(to_channels(rgba, 3), want)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    from i2i.data.io import read_image
    np.testing.assert_array_equal(to_channels(rgba, 3), read_image(tmp_path / "a.png"))
    np.testing.assert_array_equal(to_channels(rgba, 1)[..., 0], read_image(tmp_path / "a.png", mode="L"))
    la = np.array([[[10, 255], [10, 0]]], np.uint8)
    np.testing.assert_array_equal(to_channels(la, 3), [[[10, 10, 10], [255, 255, 255]]])
    np.testing.assert_array_equal(to_channels(la, 1), [[[10], [255]]])


def test_to_channels_plain_layouts_and_bad_shapes():
    rgb = np.array([[[255, 0, 0], [0, 0, 255]]], np.uint8)
    np.testing.assert_array_equal(to_channels(rgb, 1)[..., 0], [[76, 29]])    # 0.299*255, 0.114*255
    np.testing.assert_array_equal(to_channels(np.array([[7]], np.uint8), 3), [[[7, 7, 7]]])
    assert to_channels(rgb, 3) is rgb
    with pytest.raises(ValueError, match=r"image: expected .* got shape \(1, 2, 5\)"):
        to_channels(np.zeros((1, 2, 5), np.uint8), 3)
    with pytest.raises(ValueError, match=r"^channels: expected 1 or 3, got 2$"):
        to_channels(rgb, 2)
