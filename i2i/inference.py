"""Loading trained models from their own description: no architecture flags to repeat.

``load_model(path)`` accepts a run directory (uses ``<run>/export``), an export directory
(``config.json`` + ``<slot>.safetensors``), or a checkpoint directory
(``checkpoints/step_…``: ``config.yaml`` + ``models.safetensors``). The networks are rebuilt
from the saved ``{type, **kwargs}`` specs through the registries and loaded strictly.
``path=None`` with ``task="sr"`` gives the default shipped ×4 SRResNet; :data:`SHIPPED_MODELS`
lists every model in ``i2i/weights`` by name (:func:`shipped_model`, the tools' ``--model``).
The model lands on CUDA when present (:func:`i2i.perf.resolve_device`), ``device="cpu"`` to keep it off.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import CheckpointError
from .runs import SavedModel, build_network, read_saved

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
SHIPPED_MODELS = {
    "srresnet_x4": WEIGHTS_DIR / "srresnet_x4",              # the paper's size: 64 channels, 16 blocks
    "srresnet_x4_small": WEIGHTS_DIR / "srresnet_x4_small",  # 32 channels, 8 blocks: ~6x less compute
}
DEFAULT_SHIPPED = {"sr": "srresnet_x4"}
SHIPPED = {task: SHIPPED_MODELS[name] for task, name in DEFAULT_SHIPPED.items()}
TASK_ALIASES = {"gan": "digits", "dcgan": "digits", "cgan": "digits", "acgan": "digits", "digits": "digits",
                "sr": "sr", "srgan": "sr", "srresnet": "sr", "sketch2photo": "sketch2photo", "pix2pix": "sketch2photo",
                "seg": "seg", "segmentation": "seg", "cyclegan": "cyclegan"}


def shipped_model(name: str) -> Path:
    """The folder of the shipped model ``name`` (a key of :data:`SHIPPED_MODELS`)."""
    if name not in SHIPPED_MODELS:
        raise CheckpointError(f"--model: no shipped model {name!r}; expected one of {', '.join(SHIPPED_MODELS)}")
    return SHIPPED_MODELS[name]


@dataclass
class LoadedModel:
    """The networks of an export (the recipe's ``inference_slots``, plus the discriminators when
    asked), rebuilt and in eval mode; ``generator``/``discriminator`` name the usual two."""

    nets: dict[str, nn.Module]
    task: str
    recipe: dict[str, Any]
    meta: dict[str, Any]
    config: dict[str, Any]
    path: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def generator(self) -> nn.Module:
        return self.nets["generator"]

    @generator.setter
    def generator(self, net: nn.Module) -> None:
        self.nets["generator"] = net

    @property
    def discriminator(self) -> nn.Module | None:
        return self.nets.get("discriminator")

    def to(self, device: str | torch.device) -> LoadedModel:
        for net in self.nets.values():
            net.to(device)
        return self

    def fast(self, fold_bn: bool = True, probe: tuple[Any, ...] | None = None) -> LoadedModel:
        """Switch the generator to :func:`i2i.perf.fast_inference` (``--fast`` of the tools).

        ``probe``: the arguments of one typical generator call, on its device; on CUDA it
        decides fp16 (activations far inside its range) or bf16 (:func:`i2i.perf.inference_dtype`).
        A recipe without a ``generator`` slot (CycleGAN's ``generator_ab`` and ``generator_ba``)
        has each of its inference networks switched, without a probe (bf16 on CUDA).
        """
        from .perf import fast_inference
        from .registry import RECIPES

        if "generator" in self.nets:
            slots = ["generator"]
        else:
            slots = [s for s in RECIPES.get(self.recipe["type"], "recipe.type").inference_slots if s in self.nets]
        for slot in slots:
            net = self.nets[slot]
            self.nets[slot] = fast_inference(net, next(net.parameters()).device, fold_bn=fold_bn,
                                             probe=probe if slot == "generator" else None)
        return self

    def build_recipe(self) -> Any:
        """The recipe object (losses built with their YAML weights) for task-specific helpers."""
        from .engine.build import build_recipe

        # the content loss may need VGG weights; no helper needs it
        recipe = build_recipe(self.recipe, self.config.get("losses", {}), skip_losses=("content",))
        recipe.setup(dict(self.nets))
        return recipe


def load_model(path: str | Path | None = None, task: str | None = None, device: str | torch.device | None = None,
               with_discriminator: bool = False) -> LoadedModel:
    """Rebuild and load the exported networks (see module docstring); ``device=None``: CUDA when present."""
    from . import data, losses, nn, recipes  # noqa: F401  (fill the registries)
    from .perf import resolve_device

    want = TASK_ALIASES.get(task, task) if task else None
    if task and want not in TASK_ALIASES.values():
        raise CheckpointError(f"unknown task {task!r}; expected one of {', '.join(sorted(TASK_ALIASES))}")
    if path is None:
        if want not in SHIPPED:
            raise CheckpointError(f"--checkpoint is required for task {task!r} (only {', '.join(SHIPPED)} ships a model)")
        path = SHIPPED[want]
    saved: SavedModel = read_saved(path)
    if want and saved.task != want:
        raise CheckpointError(f"{saved.path}: this model is for task {saved.task!r}, not {task!r}")
    device = resolve_device(device)
    from .registry import DISCRIMINATORS, RECIPES

    declared = RECIPES.get(saved.recipe["type"], "recipe.type")
    slots = [s for s in declared.inference_slots if s in saved.specs]
    if with_discriminator:
        slots += [s for s, reg in declared.model_slots.items() if reg is DISCRIMINATORS and s in saved.specs]
    nets = {s: build_network(saved, s, device) for s in slots}
    return LoadedModel(nets=nets, task=saved.task, recipe=saved.recipe, meta=saved.meta, config=saved.config, path=saved.path)
