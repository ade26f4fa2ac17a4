"""Inference pipelines: one module per task, arrays in and arrays out.

Each pipeline is built from a loaded model (:class:`i2i.inference.LoadedModel`, or for
SR a bare generator) and called on an image::

    from i2i.inference import load_model
    from i2i.pipelines.super_resolution import SuperResolutionPipeline

    pipe = SuperResolutionPipeline(load_model(None, task="sr"))
    big = pipe(photo)                      # (H, W, 3) uint8 -> (4H, 4W, 3) uint8

* :mod:`.super_resolution` — tiled SR of gray/RGB(A), 8 or 16 bit (``SuperResolutionPipeline``)
* :mod:`.pix2pix` — sketch → photo, or photo → sketch → photo (``Pix2PixPipeline``)
* :mod:`.segmentation` — class ids, colour masks and overlays (``SegmentationPipeline``)
* :mod:`.digits` — class labels + count → digit images (``DigitsPipeline``)
* :mod:`.cyclegan` — unpaired translation, A → B or B → A (``CycleGANPipeline``)

No pipeline reads or writes files or parses arguments: that is :mod:`i2i.apps`, which
runs them over image files (:class:`i2i.apps.common.FileLoop`).
"""
from __future__ import annotations

import importlib
from typing import Any

from ..task_table import TASKS

_PIPELINES = {name: t.pipeline for name, t in TASKS.items()}
"""task -> (module, class), from the task table."""


def pipeline_for(model: Any, **options: Any) -> Any:
    """The pipeline of ``model.card.task`` (a :class:`~i2i.inference.LoadedModel`), built with ``options``."""
    from ..errors import I2IError

    task = model.card.task
    if task not in _PIPELINES:
        raise I2IError(f"no inference pipeline for task {task!r}; available: {', '.join(_PIPELINES)}")
    module, name = _PIPELINES[task]
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)(model, **options)
