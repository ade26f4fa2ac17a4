"""One training step, for any number of networks: what ``Trainer.fit`` and ``tools/bench.py`` run.

:class:`TrainStep` runs a recipe's :class:`~i2i.recipes.base.Update` list once (the order,
batches and graphs are documented in :mod:`i2i.recipes.base`). For each update: zero the
slots' gradients, one backward, one clip over all their parameters (``grad_clip=None``
measures the norm without clipping), each slot's optimizer step — skipped *on the device*
when the loss or the norm is not finite —, each slot's scheduler step, and the EMA update of
the slots that have one. Nothing in a step reads a tensor's value on the host (a GPU step
never waits), except for optimizers without a device-side skip (see :func:`step_if`).

The engine passes Accelerate's ``backward``/``clip_grad_norm_``/``autocast`` and prepared
modules; the benchmark passes plain PyTorch ones: the same function is measured that runs.
"""
from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .. import perf
from ..recipes.base import Batch, Logs, Recipe, Update


def step_if(opt: Any, finite: torch.Tensor) -> None:
    """``opt.step()`` where ``finite`` holds, decided on the device when the optimizer can.

    Fused Adam/AdamW/SGD (the default, :func:`~i2i.engine.optim.build_optimizer`) take a
    ``found_inf`` flag, the mechanism of PyTorch's GradScaler, and then leave weights, moments
    and step count untouched. Optimizers without that kernel (RMSprop, ``fused: false``) are
    checked on the host.
    """
    inner = getattr(opt, "optimizer", opt)
    if getattr(inner, "_step_supports_amp_scaling", False):
        inner.found_inf = (~finite).float()
        try:
            opt.step()
        finally:
            del inner.found_inf
    elif bool(finite):  # host check: this optimizer has no device-side skip
        opt.step()


def _plain_clip(params: list[nn.Parameter], max_norm: float) -> torch.Tensor:
    return torch.nn.utils.clip_grad_norm_(params, max_norm)


@dataclass
class TrainStep:
    """A recipe's updates over its networks; call it once per training step.

    Args:
        recipe: the recipe (its losses on the networks' device).
        updates: ``recipe.updates(slots, d_steps)``.
        wrapped: slot -> the module that computes with gradients (DDP/compiled wrapper).
        bare: slot -> the unwrapped module (frozen, it stands in for slots an update does not optimise).
        optimizers, schedulers: slot -> optimizer / scheduler (``schedulers`` may be empty).
        autocast: a fresh mixed-precision context per call (``contextlib.nullcontext`` for fp32).
        backward: ``loss -> None`` (Accelerate's scales the loss under fp16).
        clip_grad_norm: ``(params, max_norm) -> total norm``; Accelerate's unscales first.
        grad_clip: ``train.grad_clip``; ``None`` measures the norm only.
        scaler: an fp16 GradScaler steps the optimizers: it skips overflowing steps itself
            (part of its normal work), so only a non-finite loss counts as a bad update.
        emas: slot -> EMA (timm ``ModelEmaV3``) updated after each update of that slot.
    """

    recipe: Recipe
    updates: list[Update]
    wrapped: dict[str, nn.Module]
    bare: dict[str, nn.Module]
    optimizers: dict[str, Any]
    schedulers: dict[str, Any] = field(default_factory=dict)
    autocast: Callable[[], AbstractContextManager[Any]] = nullcontext
    backward: Callable[[torch.Tensor], None] = torch.Tensor.backward
    clip_grad_norm: Callable[[list[nn.Parameter], float], torch.Tensor | None] = _plain_clip
    grad_clip: float | None = None
    scaler: bool = False
    emas: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # the forward of an update's last run needs a graph if a later update backpropagates through it
        self._graph_after = [any(u.graph for u in self.updates[i + 1:]) for i in range(len(self.updates))]

    def __call__(self, next_batch: Callable[[], Batch], step: int, fault_nan: bool = False) -> tuple[Logs, torch.Tensor]:
        """One step; ``next_batch()`` gives a device batch. Returns ``(logs, finite)``: the logged
        values (tensors) and a 0-d bool tensor, true when every update was finite.
        ``fault_nan``: the last update's loss is made NaN (the tests' fault-injection hook)."""
        logs: Logs = {}
        finite: list[torch.Tensor] = []
        batch: Batch | None = None
        out: dict[str, torch.Tensor] = {}
        last = len(self.updates) - 1
        for i, u in enumerate(self.updates):
            for r in range(u.repeat):
                if batch is None or r > 0:
                    batch = self._prepare(next_batch())
                    graph = u.graph or (r == u.repeat - 1 and self._graph_after[i])
                    with self.autocast(), torch.set_grad_enabled(graph):
                        out = self.recipe.run_forward(self.wrapped, batch)
                nets = {s: self.wrapped[s] if s in u.slots else m for s, m in self.bare.items()}
                with perf.frozen(*[m for s, m in self.bare.items() if s not in u.slots]):
                    with self.autocast():
                        loss, values = u.loss(nets, batch, out)
                    if fault_nan and i == last:
                        loss = loss * float("nan")
                    logs.update(values)
                    finite.append(self._update(u, loss, logs))
                for s in u.slots:
                    if s in self.emas:  # a skipped update left the weights as they were: EMA of the same
                        self.emas[s].update(self.bare[s], step=step)
        return logs, torch.stack(finite).all()

    def _prepare(self, batch: Batch) -> Batch:
        """The recipe's device-side batch synthesis (``Recipe.prepare_batch``): fp32, no autocast, no grad."""
        if type(self.recipe).prepare_batch is Recipe.prepare_batch:
            return batch
        device = next((v.device for v in batch.values() if isinstance(v, torch.Tensor)), torch.device("cpu"))
        with torch.no_grad(), torch.autocast(device.type, enabled=False):
            return self.recipe.prepare_batch(batch)

    def _update(self, u: Update, loss: torch.Tensor, logs: Logs) -> torch.Tensor:
        """zero_grad + backward + clip + step for the update's slots; a 0-d bool "finite" tensor.

        The scheduler steps either way: a schedule follows the step counter."""
        for s in u.slots:
            self.optimizers[s].zero_grad(set_to_none=True)
        self.backward(loss)
        params = [p for s in u.slots for p in self.wrapped[s].parameters()]
        norm = self.clip_grad_norm(params, self.grad_clip if self.grad_clip is not None else float("inf"))
        if norm is None:  # engines that clip internally return no norm
            norm = loss.new_zeros((), dtype=torch.float32)
        logs[f"{u.name}/grad_norm"] = norm.detach()
        finite = torch.isfinite(loss.detach())
        if not self.scaler:
            finite = finite & torch.isfinite(norm)
        for s in u.slots:
            if self.scaler:
                self.optimizers[s].step()
            else:
                step_if(self.optimizers[s], finite)
            if s in self.schedulers:
                self.schedulers[s].step()
        return finite
