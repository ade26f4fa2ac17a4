"""SR datasets (sr_folder, sr_paired) on tiny generated folders and the embedded photos."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from i2i.data.io import save_image
from i2i.data.resize import imresize
from i2i.data.super_resolution import EMBEDDED_TRAIN, EMBEDDED_VAL, SRFolder, SRPaired, make_lr
from i2i.errors import ConfigError, DataError
from i2i.registry import DATASETS


def _coord_image(h: int, w: int) -> np.ndarray:
    """R = row, G = column, B = 7: a crop's top-left pixel tells where it came from."""
    r, c = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    return np.stack([r, c, np.full_like(r, 7)], axis=-1).astype(np.uint8)


def _folder(tmp_path: Path, sizes: list[tuple[int, int]], name: str = "hr") -> Path:
    d = tmp_path / name
    for k, (h, w) in enumerate(sizes):
        save_image(d / f"img{k}.png", _coord_image(h, w))
    return d


def test_registered() -> None:
    assert "sr_folder" in DATASETS and "sr_paired" in DATASETS


def test_train_patches_are_aligned_and_lr_is_matlab_bicubic(tmp_path: Path) -> None:
    root = _folder(tmp_path, [(40, 52), (45, 37)])
    ds = SRFolder(str(root), "train", scale=4, patch_size=16, augment=False, repeat=3)
    assert len(ds) == 6 and ds.names == ["img0", "img1"]
    for k in range(len(ds)):
        item = ds[(k, 1234 + k)]
        assert set(item) == {"lr", "hr", "index"} and int(item["index"]) == k % 2
        hr, lr = item["hr"], item["lr"]
        assert hr.shape == (3, 16, 16) and lr.shape == (3, 4, 4)
        assert hr.dtype == torch.float32 and 0 <= float(hr.min()) and float(hr.max()) <= 1
        top, left = round(float(hr[0, 0, 0]) * 255), round(float(hr[1, 0, 0]) * 255)
        assert top % 4 == 0 and left % 4 == 0
        assert torch.allclose(lr, torch.round(imresize(hr, scale=0.25).clamp(0, 1) * 255) / 255)


def test_augmented_lr_matches_augmented_hr_and_determinism(tmp_path: Path) -> None:
    root = _folder(tmp_path, [(64, 64)])
    ds = SRFolder(str(root), "train", scale=2, patch_size=16, augment=True, repeat=16)
    seen_transposed = False
    for k in range(16):
        item = ds[(k, k)]
        assert torch.equal(item["lr"], make_lr(item["hr"], 2))  # LR made after the joint transform
        rows = item["hr"][0] * 255
        seen_transposed |= bool((rows[0, 1] != rows[0, 0]).item())  # row index varies along x
    assert seen_transposed
    a, b = ds[(3, 99)], ds[(3, 99)]
    assert torch.equal(a["hr"], b["hr"])  # a sample is a function of (index, seed)
    assert any(not torch.equal(ds[(3, s)]["hr"], a["hr"]) for s in range(100, 105))
    assert torch.equal(ds[5]["hr"], ds[5]["hr"])  # plain ints are deterministic too


def test_val_full_images_modcropped_and_centre_crop(tmp_path: Path) -> None:
    root = _folder(tmp_path, [(41, 50)])
    ds = SRFolder(str(root), "val", scale=4, repeat=5)
    assert len(ds) == 1  # repeat applies to training only
    item = ds[0]
    assert item["hr"].shape == (3, 40, 48) and item["lr"].shape == (3, 10, 12)
    assert float(item["hr"][0, 0, 0]) == 0.0  # top-left crop, no randomness
    c = SRFolder(str(root), "val", scale=4, val_patch_size=16)[0]
    assert c["hr"].shape == (3, 16, 16)
    assert round(float(c["hr"][0, 0, 0]) * 255) % 4 == 0


def test_val_fraction_val_root_and_cache_none(tmp_path: Path) -> None:
    root = _folder(tmp_path, [(32, 32)] * 5)
    tr = SRFolder(str(root), "train", scale=2, patch_size=8, val_fraction=0.4)
    va = SRFolder(str(root), "val", scale=2, patch_size=8, val_fraction=0.4)
    assert tr.names == ["img0", "img1", "img2"] and va.names == ["img3", "img4"]
    vr = _folder(tmp_path, [(20, 20)], name="v")
    assert SRFolder(str(root), "val", scale=2, val_root=str(vr)).names == ["img0"]
    assert len(SRFolder(str(root), "val", scale=2)) == 5  # neither: the whole folder
    lazy = SRFolder(str(root), "train", scale=2, patch_size=8, cache="none")
    eager = SRFolder(str(root), "train", scale=2, patch_size=8, cache="memory")
    assert torch.equal(lazy[(2, 7)]["hr"], eager[(2, 7)]["hr"])


@pytest.mark.parametrize("cache", ["memory", "none"])
def test_small_and_broken_files_raise_or_skip(tmp_path: Path, cache: str, caplog: pytest.LogCaptureFixture) -> None:
    root = _folder(tmp_path, [(32, 32), (12, 40)])
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DataError, match="broken.png: not a readable image"):
        SRFolder(str(root), "train", scale=4, patch_size=16, cache=cache)
    (root / "broken.png").unlink()
    with pytest.raises(DataError, match=r"img1.png: image 40x12 is smaller than patch_size=16"):
        SRFolder(str(root), "train", scale=4, patch_size=16, cache=cache)
    (root / "broken.png").write_bytes(b"")
    with caplog.at_level(logging.WARNING):
        ds = SRFolder(str(root), "train", scale=4, patch_size=16, cache=cache, on_error="skip")
    assert ds.names == ["img0"]
    assert "img1.png" in caplog.text and "broken.png" in caplog.text
    assert ds[0]["hr"].shape == (3, 16, 16)


def test_config_errors(tmp_path: Path) -> None:
    root = _folder(tmp_path, [(32, 32)])
    with pytest.raises(ConfigError, match="patch_size"):
        SRFolder(str(root), "train", scale=4, patch_size=18)
    with pytest.raises(ConfigError, match="split"):
        SRFolder(str(root), "test")
    with pytest.raises(DataError, match="nope: folder not found"):
        SRFolder(str(tmp_path / "nope"), "train")


def test_embedded_default_split() -> None:
    assert not set(EMBEDDED_TRAIN) & set(EMBEDDED_VAL)
    tr = SRFolder(None, "train", scale=4, patch_size=96)
    assert tr.names == list(EMBEDDED_TRAIN)
    item = tr[(0, 5)]
    assert item["hr"].shape == (3, 96, 96) and item["lr"].shape == (3, 24, 24)
    assert float(item["hr"].std()) > 0.01  # real content, not a blank crop of padding
    va = SRFolder(None, "val", scale=4)
    assert va.names == list(EMBEDDED_VAL)
    shapes = [tuple(va[k]["hr"].shape) for k in range(len(va))]
    assert shapes == [(3, 300, 448), (3, 400, 600), (3, 300, 384), (3, 512, 512)]
    assert all(tuple(va[k]["lr"].shape[1:]) == (s[1] // 4, s[2] // 4) for k, s in enumerate(shapes))


# --- sr_paired -----------------------------------------------------------------------------
def _paired(tmp_path: Path, scale: int = 2, div2k_names: bool = False) -> Path:
    root = tmp_path / "pairs"
    for k, (h, w) in enumerate([(33, 40), (24, 30)]):
        hr = _coord_image(h, w)
        save_image(root / "hr" / f"{k:04d}.png", hr)
        lr = _coord_image(h // scale, w // scale)  # LR pixel (r, c) <-> HR pixel (r·s, c·s)
        name = f"{k:04d}x{scale}.png" if div2k_names else f"{k:04d}.png"
        save_image(root / "lr" / name, lr)
    return root


@pytest.mark.parametrize("div2k_names", [False, True])
def test_paired_aligned_crops(tmp_path: Path, div2k_names: bool) -> None:
    root = _paired(tmp_path, 2, div2k_names)
    ds = SRPaired(str(root), "train", scale=2, patch_size=8, augment=False)
    assert ds.names == ["0000", "0001"]
    for seed in range(6):
        item = ds[(seed % 2, seed)]
        assert item["hr"].shape == (3, 8, 8) and item["lr"].shape == (3, 4, 4)
        lr_rc = (item["lr"][:2, 0, 0] * 255).round()
        hr_rc = (item["hr"][:2, 0, 0] * 255).round()
        assert torch.equal(hr_rc, lr_rc * 2)
    aug = SRPaired(str(root), "train", scale=2, patch_size=8, augment=True)
    for seed in range(6):
        item = aug[(0, seed)]
        # each LR pixel (r, c) covers the 2×2 HR block of pixels (2r.., 2c..), whatever the flips
        q = torch.div((item["hr"][:2] * 255).round(), 2, rounding_mode="floor")
        blocks = q.view(2, 4, 2, 4, 2).permute(0, 1, 3, 2, 4)
        assert torch.equal(blocks, ((item["lr"][:2] * 255).round())[..., None, None].expand_as(blocks))
    val = SRPaired(str(root), "val", scale=2)[0]
    assert val["hr"].shape == (3, 32, 40) and val["lr"].shape == (3, 16, 20)  # HR modcropped


def test_paired_errors_name_the_file(tmp_path: Path) -> None:
    root = _paired(tmp_path, 2)
    save_image(root / "lr" / "0001.png", _coord_image(10, 15))  # wrong size
    with pytest.raises(DataError, match=r"0001.png: LR size 15x10 × scale 2 does not match HR"):
        SRPaired(str(root), "train", scale=2, patch_size=8)
    (root / "lr" / "0001.png").unlink()
    with pytest.raises(DataError, match=r"0001.png: no matching LR image"):
        SRPaired(str(root), "train", scale=2, patch_size=8)
    assert SRPaired(str(root), "train", scale=2, patch_size=8, on_error="skip").names == ["0000"]
    with pytest.raises(DataError, match="no hr or HR sub-folder"):
        SRPaired(str(tmp_path), "train")
    with pytest.raises(ConfigError, match="root"):
        SRPaired(None, "train")
