"""The recipe interface: a recipe owns the objective, the engine owns everything else.

The engine (:mod:`i2i.engine.trainer`) calls, for each training step::

    for k in range(train.d_steps):                    # k discriminator steps
        batch = next(data)
        out = recipe.forward(G, batch)                # grad only on the last k (G step reuses it)
        loss_d, logs = recipe.d_loss(D, batch, out)   # recipe must detach fakes itself
        ... backward, clip, step D ...
    loss_g, logs = recipe.g_loss(D_frozen, batch, out)  # D's params frozen, not DDP-synced
    ... backward, clip, step G, EMA ...

``G``/``D`` are passed in, never stored: the engine hands the DDP-wrapped module where
gradients must be synced and the bare module where they must not. Recipes without a
discriminator (``"discriminator" not in model_slots``) get only ``forward`` + ``g_loss``.

Logs are ``{name: float | 0-dim tensor}``; every weighted loss term is logged on its own
(``g/adv``, ``g/content``, ...), and recipes with a discriminator log ``d/real`` and
``d/fake`` (mean D score: probability for sigmoid objectives, raw score otherwise).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import torch
from torch import nn

from ..registry import DISCRIMINATORS, GENERATORS, Registry

Batch = dict[str, torch.Tensor]
Logs = dict[str, Any]


class Recipe(nn.Module):
    """Base class. Subclasses register with ``@RECIPES.register("name")``.

    Class attributes describe the YAML the recipe accepts:

    * ``task``: the family used by ``tools/infer.py``/``tools/eval.py`` (``digits``, ``sr``,
      ``sketch2photo``, ``seg``).
    * ``model_slots``: ``models.<slot>`` -> registry; ``optional_models`` may be absent.
    * ``loss_slots``: allowed ``losses.<slot>`` names; ``required_losses`` must be present.

    Losses are ``nn.Module`` children of the recipe (so ``.to(device)`` moves them) but
    hold no trainable parameters; the engine checkpoints only ``models``.
    """

    task: ClassVar[str] = ""
    model_slots: ClassVar[dict[str, Registry]] = {"generator": GENERATORS, "discriminator": DISCRIMINATORS}
    optional_models: ClassVar[tuple[str, ...]] = ()
    loss_slots: ClassVar[tuple[str, ...]] = ()
    required_losses: ClassVar[tuple[str, ...]] = ()

    def __init__(self, losses: dict[str, nn.Module]):
        super().__init__()
        self.losses = nn.ModuleDict(losses)

    def setup(self, models: dict[str, nn.Module], train_dataset: Any | None = None) -> None:
        """Called once with the bare (unwrapped) models before training or evaluation.

        Recipes read architecture facts here (``z_dim``, ``num_classes``, the U-Net's size
        multiple) because DDP wrappers hide module attributes. ``train_dataset`` is given
        to recipes whose evaluation needs the training split (e.g. the digit classifier).
        """

    def check_adversary(self, D: nn.Module | None) -> None:
        """Checks every recipe's ``setup`` runs on its adversarial loss and discriminator."""
        adv = self.losses["adversarial"] if "adversarial" in self.losses else None
        if D is not None and hasattr(adv, "check_discriminator"):
            adv.check_discriminator(D)

    # --- training -------------------------------------------------------------------
    def forward(self, G: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:  # type: ignore[override]
        """Run the generator on a batch; returns what d_loss/g_loss need (e.g. ``fake``)."""
        raise NotImplementedError

    def d_loss(self, D: nn.Module, batch: Batch, out: dict[str, torch.Tensor]) -> tuple[torch.Tensor, Logs]:
        raise NotImplementedError

    def g_loss(self, D: nn.Module | None, batch: Batch, out: dict[str, torch.Tensor]) -> tuple[torch.Tensor, Logs]:
        raise NotImplementedError

    # --- monitoring -----------------------------------------------------------------
    @torch.no_grad()
    def samples(self, G: nn.Module, batch: Batch) -> torch.Tensor:
        """An image grid's worth of (N, C, H, W) images in [0, 1] for the dashboard."""
        raise NotImplementedError

    @torch.no_grad()
    def evaluate(self, G: nn.Module, batches: Iterable[Batch], accelerator: Any) -> dict[str, float]:
        """Validation metrics; must be correct under multi-process evaluation (gather)."""
        return {}

    # --- export ---------------------------------------------------------------------
    def export_meta(self) -> dict[str, Any]:
        """Extra facts ``tools/infer.py`` needs (value range, num_classes, scale...)."""
        return {}
