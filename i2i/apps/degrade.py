"""``tools/degrade.py``: write a Real-ESRGAN-degraded copy of a photo folder (previews, evaluation pairs).

Each image is cropped at the bottom/right to a multiple of the scale, degraded by
:func:`i2i.data.degradations.degrade` (Real-ESRGAN's second-order model) and written as a
lossless PNG under the same relative path (JPEG artifacts are part of the degradation, so
the copy itself must not add more). The random stream of a file depends only on ``--seed``
and the file's relative path: the same command gives the same bits, and adding or removing
other files changes nothing. ``--hr DIR`` also writes the cropped (and, with ``--usm``,
sharpened) ground truth, so that DIR and the output form aligned HR/LR pairs.
"""
from __future__ import annotations

import argparse
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from ..data.degradations import DegradationConfig, degrade, usm_sharpen
from ..data.io import list_images, read_image, save_image
from ..errors import ConfigError, I2IError


def file_seed(seed: int, relative: str) -> int:
    """The generator seed of one file: the CRC-32 of its relative POSIX path, started from ``seed``.

    32 bits, because torch's CPU generator (mt19937) keeps only the low 32 bits of a seed (an earlier
    ``seed << 32 | crc`` lost ``seed`` entirely). For one path, different seeds below 2³² give
    different values (a CRC is an invertible affine map of its start value)."""
    return zlib.crc32(relative.encode("utf-8"), int(seed) & 0xFFFFFFFF)


def load_config(path: str | None, scale: int | None) -> DegradationConfig:
    """A YAML file holding the degradation keys (at the top level or under ``degradation:``); ``scale`` overrides."""
    data: dict[str, Any] = {}
    if path:
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except OSError as e:
            raise ConfigError(f"cannot read {path}: {e.strerror or e}", "--config") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"{path} is not valid YAML ({' '.join(str(e).split())[:120]})", "--config") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of degradation keys, got {type(loaded).__name__}", "--config")
        data = dict(loaded.get("degradation", loaded))
    if scale is not None:
        data["scale"] = scale
    return DegradationConfig.from_dict(data)


def degrade_image(image: np.ndarray, seed: int, cfg: DegradationConfig, usm: bool = False,
                  device: torch.device | str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """One (H, W, 3) float32 [0, 1] image -> (cropped HR, LR) as (h, w, 3) float32 arrays."""
    s = cfg.scale
    h, w = image.shape[0] // s * s, image.shape[1] // s * s
    if h == 0 or w == 0:
        raise I2IError(f"image is {image.shape[1]}×{image.shape[0]}, smaller than the scale {s}")
    hr = torch.from_numpy(np.ascontiguousarray(image[:h, :w])).permute(2, 0, 1)[None].to(device)
    if usm:
        hr = usm_sharpen(hr)
    lr = degrade(hr, torch.Generator().manual_seed(seed), cfg)
    return hr[0].permute(1, 2, 0).cpu().numpy(), lr[0].permute(1, 2, 0).cpu().numpy()


def degrade_file(path: Path, relative: Path, seed: int, cfg: DegradationConfig, usm: bool = False,
                 device: torch.device | str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """One photo file -> (cropped HR, LR), (h, w, 3) float32 in [0, 1]: what ``tools/degrade.py`` writes for it.

    ``relative`` is the file's path below the folder given to the tool (its random stream's key), so
    ``i2i-eval --degrade`` (:func:`i2i.apps.super_resolution.evaluate`) makes the same pairs in memory."""
    image = read_image(path, "RGB", dtype="float32")
    return degrade_image(image, file_seed(seed, relative.as_posix()), cfg, usm, device)


def degrade_folder(src: str | Path, dst: str | Path, seed: int = 0, cfg: DegradationConfig | None = None,
                   hr_dir: str | Path | None = None, usm: bool = False, recursive: bool = False,
                   device: torch.device | str = "cpu") -> tuple[list[Path], list[str]]:
    """Degrade every image of ``src`` into ``dst`` (PNG, same relative path). Returns (written, errors)."""
    cfg = cfg or DegradationConfig()
    src, dst = Path(src), Path(dst)
    files = list_images(src, recursive=recursive)
    for out in (dst, Path(hr_dir) if hr_dir else None):
        if out is not None and out.resolve() == src.resolve():
            raise ConfigError(f"{out} is the input folder; choose another output folder (inputs are never overwritten)")
    written: list[Path] = []
    errors: list[str] = []
    for path in files:
        rel = path.relative_to(src)
        try:
            hr, lr = degrade_file(path, rel, seed, cfg, usm, device)
            out = save_image((dst / rel).with_suffix(".png"), lr)
            if hr_dir is not None:
                save_image((Path(hr_dir) / rel).with_suffix(".png"), hr)
            written.append(out)
        except I2IError as e:
            errors.append(f"{path}: {e}")
    return written, errors


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="degrade.py", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="folder of HR photos")
    p.add_argument("-o", "--output", required=True, help="folder for the degraded LR copies (PNG)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random degradations (default 0)")
    p.add_argument("--scale", type=int, default=None, help="downscaling factor (default: the config's, 4)")
    p.add_argument("--config", default=None, help="YAML file of degradation keys (Real-ESRGAN's names); default: the paper's")
    p.add_argument("--hr", default=None, help="also write the cropped HR images here (aligned pairs)")
    p.add_argument("--usm", action="store_true", help="USM-sharpen the HR before degrading (as Real-ESRGAN's training)")
    p.add_argument("--recursive", action="store_true", help="include sub-folders")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    cfg = load_config(args.config, args.scale)
    written, errors = degrade_folder(args.input, args.output, args.seed, cfg, args.hr, args.usm, args.recursive,
                                     torch.device(args.device))
    for line in errors:
        print(f"error: {line}", file=sys.stderr)
    print(f"wrote {len(written)} degraded image(s) to {args.output} (×{cfg.scale}, seed {args.seed})")
    return 1 if errors else 0
