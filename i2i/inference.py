"""Loading trained models from their own description: no architecture flags to repeat.

``load_model(path)`` accepts a run directory (uses ``<run>/export``), an export directory
(``config.json`` + ``<slot>.safetensors``), a pretrained folder, or a checkpoint directory
(``checkpoints/step_…``: ``config.yaml`` + ``models.safetensors``), through the reader
registry (:func:`i2i.readers.read_model`): the networks are rebuilt from the saved
``{type, **kwargs}`` specs and loaded strictly, and described by a
:class:`~i2i.card.ModelCard` (``model.card``). ``path=None`` with ``task="sr"`` gives the
default shipped ×4 SRResNet; :data:`SHIPPED_MODELS` lists every model in ``i2i/weights`` by
name (:func:`shipped_model`, the tools' ``--model``). The model lands on CUDA when present
(:func:`i2i.perf.resolve_device`), ``device="cpu"`` to keep it off.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .errors import CheckpointError
from .readers import LoadedModel, read_model
from .task_table import ALIASES

__all__ = ["LoadedModel", "load_model", "resolve_name", "shipped_model", "SHIPPED_MODELS", "DEFAULT_SHIPPED", "SHIPPED", "TASK_ALIASES"]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
SHIPPED_MODELS = {
    "srresnet_x4": WEIGHTS_DIR / "srresnet_x4",              # the paper's size: 64 channels, 16 blocks
    "srresnet_x4_small": WEIGHTS_DIR / "srresnet_x4_small",  # 32 channels, 8 blocks: ~6x less compute
    "realesrnet_x4": WEIGHTS_DIR / "realesrnet_x4",          # real-world SR: SRVGGNetCompact on degraded photos
}
DEFAULT_SHIPPED = {"sr": "srresnet_x4"}
SHIPPED = {task: SHIPPED_MODELS[name] for task, name in DEFAULT_SHIPPED.items()}
TASK_ALIASES = ALIASES
"""Every ``--task`` name -> its task (read from :data:`i2i.task_table.TASKS`)."""


def shipped_model(name: str) -> Path:
    """The folder of the shipped model ``name`` (a key of :data:`SHIPPED_MODELS`)."""
    if name not in SHIPPED_MODELS:
        raise CheckpointError(f"--model: no shipped model {name!r}; expected one of {', '.join(SHIPPED_MODELS)}")
    return SHIPPED_MODELS[name]


def resolve_name(path: str | Path) -> Path:
    """A shipped model's name (``srresnet_x4``) as its folder, unless a local path of that name
    exists; any other path as given. Every door takes the names: ``--checkpoint srresnet_x4``,
    ``i2i.from_pretrained("srresnet_x4")``, ``i2i-export srresnet_x4 …``, the demo."""
    text = str(path)
    if text in SHIPPED_MODELS and not Path(text).exists():
        return SHIPPED_MODELS[text]
    return Path(path).expanduser()


def load_model(path: str | Path | None = None, task: str | None = None, device: str | torch.device | None = None,
               with_discriminator: bool = False) -> LoadedModel:
    """Read the model at ``path`` (see module docstring) on ``device`` (None: CUDA when present);
    ``task`` (a name or alias) must match the model's; ``with_discriminator`` adds the discriminators."""
    from .perf import resolve_device

    want = TASK_ALIASES.get(task, task) if task else None
    if task and want not in TASK_ALIASES.values():
        raise CheckpointError(f"unknown task {task!r}; expected one of {', '.join(sorted(TASK_ALIASES))}")
    if path is None:
        if want not in SHIPPED:
            raise CheckpointError(f"--checkpoint is required for task {task!r} (only {', '.join(SHIPPED)} ships a model)")
        path = SHIPPED[want]
    model = read_model(resolve_name(path), resolve_device(device), with_discriminator)
    if want and model.card.task != want:
        raise CheckpointError(f"{model.path}: this model is for task {model.card.task!r}, not {task!r}")
    return model
