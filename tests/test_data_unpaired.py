"""Unpaired datasets: the released trainA/trainB/testA/testB layout, independent B draws from the
per-sample seed, jitter, paired evaluation, class domains from IDX files, and one-line errors."""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from i2i.data import unpaired
from i2i.data.io import save_image
from i2i.data.unpaired import UnpairedClasses, UnpairedFolders
from i2i.errors import ConfigError, DataError

# file k of domain A is a flat gray of level LEVEL_A[k]: an item's value says which file it holds
LEVEL_A = [0, 51, 102]
LEVEL_B = [153, 204, 255, 25, 76]


def level(x: torch.Tensor) -> int:
    """A flat [-1, 1] image -> its uint8 gray level."""
    assert torch.allclose(x, x.flatten()[0].expand_as(x), atol=1e-6), "not flat"
    return round((x.flatten()[0].item() + 1) * 127.5)


def make_layout(root: Path, size: tuple[int, int] = (20, 24), test_b_names: list[str] | None = None) -> Path:
    h, w = size
    for split in ("train", "test"):
        for k, v in enumerate(LEVEL_A):
            save_image(root / f"{split}A" / f"a{k}.png", np.full((h, w, 3), v, np.uint8))
        names = test_b_names if split == "test" and test_b_names is not None else [f"b{k}" for k in range(len(LEVEL_B))]
        for k, name in enumerate(names):
            save_image(root / f"{split}B" / f"{name}.png", np.full((h, w, 3), LEVEL_B[k], np.uint8))
    return root


def test_folders_draw_b_independently_from_the_per_sample_seed(tmp_path: Path) -> None:
    ds = UnpairedFolders(str(make_layout(tmp_path)), "train", load_size=20, crop_size=16)
    assert len(ds) == 5  # max(|A|, |B|)
    item = ds[(4, 123)]
    assert item["A"].shape == item["B"].shape == (3, 16, 16) and item["A"].dtype == torch.float32
    assert level(item["A"]) == LEVEL_A[4 % 3]  # item i holds A image i mod |A|
    again = ds[(4, 123)]
    assert torch.equal(again["A"], item["A"]) and torch.equal(again["B"], item["B"])  # a pure function of (i, seed)
    drawn = [level(ds[(0, seed)]["B"]) for seed in range(60)]
    expected = [LEVEL_B[int(np.random.default_rng(seed).integers(0, 5))] for seed in range(60)]
    assert drawn == expected  # B's index is the per-sample RNG's first draw
    assert set(drawn) == set(LEVEL_B)  # every B image is reachable from item 0
    assert "paired" not in item


def test_test_split_is_deterministic_pairs_i_mod_b_without_jitter(tmp_path: Path) -> None:
    ds = UnpairedFolders(str(make_layout(tmp_path)), "test", load_size=20, crop_size=16, a_channels=1)
    assert [level(ds[i]["B"]) for i in range(5)] == LEVEL_B
    assert [level(ds[i]["A"]) for i in range(5)] == [LEVEL_A[i % 3] for i in range(5)]
    assert ds[0]["A"].shape == (1, 16, 16) and ds[0]["B"].shape == (3, 16, 16)  # 20×24 resized to 16×16


def test_training_jitter_crops_and_flips_a_and_b_separately(tmp_path: Path) -> None:
    ramp = np.tile(np.arange(0, 240, 10, dtype=np.uint8), (24, 1))  # 24×24, brighter to the right
    for d in ("trainA", "trainB"):
        save_image(tmp_path / d / "x.png", np.stack([ramp] * 3, -1))
    ds = UnpairedFolders(str(tmp_path), "train", load_size=24, crop_size=16, a_channels=1, b_channels=1)
    crops = {tuple(ds[(0, s)]["A"][0, 0].tolist()) for s in range(40)}
    assert len(crops) > 4  # left offsets and flips vary with the seed
    flipped = [s for s in range(40) if ds[(0, s)]["A"][0, 0, 0] > ds[(0, s)]["A"][0, 0, -1]]
    assert 5 < len(flipped) < 35  # mirrored about half the time
    same = sum(torch.equal(ds[(0, s)]["A"], ds[(0, s)]["B"]) for s in range(40))
    assert same < 20  # A and B get their own crop and flip
    ds_noflip = UnpairedFolders(str(tmp_path), "train", load_size=24, crop_size=16, flip=False, a_channels=1)
    assert all(ds_noflip[(0, s)]["A"][0, 0, 0] < ds_noflip[(0, s)]["A"][0, 0, -1] for s in range(20))


def test_paired_eval_pairs_test_images_by_name(tmp_path: Path) -> None:
    root = make_layout(tmp_path, test_b_names=["a2", "a0", "a1"])  # B files named after their A partners
    ds = UnpairedFolders(str(root), "test", crop_size=16, load_size=16, paired_eval=True)
    assert len(ds) == 3 and all(ds[i]["paired"].item() == 1 for i in range(3))
    assert [level(ds[i]["B"]) for i in range(3)] == [LEVEL_B[1], LEVEL_B[2], LEVEL_B[0]]  # a0 <-> B file "a0"...
    assert "paired" not in UnpairedFolders(str(root), "train", crop_size=16, load_size=16, paired_eval=True)[(0, 1)]


def test_paired_eval_names_a_file_without_partner(tmp_path: Path) -> None:
    root = make_layout(tmp_path, test_b_names=["a0", "a1", "zz"])
    with pytest.raises(DataError, match=r"a2\.png: paired_eval needs a partner named a2\.\* in .*testB"):
        UnpairedFolders(str(root), "test", paired_eval=True)


def test_layout_errors_are_one_line_and_name_the_folder(tmp_path: Path) -> None:
    (tmp_path / "trainA").mkdir()
    (tmp_path / "photos").mkdir()
    with pytest.raises(DataError) as e:
        UnpairedFolders(str(tmp_path), "train")
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path) in msg and "no trainB folder" in msg and "found: photos, trainA" in msg
    (tmp_path / "trainB").mkdir()
    with pytest.raises(DataError, match=r"trainA: no images found"):
        UnpairedFolders(str(tmp_path), "train")
    with pytest.raises(ConfigError, match="root"):
        UnpairedFolders(None, "train")
    with pytest.raises(ConfigError, match="load_size"):
        UnpairedFolders(str(tmp_path), "train", load_size=100, crop_size=128)
    with pytest.raises(ConfigError, match="b_channels"):
        UnpairedFolders(str(tmp_path), "train", b_channels=2)


def test_build_dataset_reports_a_missing_root_by_its_key(tmp_path: Path) -> None:
    from i2i.engine.build import build_dataset

    with pytest.raises(ConfigError, match="data.root.*does not exist"):
        build_dataset({"type": "unpaired_folders", "root": str(tmp_path / "nope")}, "train")
    ds = build_dataset({"type": "unpaired_folders", "root": str(make_layout(tmp_path)), "crop_size": 8, "load_size": 8},
                       "test")
    assert len(ds) == 5


# --- two classes of an IDX set as domains -----------------------------------------------------
def write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def make_idx(root: Path, labels: list[int]) -> Path:
    """Image k is a flat 28×28 gray of level 10·k, label labels[k]; same files for train and t10k."""
    root.mkdir(parents=True, exist_ok=True)
    imgs = np.stack([np.full((28, 28), 10 * k, np.uint8) for k in range(len(labels))])
    for prefix in ("train", "t10k"):
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", imgs)
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", np.array(labels, np.uint8))
    return root


def test_classes_become_domains_upsampled_to_the_crop(tmp_path: Path) -> None:
    root = make_idx(tmp_path, [7, 9, 1, 7, 9, 9, 7, 7])
    ds = UnpairedClasses(str(root), "train", classes=[7, 9])
    assert ds.sizes == {"A": 4, "B": 3} and len(ds) == 4
    item = ds[(2, 5)]
    assert item["A"].shape == item["B"].shape == (1, 32, 32)
    assert level(item["A"]) == 60  # A = images of label 7: indices 0, 3, 6, 7 -> item 2 is image 6
    assert level(item["B"]) in (10, 40, 50)
    test = UnpairedClasses(str(root), "val", classes=[9, 7], channels=3, limit=2)
    assert test.sizes == {"A": 2, "B": 2} and test[1]["A"].shape == (3, 32, 32)
    assert [level(test[i]["B"]) for i in range(2)] == [0, 30]


def test_class_errors_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_idx(tmp_path / "idx", [7, 9, 7])
    with pytest.raises(DataError, match=r"no train image has label 3 \(labels present: 7, 9\)"):
        UnpairedClasses(str(root), "train", classes=[7, 3])
    with pytest.raises(ConfigError, match="classes"):
        UnpairedClasses(str(root), "train", classes=[7, 7])
    with pytest.raises(ConfigError, match="split"):
        UnpairedClasses(str(root), "holdout")
    monkeypatch.setattr(unpaired, "FASHION_MNIST_ROOT", tmp_path / "absent")
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        UnpairedClasses(None, "train")


@pytest.mark.skipif(not unpaired.FASHION_MNIST_ROOT.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_the_offline_default_is_fashion_mnist_sneakers_and_ankle_boots() -> None:
    ds = UnpairedClasses(None, "test")
    assert ds.classes == [7, 9] and ds.sizes == {"A": 1000, "B": 1000}  # 1,000 test images per class
    assert unpaired.FASHION_MNIST_CLASSES[7] == "Sneaker" and unpaired.FASHION_MNIST_CLASSES[9] == "Ankle boot"
    x = ds[0]["A"]
    assert x.shape == (1, 32, 32) and x.min() >= -1 and x.max() <= 1 and x.min() < -0.9 < 0.5 < x.max()
