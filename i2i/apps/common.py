"""Helpers shared by the task front-ends."""
from __future__ import annotations

import inspect
from typing import Any

from torch.utils.data import DataLoader, Dataset

from ..config import resolve_path
from ..errors import ConfigError
from ..registry import DATASETS


def dataset_from_config(config: dict[str, Any], split: str, root: str | None = None, **overrides: Any) -> Dataset:
    """Rebuild the run's dataset (its ``data:`` section) for ``split``; ``root`` replaces ``data.root``."""
    import i2i  # noqa: F401

    data = dict(config.get("data") or {})
    if not data:
        raise ConfigError("the checkpoint's config has no data section; pass --data")
    fixed = {"type", "root", "batch_size", "num_workers", "pin_memory", "prefetch_factor", "val_split", "on_error"}
    kwargs = {k: v for k, v in data.items() if k not in fixed}
    kwargs.update(overrides)
    cls = DATASETS.get(data["type"], "data.type")
    if "on_error" in inspect.signature(cls.__init__).parameters:
        kwargs.setdefault("on_error", data.get("on_error", "raise"))
    root = root if root is not None else data.get("root")
    if root is not None and not resolve_path(str(root)).exists():
        raise ConfigError(f"path does not exist: {root}", "--data")
    return cls(root=str(resolve_path(str(root))) if root is not None else None, split=split, **kwargs)


def eval_loader(accelerator: Any, dataset: Dataset, batch_size: int, num_workers: int = 0) -> Any:
    """A loader sharded across processes; ``gather_for_metrics`` drops its padding duplicates."""
    loader = DataLoader(dataset, batch_size=batch_size * accelerator.num_processes, shuffle=False, num_workers=num_workers)
    return accelerator.prepare_data_loader(loader)


def make_accelerator() -> Any:
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration

    from ..distributed import use_cpu

    return Accelerator(cpu=use_cpu(), dataloader_config=DataLoaderConfiguration(split_batches=True))
