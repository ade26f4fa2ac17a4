"""Loading trained models from their own description: no architecture flags to repeat.

``load_model(path)`` accepts a run directory (uses ``<run>/export``), an export directory
(``config.json`` + ``<slot>.safetensors``), or a checkpoint directory
(``checkpoints/step_…``: ``config.yaml`` + ``models.safetensors``). The networks are rebuilt
from the saved ``{type, **kwargs}`` specs through the registries and loaded strictly.
``path=None`` with ``task="sr"`` gives the shipped ×4 SRResNet (``i2i/weights/srresnet_x4``).
The model lands on CUDA when present (:func:`i2i.perf.resolve_device`), ``device="cpu"`` to keep it off.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from .engine.checkpoint import all_finite, load_fitting, load_tensors, resolve_export_dir, sub_state
from .errors import CheckpointError

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
SHIPPED = {"sr": WEIGHTS_DIR / "srresnet_x4"}
TASK_ALIASES = {"gan": "digits", "dcgan": "digits", "cgan": "digits", "acgan": "digits", "digits": "digits",
                "sr": "sr", "srgan": "sr", "srresnet": "sr", "sketch2photo": "sketch2photo", "pix2pix": "sketch2photo",
                "seg": "seg", "segmentation": "seg"}


@dataclass
class LoadedModel:
    """A generator (and optionally its discriminator) rebuilt from an export, in eval mode."""

    generator: nn.Module
    task: str
    recipe: dict[str, Any]
    meta: dict[str, Any]
    config: dict[str, Any]
    path: Path
    discriminator: nn.Module | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to(self, device: str | torch.device) -> LoadedModel:
        self.generator.to(device)
        if self.discriminator is not None:
            self.discriminator.to(device)
        return self

    def fast(self, fold_bn: bool = True, probe: tuple[Any, ...] | None = None) -> LoadedModel:
        """Switch the generator to :func:`i2i.perf.fast_inference` (``--fast`` of the tools).

        ``probe``: the arguments of one typical generator call, on its device; on CUDA it
        decides fp16 (activations far inside its range) or bf16 (:func:`i2i.perf.inference_dtype`).
        """
        from .perf import fast_inference

        device = next(self.generator.parameters()).device
        self.generator = fast_inference(self.generator, device, fold_bn=fold_bn, probe=probe)
        return self

    def build_recipe(self) -> Any:
        """The recipe object (losses built with their YAML weights) for task-specific helpers."""
        from .registry import LOSSES, RECIPES

        losses = {k: LOSSES.build(v, f"losses.{k}") for k, v in self.config.get("losses", {}).items()
                  if k not in ("content",)}  # the content loss may need VGG weights; no helper needs it
        recipe = RECIPES.build(self.recipe, "recipe", losses=losses)
        models = {"generator": self.generator}
        if self.discriminator is not None:
            models["discriminator"] = self.discriminator
        recipe.setup(models)
        return recipe


MAX_PARAMETERS = 2_000_000_000
"""8 GB of fp32 weights: 37× pix2pix's unet_256 (54 M parameters), the largest i2i network."""


def _bound_parameters(registry: Any, spec: dict[str, Any], key: str, where: Path) -> None:
    """Count a network's parameters on the meta device (shapes only, no memory) before building
    it for real: a config saying ``width: 1000000000`` is refused instead of allocating 100 GB."""
    try:
        with torch.device("meta"):
            n = sum(q.numel() for q in registry.build(spec, key).parameters())
    except (RuntimeError, OverflowError, MemoryError) as e:  # shapes beyond int64 or the allocator's reach
        raise CheckpointError(f"{where}: {key} cannot be built ({type(e).__name__}: {str(e)[:80]})") from None
    if n > MAX_PARAMETERS:
        raise CheckpointError(f"{where}: {key} would have {n:,} parameters (more than {MAX_PARAMETERS:,}): "
                              "the config is damaged")


def _read_export_info(path: Path) -> dict[str, Any]:
    """An export's ``config.json``, checked for the keys the loader needs; one line naming it."""
    try:
        info = json.loads(path.read_text(errors="replace"))
    except (json.JSONDecodeError, RecursionError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({type(e).__name__}: {str(e)[:120]})") from None
    if not isinstance(info, dict):
        raise CheckpointError(f"{path}: expected a JSON object (an i2i export's config), got {type(info).__name__}")
    missing = [k for k in ("models", "recipe") if k not in info]
    if missing:
        raise CheckpointError(f"{path}: missing {', '.join(missing)} (not an i2i export)")
    if not isinstance(info["models"], dict) or not all(isinstance(v, dict) for v in info["models"].values()):
        raise CheckpointError(f"{path}: 'models' must map each slot to a {{type: …}} spec")
    if not isinstance(info["recipe"], dict):
        raise CheckpointError(f"{path}: 'recipe' must be a {{type: …}} spec")
    return info


def _check_weights(weights: dict[str, torch.Tensor], net: nn.Module, path: Path) -> None:
    """Tampered exports are refused: each tensor's dtype must be the network's own (a float64,
    fp16 or int8 copy would load and run silently), and floating-point values finite."""
    own = net.state_dict()
    wrong = [f"{k} {str(v.dtype).removeprefix('torch.')} (expected {str(own[k].dtype).removeprefix('torch.')})"
             for k, v in weights.items() if k in own and v.dtype != own[k].dtype]
    if wrong:
        raise CheckpointError(f"{path}: wrong tensor dtypes: {'; '.join(wrong[:3])}{' …' if len(wrong) > 3 else ''}")
    if not all_finite(list(weights.values())):
        raise CheckpointError(f"{path}: holds NaN or infinite weights")


def _as_export_dir(path: Path) -> Path:
    """An export folder, a run's ``export/``, or (a save killed mid-swap) its ``export.old/``."""
    if (path / "config.json").is_file():
        return path
    export = resolve_export_dir(path / "export")
    if (export / "config.json").is_file():
        return export
    return resolve_export_dir(path) if path.name == "export" else path


def load_model(path: str | Path | None = None, task: str | None = None, device: str | torch.device | None = None,
               with_discriminator: bool = False) -> LoadedModel:
    """Rebuild and load the exported generator (see module docstring); ``device=None``: CUDA when present."""
    import i2i  # noqa: F401  (register every network)
    from .perf import resolve_device
    from .registry import DISCRIMINATORS, GENERATORS

    want = TASK_ALIASES.get(task, task) if task else None
    if task and want not in TASK_ALIASES.values():
        raise CheckpointError(f"unknown task {task!r}; expected one of {', '.join(sorted(TASK_ALIASES))}")
    if path is None:
        if want not in SHIPPED:
            raise CheckpointError(f"--checkpoint is required for task {task!r} (only {', '.join(SHIPPED)} ships a model)")
        path = SHIPPED[want]
    p = _as_export_dir(Path(path).expanduser())
    if not p.exists():
        raise CheckpointError(f"{path}: no such run, export or checkpoint directory")
    device = resolve_device(device)

    if (p / "config.json").is_file():
        info = _read_export_info(p / "config.json")
        specs, config = info["models"], info.get("config", {})
        weights = {slot: load_tensors(p / f"{slot}.safetensors") for slot in specs if (p / f"{slot}.safetensors").is_file()}
        recipe, meta, got_task = info["recipe"], info.get("meta", {}), info.get("task", "")
    elif (p / "models.safetensors").is_file() and (p / "config.yaml").is_file():
        config = yaml.safe_load((p / "config.yaml").read_text())
        specs, recipe = config["models"], config["recipe"]
        tensors = load_tensors(p / "models.safetensors")
        weights = {slot: sub_state(tensors, f"ema.{slot}") or sub_state(tensors, slot) for slot in specs}
        from .registry import RECIPES

        got_task = RECIPES.get(recipe["type"]).task
        meta = {}
    else:
        raise CheckpointError(f"{path}: neither an export (config.json) nor a checkpoint (config.yaml + models.safetensors)")
    if want and got_task != want:
        raise CheckpointError(f"{p}: this model is for task {got_task!r}, not {task!r}")

    def build(slot: str, registry: Any) -> nn.Module:
        _bound_parameters(registry, specs[slot], f"models.{slot}", p)
        net = registry.build(specs[slot], f"models.{slot}")
        if slot not in weights:
            raise CheckpointError(f"{p}: no weights for {slot}")
        _check_weights(weights[slot], net, p / f"{slot}.safetensors")
        load_fitting(net, weights[slot], f"{p}: {slot}")
        return net.eval().to(device)

    G = build("generator", GENERATORS)
    D = build("discriminator", DISCRIMINATORS) if with_discriminator and "discriminator" in specs else None
    if not meta and got_task:
        meta = {}
    return LoadedModel(generator=G, discriminator=D, task=got_task, recipe=recipe, meta=meta, config=config, path=p)


def load_slot_weights(path: str | Path, slot: str) -> dict[str, torch.Tensor]:
    """Weights of one slot from a run/export/checkpoint (for ``train.init``)."""
    from .config import resolve_path

    p = _as_export_dir(resolve_path(str(path)))
    if (p / f"{slot}.safetensors").is_file():
        return load_tensors(p / f"{slot}.safetensors")
    if (p / "models.safetensors").is_file():
        t = load_tensors(p / "models.safetensors")
        sd = sub_state(t, f"ema.{slot}") or sub_state(t, slot)
        if sd:
            return sd
    raise CheckpointError(f"{path}: no {slot} weights (expected {slot}.safetensors in an export or a checkpoint)")
