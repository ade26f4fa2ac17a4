"""The digits tab: pick a class (or every class) and a count, get a grid of generated digits."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ConfigError
from .shared import TABS, DemoModel, _in_page, _model_choice, _pick

MAX_DIGITS = 64

def digit_grid(pipe: Any, label: int | None, count: int, seed: int = 0, min_width: int = 448) -> np.ndarray:
    """A grid of ``count`` generated digits of class ``label`` (None: ``count`` of every class,
    one row per class; unconditional models take None only), as (H, W, 3) uint8.

    Small grids are enlarged by an integer factor (nearest neighbour: the pixels stay
    sharp) to at least ``min_width`` pixels, so the page does not blur them.
    """
    from ...pipelines.digits import image_grid

    if not 1 <= count <= MAX_DIGITS:
        raise ConfigError(f"expected 1..{MAX_DIGITS} images, got {count}", "count")
    imgs = pipe(label, num=count, seed=seed) if pipe.conditional else pipe(None, num=count, seed=seed)
    groups = pipe.num_classes if pipe.conditional and label is None else 1
    nrow = count if groups > 1 and count <= 16 else max(1, math.ceil(math.sqrt(len(imgs))))
    grid = image_grid(imgs, nrow)
    zoom = max(1, math.ceil(min_width / grid.shape[1]))
    return np.repeat(np.repeat(grid, zoom, axis=0), zoom, axis=1) if zoom > 1 else grid


EVERY_CLASS = "every class"


def build(gr: Any, models: list[DemoModel], max_pixels: int | None, out_dir: Path) -> None:
    first = models[0].pipeline
    classes = [EVERY_CLASS] + [str(c) for c in range(first.num_classes)]
    with gr.Tab(TABS["digits"], id="digits"):
        gr.Markdown("Pick a class and how many: the generator draws them from seeded noise "
                    "(the same seed gives the same digits).")
        choice = _model_choice(gr, models)
        with gr.Row():
            with gr.Column():
                label = gr.Dropdown(classes, value="7" if first.num_classes > 7 else EVERY_CLASS, label="Class",
                                    visible=first.conditional)
                count = gr.Slider(1, MAX_DIGITS, value=16, step=1, label="How many (per class)")
                seed = gr.Number(0, label="Seed", precision=0)
                go = gr.Button("Generate", variant="primary")
            grid = gr.Image(label="Generated digits", format="png", interactive=False, elem_id="digits-output")

        @_in_page
        def run(cls: str | None, n: float, s: float | None, name: str | None) -> np.ndarray:
            pipe = _pick(models, name).pipeline
            c = None if (cls in (None, EVERY_CLASS) or not pipe.conditional) else int(cls)
            return digit_grid(pipe, c, int(n), int(s or 0))

        go.click(run, [label, count, seed, choice], grid, concurrency_limit=1, concurrency_id="models")
