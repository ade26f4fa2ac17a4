"""Side-by-side comparisons of several models on a run's held-out images (the figures of
README.md and docs/): one row per image, one column per model, between the input and
the ground truth. Also importable as ``comparison_grid`` from :mod:`i2i.apps.pix2pix` and
:mod:`i2i.apps.segmentation`.
"""
from __future__ import annotations

import numpy as np

from ..data.paired import to_channels
from ..errors import ConfigError
from ..inference import LoadedModel
from ..pipelines.pix2pix import generator_mode, translate
from ..pipelines.segmentation import class_table, colourise, predict
from .common import dataset_from_config

__all__ = ["tile_panels", "pix2pix_grid", "segmentation_grid"]


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


def pix2pix_grid(models: list[LoadedModel], split: str | None = None, root: str | None = None,
                 zoom: int = 3, gap: int = 2) -> np.ndarray:
    """Side-by-side outputs of several models on the held-out photos of the first one's run.

    One row per photo of ``split`` (default ``data.val_split``) of the first model's
    ``photo_sketch`` dataset (``root`` replaces ``data.root``), whole frames at evaluation
    resolution (short side ``crop_size``, not cropped): sketch | model 1 | model 2 | ... |
    photo. Models run in eval mode. Each cell is enlarged ``zoom``× (nearest neighbour) and
    separated by ``gap`` white pixels.

    Returns:
        (H, W, 3) uint8 grid, ready for :func:`i2i.data.io.save_image`.
    """
    if not models:
        raise ValueError("pix2pix_grid needs at least one model")
    data = models[0].config.get("data") or {}
    if data.get("type") != "photo_sketch":
        raise ConfigError(f"needs a photo_sketch run, got data.type {data.get('type')!r}", "data.type")
    ds = dataset_from_config(models[0].config, split or data.get("val_split", "val"), root)
    rows = []
    for k in range(len(ds.loaders)):
        photo, sketch = ds.photo_and_sketch(k)
        cells = [to_channels(sketch, 3)]
        for m in models:
            with generator_mode(m.generator):
                cells.append(translate(m, sketch))
        cells.append(photo)
        rows.append(cells)
    return tile_panels(rows, zoom, gap)


def segmentation_grid(models: list[LoadedModel], indices: list[int], split: str | None = None,
                      root: str | None = None, scale: int = 3, gap: int = 4) -> np.ndarray:
    """One row per validation image: input | each model's mask | ground truth.

    The images come from the first model's dataset (``dataset_from_config``, no
    augmentation); colours from its class table (ignored pixels in VOC's void colour).
    Every panel is enlarged ``scale``× (nearest neighbour, so label edges stay exact).

    Returns:
        (rows·(h·scale + gap) - gap, cols·(w·scale + gap) - gap, 3) uint8 RGB, white gaps.
    """
    if not models:
        raise ConfigError("give at least one model", "models")
    cfg = models[0].config
    ds = dataset_from_config(cfg, split or cfg.get("data", {}).get("val_split", "val"), root, augment=False)
    _, palette, ignore = class_table(models[0])
    rows = []
    for i in indices:
        item = ds[i]
        image = (item["image"].permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)
        mask = item["mask"].numpy()
        panels = [image] + [colourise(predict(m.generator.eval(), image), palette) for m in models]
        panels.append(colourise(np.where(mask == ignore, -1, mask), palette))
        rows.append(panels)
    return tile_panels(rows, scale, gap)
