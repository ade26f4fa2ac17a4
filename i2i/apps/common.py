"""Helpers shared by the task front-ends."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..data.io import IMAGE_EXTENSIONS, list_images
from ..errors import ConfigError, I2IError


def dataset_from_config(config: dict[str, Any], split: str, root: str | None = None, **overrides: Any) -> Dataset:
    """Rebuild the run's dataset (its ``data:`` section) for ``split``; ``root`` replaces ``data.root``."""
    from ..engine.build import build_dataset

    return build_dataset(config.get("data") or {}, split, root=root, root_key="--data", **overrides)


def eval_loader(accelerator: Any, dataset: Dataset, batch_size: int, num_workers: int = 0) -> Any:
    """A loader sharded across processes; ``gather_for_metrics`` drops its padding duplicates."""
    loader = DataLoader(dataset, batch_size=batch_size * accelerator.num_processes, shuffle=False, num_workers=num_workers)
    return accelerator.prepare_data_loader(loader)


def make_accelerator(device: torch.device | None = None) -> Any:
    """An Accelerator on ``device`` (``args.device`` of the tools), so that model and batches agree.

    Accelerate itself takes CUDA whenever it is present; ``--device cpu`` must say ``cpu=True``.
    A single process on ``cuda:N`` makes N the current device: Accelerate's ``cuda`` means it.
    """
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration

    from ..distributed import use_cpu

    cpu = use_cpu() or (device is not None and device.type == "cpu" and torch.cuda.is_available())
    if device is not None and device.type == "cuda":
        if use_cpu():
            raise ConfigError(f"{device} conflicts with accelerate launch --cpu", "--device")
        if device.index is not None and "LOCAL_RANK" not in os.environ:
            torch.cuda.set_device(device)
    return Accelerator(cpu=cpu, dataloader_config=DataLoaderConfiguration(split_batches=True))


def collect_inputs(inputs: list[str]) -> tuple[list[Path], list[str]]:
    """Files to process (folders expanded) and one-line errors for inputs that are neither."""
    files: list[Path] = []
    errors: list[str] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            try:
                files.extend(list_images(p))
            except I2IError as e:
                errors.append(str(e))
        elif p.exists():
            files.append(p)  # even without an image suffix: read_image says what is wrong
        else:
            errors.append(f"{p}: file not found")
    return files, errors


def is_single_file(inputs: list[str], files: list[Path]) -> bool:
    """One input that is a file (not a folder): then ``-o`` may name the output file."""
    return len(inputs) == 1 and len(files) == 1 and not Path(inputs[0]).expanduser().is_dir()


def output_paths(files: list[Path], output: str | None, single_file: bool, default_folder: str,
                 png_only: bool = False, suffix: str = "", ext: str | None = ".png") -> list[Path]:
    """Output path per input: ``-o`` is a file for one input with an image suffix, else a folder.

    In a folder, outputs are ``<stem><suffix><ext>`` (``ext=None``: the input's own image
    suffix, else ``.png``); two inputs with the same stem (``a.png`` from two folders) get
    ``a…`` and ``a_1…``. ``png_only`` rejects a non-PNG file name.
    """
    if output is not None and Path(output).suffix.lower() in IMAGE_EXTENSIONS and not Path(output).is_dir():
        if png_only and Path(output).suffix.lower() != ".png":
            raise ConfigError("masks are written as palette PNGs: use a .png name", "-o")
        if not single_file:
            raise ConfigError("several inputs need an output folder, not a file name", "-o")
        return refuse_overwriting_inputs(files, [Path(output)])
    folder = Path(output).expanduser() if output else Path(default_folder)
    used: dict[str, int] = {}
    out = []
    for f in files:
        n = used.get(f.stem, 0)
        used[f.stem] = n + 1
        e = ext or (f.suffix.lower() if f.suffix.lower() in IMAGE_EXTENSIONS else ".png")
        out.append(folder / (f"{f.stem}{suffix}{e}" if n == 0 else f"{f.stem}_{n}{suffix}{e}"))
    return refuse_overwriting_inputs(files, out)


def _identity(p: Path) -> tuple:
    """What makes two paths one file: device + inode when it exists (hard links, symlinks),
    else the resolved path."""
    try:
        st = p.stat()
        return (st.st_dev, st.st_ino)
    except OSError:
        return (str(p.expanduser().resolve()),)


def refuse_overwriting_inputs(inputs: list[Path], outputs: list[Path]) -> list[Path]:
    """``outputs`` unchanged, or a one-line error if one of them is an input file: a run
    never writes over what it reads (``-o`` naming the input, or the input's own folder)."""
    sources = {_identity(src): src for src in inputs}
    for dst in outputs:
        src = sources.get(_identity(dst))
        if src is not None:
            raise ConfigError(f"{dst} would overwrite the input {src}; choose another output file or folder", "-o")
    return outputs


def tile_panels(rows: list[list[np.ndarray]], zoom: int = 1, gap: int = 2) -> np.ndarray:
    """Lay out rows of (h, w, 3) uint8 panels, each enlarged ``zoom``× (nearest), on white."""
    h = max(c.shape[0] for r in rows for c in r) * zoom
    w = max(c.shape[1] for r in rows for c in r) * zoom
    grid = np.full((len(rows) * (h + gap) - gap, max(len(r) for r in rows) * (w + gap) - gap, 3), 255, np.uint8)
    for i, r in enumerate(rows):
        for j, c in enumerate(r):
            c = c.repeat(zoom, 0).repeat(zoom, 1)
            y, x = i * (h + gap), j * (w + gap)
            grid[y:y + c.shape[0], x:x + c.shape[1]] = c
    return grid
