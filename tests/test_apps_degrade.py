"""tools/degrade.py: a seeded, degraded copy of a photo folder."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import load_tool

from i2i.apps.degrade import degrade_image, file_seed
from i2i.cli import run
from i2i.data.degradations import DegradationConfig, degrade
from i2i.data.io import read_image, save_image


def photos(root: Path) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    for name, (h, w) in (("a.png", (66, 70)), ("b.jpg", (48, 64))):
        y, x = np.mgrid[0:h, 0:w] / 40.0
        img = np.stack([0.5 + 0.3 * np.sin(3 * x + c) * np.cos(2 * y) for c in range(3)], -1)
        save_image(root / name, np.clip(img + 0.03 * rng.standard_normal(img.shape), 0, 1).astype(np.float32))
    return root


def test_degrade_folder_is_seeded_and_aligned(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = photos(tmp_path / "hr")
    main = load_tool("degrade").main
    assert run(main, [str(src), "-o", str(tmp_path / "lr"), "--seed", "3", "--hr", str(tmp_path / "pairs")]) == 0
    assert "wrote 2 degraded image(s)" in capsys.readouterr().out
    a, b = read_image(tmp_path / "lr" / "a.png"), read_image(tmp_path / "lr" / "b.png")
    assert a.shape == (16, 17, 3) and b.shape == (12, 16, 3)  # cropped to multiples of 4, then ÷4
    assert read_image(tmp_path / "pairs" / "a.png").shape == (64, 68, 3)
    # the file is exactly degrade() of the cropped image with the file's own seed
    hr = read_image(src / "a.png", dtype="float32")[:64, :68]
    ref = degrade(torch.from_numpy(hr).permute(2, 0, 1)[None], torch.Generator().manual_seed(file_seed(3, "a.png")))
    assert np.array_equal(a, (ref[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    # same seed: same bits; another seed: other bits; a file's result does not depend on the others
    (src / "b.jpg").unlink()
    assert run(main, [str(src), "-o", str(tmp_path / "again"), "--seed", "3"]) == 0
    assert np.array_equal(read_image(tmp_path / "again" / "a.png"), a)
    assert run(main, [str(src), "-o", str(tmp_path / "other"), "--seed", "4", "--scale", "2"]) == 0
    assert read_image(tmp_path / "other" / "a.png").shape == (33, 35, 3)


def test_usm_and_config_file(tmp_path: Path) -> None:
    img = read_image(photos(tmp_path / "hr") / "a.png", dtype="float32")
    cfg = DegradationConfig(scale=2, noise_range=(1.0, 2.0))
    hr, lr = degrade_image(img, 1, cfg, usm=True)
    assert hr.shape == (66, 70, 3) and lr.shape == (33, 35, 3)
    assert not np.allclose(hr, img)  # sharpened
    (tmp_path / "deg.yaml").write_text("degradation:\n  scale: 2\n  noise_range: [1, 2]\n")
    main = load_tool("degrade").main
    assert run(main, [str(tmp_path / "hr"), "-o", str(tmp_path / "lr"), "--config", str(tmp_path / "deg.yaml")]) == 0
    assert read_image(tmp_path / "lr" / "a.png").shape == (33, 35, 3)


def test_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = photos(tmp_path / "hr")
    (src / "broken.png").write_bytes(b"not a png")
    main = load_tool("degrade").main
    assert run(main, [str(src), "-o", str(tmp_path / "lr")]) == 1  # the others are still written
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "broken.png" in err
    assert (tmp_path / "lr" / "a.png").exists()
    assert run(main, [str(src), "-o", str(src)]) == 2
    assert "is the input folder" in capsys.readouterr().err
    (tmp_path / "bad.yaml").write_text("noise_rnge: [1, 2]\n")
    assert run(main, [str(src), "-o", str(tmp_path / "x"), "--config", str(tmp_path / "bad.yaml")]) == 2
    assert "degradation.noise_rnge: unknown key" in capsys.readouterr().err
    assert run(main, [str(tmp_path / "missing"), "-o", str(tmp_path / "x")]) == 2
