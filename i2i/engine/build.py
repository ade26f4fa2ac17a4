"""One build: recipe, networks, losses, datasets and starting weights from a config.

The trainer, ``tools/bench.py``, evaluation, inference and the apps all build through
these functions, so a question such as "does this dataset take ``on_error``?" has one
answer. Nothing here re-lists config fields: a dataset gets ``data:``'s extra keys
(:attr:`i2i.config.DataConfig.kwargs`) as they are.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor, nn
from torch.utils.data import Dataset

import i2i.data
import i2i.losses
import i2i.nn
import i2i.recipes  # noqa: F401  (importing data, losses, nn and recipes fills the registries)

from .. import runs
from ..config import Config, DataConfig, data_config, missing_path, resolve_path
from ..errors import ConfigError
from ..junyanz import is_junyanz, junyanz_generator
from ..nn.rrdbnet import basicsr_keys
from ..recipes.base import Recipe
from ..registry import DATASETS, LOSSES, RECIPES, build_network_bounded
from ..weight_files import is_weights_file, read_state_dict


def build_losses(specs: dict[str, dict[str, Any]], skip: tuple[str, ...] = ()) -> dict[str, nn.Module]:
    """``losses:`` built slot by slot (``skip``: slots a caller does not need, e.g. inference
    has no use for a content loss that would have to load VGG weights)."""
    return {slot: LOSSES.build(spec, f"losses.{slot}") for slot, spec in specs.items() if slot not in skip}


def build_recipe(recipe: dict[str, Any], losses: dict[str, dict[str, Any]], skip_losses: tuple[str, ...] = ()) -> Recipe:
    return RECIPES.build(recipe, "recipe", losses=build_losses(losses, skip_losses))


def build_models(recipe: dict[str, Any], models: dict[str, dict[str, Any]]) -> dict[str, nn.Module]:
    """Every slot the recipe declares and ``models:`` fills, in the recipe's declared order."""
    slots = RECIPES.get(recipe["type"], "recipe.type").model_slots
    return {slot: build_network_bounded(reg, models[slot], f"models.{slot}") for slot, reg in slots.items() if slot in models}


def load_init(models: dict[str, nn.Module], init: dict[str, str]) -> None:
    """``train.init``: a slot's starting weights from a run, export or checkpoint, or from one
    weights file made by another project (:func:`init_weights_from_file`)."""
    for slot, path in init.items():
        where = f"train.init.{slot}: {path}"
        p = resolve_path(path)
        sd = init_weights_from_file(p, where) if is_weights_file(p) else runs.load_slot_weights(path, slot)
        runs.load_fitting(models[slot], sd, where)


def init_weights_from_file(path: Path, where: str) -> dict[str, Tensor]:
    """A foreign weights file as a state dict of i2i's own networks (issue 24, part B):
    Real-ESRGAN / BasicSR files (``params_ema``, ``params``, …) hold i2i's ``rrdbnet`` and
    ``srvgg_compact`` keys as they are, the original ESRGAN repository's files (``RRDB_ESRGAN_x4.pth``)
    are renamed to them (:func:`i2i.nn.rrdbnet.basicsr_keys`); a junyanz pix2pix/CycleGAN generator is mapped onto i2i's
    U-Net / ResNet generator (:mod:`i2i.junyanz`). Read safely (:func:`i2i.weight_files.read_state_dict`);
    a mismatch with the configured network is then one line of missing and unexpected keys."""
    sd = read_state_dict(path)
    if is_junyanz(sd):
        net, _ = junyanz_generator(sd, where)
        return net.state_dict()
    return basicsr_keys(sd)  # ESRGAN's own two layouts (RRDB_ESRGAN_x4.pth: model.0, model.1.sub.…) -> rrdbnet's


def build_dataset(data: DataConfig | dict[str, Any], split: str, root: str | None = None, root_key: str = "data.root",
                  **overrides: Any) -> Dataset:
    """``data:``'s dataset for ``split``; ``root`` replaces ``data.root`` (``root_key`` names it in
    errors, e.g. ``--data``), ``overrides`` replace its keywords.

    ``data.on_error: skip`` is passed to datasets that decode eagerly (they take ``on_error``);
    the others read lazily and are wrapped in :class:`~i2i.data.base.SkipUnreadable`, which
    skips per item. Training, evaluation and the apps all get the same behaviour.
    """
    from ..data.base import SkipUnreadable

    if isinstance(data, dict):
        data = data_config(data)
    cls = DATASETS.get(data.type, "data.type")
    kwargs = {**data.kwargs, **overrides}
    takes_on_error = "on_error" in inspect.signature(cls.__init__).parameters
    if takes_on_error:
        kwargs.setdefault("on_error", data.on_error)
    root = root if root is not None else data.root
    if root is not None:
        if not resolve_path(str(root)).exists():
            raise ConfigError(missing_path(root), root_key)
        root = str(resolve_path(str(root)))
    ds = cls(root=root, split=split, **kwargs)
    return SkipUnreadable(ds) if data.on_error == "skip" and not takes_on_error else ds


@dataclass
class Built:
    """A run's parts before any device placement or wrapping."""

    recipe: Recipe
    models: dict[str, nn.Module]
    train_set: Dataset | None = None
    val_set: Dataset | None = None


def build_run(cfg: Config, datasets: bool = True, init: bool = True) -> Built:
    """Recipe + networks (+ ``train.init`` weights) + train/val datasets, and the recipe's
    ``setup`` on the bare networks. The caller seeds first: same seed, same initial weights."""
    recipe = build_recipe(cfg.recipe, cfg.losses)
    models = build_models(cfg.recipe, cfg.models)
    if init:
        load_init(models, cfg.train.init)
    train_set = val_set = None
    if datasets:
        train_set = build_dataset(cfg.data, "train")
        val_set = build_dataset(cfg.data, cfg.data.val_split)
    recipe.setup(models, train_set)
    return Built(recipe, models, train_set, val_set)
