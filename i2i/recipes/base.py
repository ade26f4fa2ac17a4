"""The recipe interface: a recipe owns the objective, the engine owns everything else.

A recipe declares its **network slots** (``model_slots``: any number, each a registry) and
its **updates** (:class:`Update`): which slots an update optimises, the loss it minimises,
and how many times it runs per training step. The engine (:mod:`i2i.engine.step`) runs,
for each training step::

    batch = recipe.prepare_batch(next(data)); out = recipe.run_forward(nets, batch)
    for update in recipe.updates(models, train.d_steps):
        for r in range(update.repeat):
            if r > 0:  # every run after an update's first draws a new batch
                batch = recipe.prepare_batch(next(data)); out = recipe.run_forward(nets, batch)
            loss, logs = update.loss(nets_for(update), batch, out)
            ... backward, clip, step the update's optimizers (found_inf skip), schedulers, EMA ...

* ``nets_for(update)`` maps the update's own slots to their wrapped (DDP/compiled) modules
  and every other slot to its *bare* module with parameters frozen: no gradient is computed
  for them and DDP does not wait for them (the GAN step's "D frozen during G's update");
* a forward is made with autograd on only when a loss will backpropagate through it: for
  an update with ``graph=True``, or on the last run of an update followed by one that has it
  (k discriminator steps per generator step: forwards 1..k-1 run without a graph, the k-th
  is reused by the generator's update, so there is no second generator forward);
* recipes detach what an update must not backpropagate into (``fake.detach()`` in D's loss).

:class:`GeneratorRecipe` is the common case, one generator and an optional discriminator,
with the two-network methods ``forward(G, batch)``, ``d_loss(D, …)``, ``g_loss(D, …)``,
``samples(G, …)`` and ``evaluate(G, …)``; :mod:`i2i.recipes.cyclegan` declares four
networks and two updates directly.

Logs are ``{name: float | 0-dim tensor}``; every weighted loss term is logged on its own
(``g/adv``, ``g/content``, ...), and recipes with a discriminator log ``d/real`` and
``d/fake`` (mean D score: probability for sigmoid objectives, raw score otherwise).
"""
from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ..errors import ConfigError
from ..registry import DISCRIMINATORS, GENERATORS, Registry

Batch = dict[str, torch.Tensor]
Logs = dict[str, Any]
Nets = Mapping[str, nn.Module]
Outputs = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Update:
    """One optimisation phase of a training step.

    Args:
        name: short name; the phase's gradient norm is logged as ``<name>/grad_norm``.
        slots: the networks it optimises: one backward, one clip over all their parameters,
            then each slot's optimizer and scheduler step (``optim.<slot>``, ``sched.<slot>``).
        loss: ``(nets, batch, out) -> (loss, logs)``.
        repeat: runs per training step; every run after the first draws a new batch.
        graph: the loss backpropagates through ``run_forward``'s outputs (a generator's update).
    """

    name: str
    slots: tuple[str, ...]
    loss: Callable[[Nets, Batch, Outputs], tuple[torch.Tensor, Logs]]
    repeat: int = 1
    graph: bool = True


class Recipe(nn.Module):
    """Base class of every recipe. Subclasses register with ``@RECIPES.register("name")``.

    Class attributes describe the YAML the recipe accepts:

    * ``task``: the family used by ``tools/infer.py``/``tools/eval.py`` (``digits``, ``sr``,
      ``sketch2photo``, ``seg``, ``cyclegan``), set from the task table
      (:data:`i2i.task_table.TASKS`, by the recipe's registered name) when ``i2i.recipes`` is imported.
    * ``model_slots``: ``models.<slot>`` -> registry; ``optional_models`` may be absent.
    * ``loss_slots``: allowed ``losses.<slot>`` names; ``required_losses`` must be present.
    * ``ema_slots``: the slots whose weights get an EMA copy when ``train.ema_decay`` is set
      (the copy is what evaluation, samples and the export use).
    * ``inference_slots``: the networks an exported model needs at inference.

    Losses are ``nn.Module`` children of the recipe (so ``.to(device)`` moves them) but
    hold no trainable parameters; the engine checkpoints only ``models``.
    """

    task: ClassVar[str] = ""
    model_slots: ClassVar[dict[str, Registry]] = {"generator": GENERATORS, "discriminator": DISCRIMINATORS}
    optional_models: ClassVar[tuple[str, ...]] = ()
    loss_slots: ClassVar[tuple[str, ...]] = ()
    required_losses: ClassVar[tuple[str, ...]] = ()
    ema_slots: ClassVar[tuple[str, ...]] = ("generator",)
    inference_slots: ClassVar[tuple[str, ...]] = ("generator",)
    # the generator update gives the adversarial loss D(real) too (the relativistic objective needs it)
    passes_real_logits: ClassVar[bool] = False

    def __init__(self, losses: dict[str, nn.Module]):
        super().__init__()
        self.losses = nn.ModuleDict(losses)

    def setup(self, models: dict[str, nn.Module], train_dataset: Any | None = None) -> None:
        """Called once with the bare (unwrapped) models before training or evaluation.

        Recipes read architecture facts here (``z_dim``, ``num_classes``, the U-Net's size
        multiple) because DDP wrappers hide module attributes. ``train_dataset`` is given
        to recipes whose evaluation needs the training split (e.g. the digit classifier).
        """

    def check_adversary(self, D: nn.Module | None, loss: str = "adversarial") -> None:
        """Checks every recipe's ``setup`` runs on an adversarial loss and its discriminator."""
        adv = self.losses[loss] if loss in self.losses else None
        if D is not None and hasattr(adv, "check_discriminator"):
            adv.check_discriminator(D)
        if getattr(adv, "needs_real_logits", False) and not self.passes_real_logits:
            raise ConfigError(f"{adv.name!r} needs D's logits on real images in the generator loss, which the "
                              f"{type(self).__name__} recipe does not pass; use another objective (the sr recipe "
                              f"supports it)", f"losses.{loss}.objective")

    # --- training (the engine's side of the contract) --------------------------------
    def updates(self, slots: Collection[str], d_steps: int = 1) -> list[Update]:
        """The optimisation phases of one training step, in order.

        ``slots``: the networks present (``models:``, optional ones may be absent);
        ``d_steps``: ``train.d_steps``, the runs of a discriminator's update per step."""
        raise NotImplementedError

    def run_forward(self, nets: Nets, batch: Batch) -> Outputs:
        """The networks' outputs for a batch, shared by the updates that follow."""
        raise NotImplementedError

    def prepare_batch(self, batch: Batch) -> Batch:
        """Device-side batch synthesis, once per training batch drawn, before ``run_forward``.

        The engine calls it on the training device, in fp32 (autocast off) and without
        gradients, as BasicSR's ``feed_data`` synthesises Real-ESRGAN's LR images on the GPU
        (:mod:`i2i.recipes.real_esrgan`). Default: the batch unchanged."""
        return batch

    def train_state(self) -> dict[str, Any]:
        """This process's training state beyond the networks (e.g. a history of generated images),
        as tensors and numbers: saved with every checkpoint (``rng_<rank>.pt``, one per process),
        given back to :meth:`load_train_state` on resume. A resume with a different number of
        processes gives ``{}``: the state starts afresh, as the RNG streams do."""
        return {}

    def load_train_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`train_state` returned (``{}``: start afresh)."""

    # --- monitoring -----------------------------------------------------------------
    @torch.no_grad()
    def sample_grid(self, nets: Nets, batch: Batch) -> torch.Tensor:
        """An image grid's worth of (N, C, H, W) images in [0, 1] for the dashboard."""
        raise NotImplementedError

    @torch.no_grad()
    def run_evaluation(self, nets: Nets, batches: Iterable[Batch], accelerator: Any) -> dict[str, float]:
        """Validation metrics; must be correct under multi-process evaluation (gather)."""
        return {}

    # --- export ---------------------------------------------------------------------
    def export_meta(self) -> dict[str, Any]:
        """Extra facts ``tools/infer.py`` needs (value range, num_classes, scale...)."""
        return {}


class GeneratorRecipe(Recipe):
    """One ``generator`` and, unless absent from ``models:``, one ``discriminator``.

    Per training step: ``d_steps`` discriminator updates (each on a new batch, ``fake``
    detached by ``d_loss``), then one generator update on the last batch with D frozen.
    Recipes without a discriminator get only ``forward`` + ``g_loss``.
    """

    def updates(self, slots: Collection[str], d_steps: int = 1) -> list[Update]:
        g = Update("g", ("generator",), lambda nets, b, o: self.g_loss(nets.get("discriminator"), b, o))
        if "discriminator" not in slots:
            return [g]
        d = Update("d", ("discriminator",), lambda nets, b, o: self.d_loss(nets["discriminator"], b, o),
                   repeat=d_steps, graph=False)
        return [d, g]

    def run_forward(self, nets: Nets, batch: Batch) -> Outputs:
        return self(nets["generator"], batch)

    def sample_grid(self, nets: Nets, batch: Batch) -> torch.Tensor:
        return self.samples(nets["generator"], batch)

    def run_evaluation(self, nets: Nets, batches: Iterable[Batch], accelerator: Any) -> dict[str, float]:
        return self.evaluate(nets["generator"], batches, accelerator)

    # --- the two-network methods ------------------------------------------------------
    def forward(self, G: nn.Module, batch: Batch) -> Outputs:  # type: ignore[override]
        """Run the generator on a batch; returns what d_loss/g_loss need (e.g. ``fake``)."""
        raise NotImplementedError

    def d_loss(self, D: nn.Module, batch: Batch, out: Outputs) -> tuple[torch.Tensor, Logs]:
        raise NotImplementedError

    def g_loss(self, D: nn.Module | None, batch: Batch, out: Outputs) -> tuple[torch.Tensor, Logs]:
        raise NotImplementedError

    @torch.no_grad()
    def samples(self, G: nn.Module, batch: Batch) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def evaluate(self, G: nn.Module, batches: Iterable[Batch], accelerator: Any) -> dict[str, float]:
        return {}
