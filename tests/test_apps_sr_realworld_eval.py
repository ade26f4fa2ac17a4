"""``i2i-eval --task sr --degrade``: real-world SR evaluation (issue 25, point 7).

The same seed gives the same numbers whether the LR images are made on the fly (``--degrade``) or
written first by ``tools/degrade.py`` and read back as ``hr/`` + ``lr/`` pairs (``--data``).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import load_tool, write_tiny_sr_export

from i2i.cli import run
from i2i.data.io import save_image

SCALE = 4


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ×4 SRResNet export (milliseconds per image)."""
    data = {"type": "sr_folder", "root": None, "val_split": "val", "scale": SCALE}
    return write_tiny_sr_export(tmp_path_factory.mktemp("export") / "export", {"data": data}, scale=SCALE)


@pytest.fixture
def no_backbones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty torch hub cache: LPIPS/DISTS are skipped with their one line. Through ``$TORCH_HOME``
    (restored by monkeypatch), not ``torch.hub.set_dir``, whose process-wide override outlives the test."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)


def photos(root: Path) -> Path:
    """Two photos: one large enough for NIQE (two 96×96 patches after the 4-px border), one not."""
    from skimage import data

    root.mkdir(parents=True)
    save_image(root / "big.png", data.astronaut()[40:250, 150:270].astype(np.float32) / 255)  # 210×120: cropped to 208×120
    save_image(root / "small.jpg", data.chelsea()[50:114, 100:172].astype(np.float32) / 255)
    return root


def _eval(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[dict, str]:
    assert run(load_tool("eval").main, argv) == 0
    out = capsys.readouterr()
    return json.loads(out.out.strip().splitlines()[-1]), out.err


def _numbers(m: dict) -> tuple[dict, list[dict]]:
    keep = {k: v for k, v in m.items() if not isinstance(v, (str, list, dict))}
    return keep, [{k: v for k, v in r.items() if k != "name"} for r in m["per_image"]]


def test_degrade_on_the_fly_equals_tools_degrade_output(export: Path, tmp_path: Path, no_backbones: None,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    src = photos(tmp_path / "photos")
    cfg = tmp_path / "deg.yaml"
    cfg.write_text("degradation:\n  jpeg_range: [60, 95]\n  noise_range: [1, 10]\n  scale: 2\n")  # scale: the model's wins
    base = ["--task", "sr", "--checkpoint", str(export), "--device", "cpu", "--json"]
    fly, err = _eval([*base, "--data", str(src), "--degrade", "--seed", "7", "--degrade-config", str(cfg)], capsys)

    root = tmp_path / "pairs"
    assert run(load_tool("degrade").main, [str(src), "-o", str(root / "lr"), "--hr", str(root / "hr"), "--seed", "7",
                                           "--config", str(cfg), "--scale", "4"]) == 0
    capsys.readouterr()
    disk, _ = _eval([*base, "--data", str(root), "--perceptual"], capsys)

    assert fly["num_images"] == disk["num_images"] == 2
    assert [r["name"] for r in fly["per_image"]] == ["big.png", "small.jpg"]
    assert _numbers(fly) == _numbers(disk)  # the same numbers, bit for bit
    for k in ("psnr_y", "ssim_y", "niqe", "bicubic/psnr_y", "bicubic/niqe", "hr/niqe", "gain/psnr_y"):
        assert isinstance(fly[k], float) and np.isfinite(fly[k]), k
    big, small = fly["per_image"]
    assert big["size"] == [120, 208] and big["niqe"] > 0 and big["bicubic/niqe"] > 0
    assert small["niqe"] is None and fly["niqe"] == big["niqe"]  # 64×72: too small for NIQE, said once
    assert fly["degradation"] == {"seed": 7, "config": str(cfg)}
    # LPIPS/DISTS: no backbone here, one line each naming the file; nothing downloaded, the rest reported
    assert "lpips" not in fly and "dists" not in fly
    lines = err.strip().splitlines()
    assert any(line.startswith("LPIPS skipped: ") and "alexnet-owt-7be5be79.pth" in line for line in lines)
    assert any(line.startswith("DISTS skipped: ") and "vgg16-397923af.pth" in line for line in lines)
    assert any(line.startswith("NIQE skipped for a 72x64 image") for line in lines)
    assert fly["skipped"] == lines

    # another seed, other degradations, other numbers
    other, _ = _eval([*base, "--data", str(src), "--degrade", "--seed", "8", "--degrade-config", str(cfg)], capsys)
    assert other["bicubic/psnr_y"] != fly["bicubic/psnr_y"]


def test_degrade_table_and_errors(export: Path, tmp_path: Path, no_backbones: None,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    src = photos(tmp_path / "photos")
    base = ["--task", "sr", "--checkpoint", str(export), "--device", "cpu"]
    assert run(load_tool("eval").main, [*base, "--data", str(src), "--degrade"]) == 0
    out = capsys.readouterr().out
    assert "NIQE" in out and "bic NIQE" in out and "HR NIQE" in out and "niqe" in out
    # without --degrade/--perceptual, the eval is what it was: no NIQE
    m, _ = _eval([*base, "--data", str(src), "--json"], capsys)
    assert "niqe" not in m and "skipped" not in m

    assert run(load_tool("eval").main, [*base, "--degrade"]) == 2
    assert "--degrade" in capsys.readouterr().err
    assert run(load_tool("eval").main, [*base, "--data", str(src), "--degrade-config", "x.yaml"]) == 2
    assert "only with --degrade" in capsys.readouterr().err
    (tmp_path / "p" / "hr").mkdir(parents=True)
    (tmp_path / "p" / "lr").mkdir()
    assert run(load_tool("eval").main, [*base, "--data", str(tmp_path / "p"), "--degrade"]) == 2
    assert "hr/ + lr/ pairs already" in capsys.readouterr().err
    assert run(load_tool("eval").main, [*base, "--data", str(src), "--degrade", "--degrade-config",
                                        str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml" in capsys.readouterr().err


def test_the_seed_reaches_the_generator() -> None:
    """tools/degrade.py's --seed must change the degradation: torch's CPU generator keeps only the
    low 32 bits of a seed, so the file seed must fit in them (it once put --seed above bit 32)."""
    from i2i.apps.degrade import file_seed

    seeds = {file_seed(s, "a/b.png") for s in range(100)}
    assert len(seeds) == 100 and max(seeds) < 2**32
    assert file_seed(0, "a.png") != file_seed(0, "b.png")
    draws = {torch.rand(1, generator=torch.Generator().manual_seed(file_seed(s, "x.png"))).item() for s in range(5)}
    assert len(draws) == 5


def test_a_broken_photo_is_named(export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "photos"
    src.mkdir()
    (src / "broken.png").write_bytes(b"not a png")
    assert run(load_tool("eval").main, ["--task", "sr", "--checkpoint", str(export), "--device", "cpu",
                                        "--data", str(src), "--degrade"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "broken.png" in err[0]
