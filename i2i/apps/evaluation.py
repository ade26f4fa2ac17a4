"""The evaluation side of the front-ends (``i2i-eval``): the run's datasets, loaders, the
accelerator, and the training recipe whose metrics evaluation uses. Running a model needs none
of this (the pipelines read the model card)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from ..errors import ConfigError


def dataset_from_config(config: dict[str, Any], split: str, root: str | None = None, **overrides: Any) -> Dataset:
    """Rebuild the run's dataset (its ``data:`` section) for ``split``; ``root`` replaces ``data.root``."""
    from ..engine.build import build_dataset

    return build_dataset(config.get("data") or {}, split, root=root, root_key="--data", **overrides)


def eval_recipe(model: Any) -> Any:
    """The training recipe of a loaded model (losses built with their YAML weights, ``setup`` run on
    its networks), for ``i2i-eval``: the recipe owns the evaluation metrics. Running a model
    never needs it (the pipelines read the model card)."""
    from ..engine.build import build_recipe

    # the content loss may need VGG weights; no evaluation needs it
    recipe = build_recipe(model.recipe, model.config.get("losses", {}), skip_losses=("content",))
    recipe.setup(dict(model.nets))
    return recipe


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


def item_names(ds: Any) -> list[str]:
    """A short name per item, in dataset order (photo name, A|B file, or B file)."""
    if hasattr(ds, "names"):
        names = [Path(n).name for n in ds.names]
    elif hasattr(ds, "files"):
        names = [Path(f).name for f in ds.files]
    elif hasattr(ds, "pairs"):
        names = [Path(b).name for _, b in ds.pairs]
    else:
        return [str(i) for i in range(len(ds))]
    reps = len(ds) // max(1, len(names))
    return [n if reps == 1 else f"{n}#{r}" for r in range(reps) for n in names]
