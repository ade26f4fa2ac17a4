"""i2i.apps.compare: side-by-side figures of several models — the panel layout by hand, and
each grid's rows assembled from the dataset and the pipelines' own outputs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import ROOT
from i2i.apps.common import dataset_from_config
from i2i.apps.compare import pix2pix_grid, segmentation_grid, tile_panels
from i2i.config import load_config
from i2i.data.paired import to_channels
from i2i.engine.build import build_run
from i2i.errors import ConfigError
from i2i.inference import LoadedModel
from i2i.pipelines.pix2pix import generator_mode, translate
from i2i.pipelines.segmentation import colourise, predict


def test_tile_panels_by_hand() -> None:
    red, green, blue = (np.full(s + (3,), c, np.uint8) for s, c in (((2, 3), (255, 0, 0)), ((1, 1), (0, 255, 0)),
                                                                     ((2, 2), (0, 0, 255))))
    grid = tile_panels([[red, green], [blue]], zoom=2, gap=1)
    # cells: the largest panel ×2 = 4×6; 2 rows, 2 columns, 1-pixel white gaps: (2·5 − 1) × (2·7 − 1)
    assert grid.shape == (9, 13, 3) and grid.dtype == np.uint8
    want = np.full((9, 13, 3), 255, np.uint8)
    want[0:4, 0:6] = (255, 0, 0)
    want[0:2, 7:9] = (0, 255, 0)  # top-left of its cell
    want[5:9, 0:4] = (0, 0, 255)
    assert np.array_equal(grid, want)


def model_of(task_yaml: str, overrides: list[str], seed: int) -> LoadedModel:
    """An untrained model as an export would describe it (meta from the recipe, config as saved)."""
    cfg = load_config(ROOT / "tasks" / task_yaml, overrides)
    torch.manual_seed(seed)
    built = build_run(cfg, datasets=False)
    G = built.models["generator"].eval()
    return LoadedModel(nets={"generator": G}, task=built.recipe.task, recipe=cfg.recipe, meta=built.recipe.export_meta(),
                       config=cfg.to_dict(), path=Path("."))


SEG = ["models.generator.width=4", "models.generator.depth=2", "data.size=24", "data.num_images=5"]
P2P = ["models.generator={type: unet, in_channels: 1, num_downs: 4, base_channels: 8}",
       "models.discriminator.base_channels=8", "models.discriminator.n_layers=1", "data.load_size=40", "data.crop_size=32"]


def test_segmentation_grid_rows_are_input_each_models_mask_and_the_truth() -> None:
    models = [model_of("segmentation_baseline.yaml", SEG, seed) for seed in (0, 1)]
    grid = segmentation_grid(models, [0, 3], scale=2, gap=4)
    assert grid.shape == (2 * (48 + 4) - 4, 4 * (48 + 4) - 4, 3)  # 2 rows; input, 2 models, truth
    ds = dataset_from_config(models[0].config, "val", augment=False)
    palette = np.asarray(models[0].meta["palette"], np.uint8)
    ignore = models[0].meta["ignore_index"]
    for row, i in enumerate((0, 3)):
        image = (ds[i]["image"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        mask = ds[i]["mask"].numpy()
        panels = [image, *(colourise(predict(m.generator, image), palette) for m in models),
                  colourise(np.where(mask == ignore, -1, mask), palette)]
        for col, p in enumerate(panels):
            y, x = row * 52, col * 52
            assert np.array_equal(grid[y:y + 48, x:x + 48], p.repeat(2, 0).repeat(2, 1)), (row, col)
    assert (grid[48:52] == 255).all() and (grid[:, 48:52] == 255).all()  # white gaps
    assert not np.array_equal(grid[0:48, 52:100], grid[0:48, 104:152])  # two different models, two masks
    with pytest.raises(ConfigError, match=r"^models: give at least one model$"):
        segmentation_grid([], [0])


def test_pix2pix_grid_rows_are_sketch_each_model_and_the_photo() -> None:
    models = [model_of("pix2pix_sketch2photo.yaml", P2P, seed) for seed in (0, 1)]
    models[0].generator.train()  # the grid runs every model in eval mode, and leaves the mode as it was
    grid = pix2pix_grid(models, zoom=1, gap=2)
    assert models[0].generator.training
    ds = dataset_from_config(models[0].config, "val")
    rows = []
    for k in range(len(ds.loaders)):
        photo, sketch = ds.photo_and_sketch(k)
        cells = [to_channels(sketch, 3)]
        for m in models:
            with generator_mode(m.generator):
                cells.append(translate(m, sketch))
        rows.append([*cells, photo])
    assert len(rows) == 2  # the embedded photos' validation split
    assert np.array_equal(grid, tile_panels(rows, 1, 2))
    with pytest.raises(ConfigError, match=r"^data.type: needs a photo_sketch run, got data.type 'seg_mosaic'$"):
        pix2pix_grid([model_of("segmentation_baseline.yaml", SEG, 0)])
    with pytest.raises(ValueError, match="at least one model"):
        pix2pix_grid([])
