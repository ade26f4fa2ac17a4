"""i2i.engine.step: ``step_if`` and :class:`TrainStep` on two tiny linear "networks" and a
hand-written recipe, checked against values computed by hand.

The networks: ``a`` = Linear(3, 2) (the "generator"), ``b`` = Linear(2, 1) (the "critic").
``run_forward`` gives ``y = a(x)``; update ``b`` minimises Σₙ b(yₙ.detach()) (no graph
needed), update ``a`` minimises Σₙ b(yₙ) through the frozen ``b``. So, for a batch of N rows
with S = Σₙ xₙ and Y = Σₙ yₙ:

* ∂/∂W_b = Y, ∂/∂b_b = N  →  ‖g_b‖ = √(‖Y‖² + N²);
* ∂/∂W_a = W_bᵀ Sᵀ, ∂/∂b_a = N W_bᵀ  →  ‖g_a‖ = ‖W_b‖ √(‖S‖² + N²), with W_b as ``b``'s
  update left it (the GAN step: G's loss sees the D that was just updated).
"""
from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from i2i.engine.step import TrainStep, step_if
from i2i.recipes.base import Recipe, Update

LR = 0.1


class Wrapped(nn.Module):
    """Stands in for a DDP/compiled wrapper: same parameters, another object."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


class Probe(Recipe):
    """Records what the step does: grad mode of each forward, the batches each loss saw, the
    nets it was given and the ``requires_grad`` of every parameter at that moment."""

    def __init__(self, bare: dict[str, nn.Module]):
        super().__init__({})
        self.bare = bare
        self.forward_grad: list[bool] = []
        self.seen: dict[str, list[int]] = {"a": [], "b": []}
        self.nets: dict[str, dict[str, nn.Module]] = {}
        self.trainable: dict[str, dict[str, bool]] = {}

    def run_forward(self, nets, batch):  # noqa: ANN001, ANN201
        self.forward_grad.append(torch.is_grad_enabled())
        return {"y": nets["a"](batch["x"])}

    def _record(self, name: str, nets, batch) -> None:  # noqa: ANN001
        self.seen[name].append(int(batch["id"]))
        self.nets[name] = dict(nets)
        self.trainable[name] = {s: all(p.requires_grad for p in m.parameters()) for s, m in self.bare.items()}

    def loss_b(self, nets, batch, out):  # noqa: ANN001, ANN201
        self._record("b", nets, batch)
        loss = nets["b"](out["y"].detach()).sum()
        return loss, {"b/loss": loss.detach()}

    def loss_a(self, nets, batch, out):  # noqa: ANN001, ANN201
        self._record("a", nets, batch)
        loss = nets["b"](out["y"]).sum()
        return loss, {"a/loss": loss.detach()}


def nets() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    return {"a": nn.Linear(3, 2), "b": nn.Linear(2, 1)}


def batches(n: int = 4) -> tuple[Callable[[], dict[str, torch.Tensor]], list[torch.Tensor]]:
    """``next_batch`` drawing batch 0, 1, 2… (each N×3, fixed values) and the list of those drawn."""
    drawn: list[torch.Tensor] = []

    def next_batch() -> dict[str, torch.Tensor]:
        k = len(drawn)
        x = torch.arange(n * 3, dtype=torch.float32).view(n, 3) / 10 - k
        drawn.append(x)
        return {"x": x, "id": torch.tensor(k)}

    return next_batch, drawn


def make_step(order: str, repeat: int = 1, opt: Callable = lambda p: torch.optim.SGD(p, lr=LR), **kw) -> TrainStep:  # noqa: ANN001
    bare = nets()
    recipe = Probe(bare)
    ups = {"b": Update("b", ("b",), recipe.loss_b, repeat=repeat, graph=False), "a": Update("a", ("a",), recipe.loss_a)}
    return TrainStep(recipe, [ups[c] for c in order], {s: Wrapped(m) for s, m in bare.items()}, bare,
                     {s: opt(list(m.parameters())) for s, m in bare.items()}, **kw)


def weights(m: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in m.parameters()]


# ----------------------------------------------------------------------------- step_if
@pytest.mark.parametrize("make", [lambda p: torch.optim.Adam(p, lr=0.1, fused=True),
                                  lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, fused=True),
                                  lambda p: torch.optim.RMSprop(p, lr=0.1)], ids=["adam_fused", "sgd_fused", "rmsprop"])
def test_a_non_finite_update_is_skipped_whole(make, device: torch.device) -> None:
    """step_if: with finite=False nothing moves (weights, moments, step count) — on the
    device through the fused kernels' found_inf, on the host for optimizers without one."""
    p = torch.nn.Parameter(torch.ones(4, device=device))
    opt = make([p])
    p.grad = torch.full_like(p, 0.5)
    step_if(opt, torch.tensor(True, device=device))
    after_one = p.detach().clone()
    state = {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in opt.state[p].items()}
    assert not torch.equal(after_one, torch.ones(4, device=device))
    p.grad = torch.full_like(p, float("nan"))
    step_if(opt, torch.tensor(False, device=device))
    assert torch.equal(p.detach(), after_one)
    for k, v in opt.state[p].items():
        assert torch.equal(v, state[k]) if isinstance(v, torch.Tensor) else v == state[k], k
    assert not hasattr(opt, "found_inf")


# ----------------------------------------------------------------------------- graphs and batches
@pytest.mark.parametrize("order, repeat, grad_modes, batches_drawn, seen", [
    # k critic runs, then the generator: forwards 1..k-1 without a graph, the k-th with one, reused by "a"
    ("ba", 3, [False, False, True], 3, {"b": [0, 1, 2], "a": [2]}),
    ("ba", 1, [True], 1, {"b": [0], "a": [0]}),
    # generator first: its forward needs a graph; the critic's later runs draw new batches, no graph
    ("ab", 2, [True, False], 2, {"a": [0], "b": [0, 1]}),
    ("b", 2, [False, False], 2, {"b": [0, 1], "a": []}),  # no later update backpropagates: never a graph
])
def test_a_forward_gets_a_graph_only_when_a_later_update_needs_it(order: str, repeat: int, grad_modes: list[bool],
                                                                  batches_drawn: int, seen: dict[str, list[int]]) -> None:
    step = make_step(order, repeat)
    next_batch, drawn = batches()
    step(next_batch, step=0)
    assert step.recipe.forward_grad == grad_modes
    assert len(drawn) == batches_drawn  # repeat=k draws k batches; the next update reuses the last one
    assert step.recipe.seen == {"a": [], "b": [], **seen}


def test_slots_outside_an_update_are_frozen_during_it_and_restored_after() -> None:
    step = make_step("ba")
    step(batches()[0], step=0)
    rec = step.recipe
    assert rec.trainable["b"] == {"a": False, "b": True}
    assert rec.trainable["a"] == {"a": True, "b": False}
    # the update's own slots get the wrapped module, the others the bare (frozen) one
    assert rec.nets["b"]["b"] is step.wrapped["b"] and rec.nets["b"]["a"] is step.bare["a"]
    assert rec.nets["a"]["a"] is step.wrapped["a"] and rec.nets["a"]["b"] is step.bare["b"]
    assert all(p.requires_grad for m in step.bare.values() for p in m.parameters())


# ----------------------------------------------------------------------------- values
def test_gradient_norms_and_sgd_updates_match_the_hand_computed_ones() -> None:
    step = make_step("ba")
    a, b = step.bare["a"], step.bare["b"]
    (Wa, ba), (Wb, bb) = weights(a), weights(b)
    next_batch, drawn = batches(n=4)
    logs, finite = step(next_batch, step=0)
    x = drawn[0]
    N, S, Y = x.shape[0], x.sum(0), (x @ Wa.T + ba).sum(0)
    # critic: gradient (Y, N), taken first
    assert logs["b/grad_norm"].item() == pytest.approx((Y.square().sum() + N**2).sqrt().item(), rel=1e-6)
    Wb1, bb1 = Wb - LR * Y[None], bb - LR * N
    torch.testing.assert_close(b.weight.detach(), Wb1)
    torch.testing.assert_close(b.bias.detach(), bb1)
    # generator: through the critic as its update left it
    assert logs["a/grad_norm"].item() == pytest.approx((Wb1.norm() * (S.square().sum() + N**2).sqrt()).item(), rel=1e-6)
    torch.testing.assert_close(a.weight.detach(), Wa - LR * Wb1.T @ S[None])
    torch.testing.assert_close(a.bias.detach(), ba - LR * N * Wb1[0])
    assert logs["a/loss"].item() == pytest.approx(((x @ Wa.T + ba).sum(0) @ Wb1[0] + N * bb1[0]).item(), rel=1e-6)
    assert finite.dtype == torch.bool and finite.dim() == 0 and bool(finite)


def test_clipping_scales_the_update_but_logs_the_norm_before_it() -> None:
    step = make_step("a", grad_clip=0.05)
    a = step.bare["a"]
    before = weights(a)
    logs, _ = step(batches()[0], step=0)
    moved = torch.cat([(w0 - w).flatten() for w0, w in zip(before, weights(a))]).norm().item()
    assert logs["a/grad_norm"].item() > 0.5  # ten times the limit: the clip acts
    assert moved == pytest.approx(LR * 0.05, rel=1e-4)  # lr × max_norm (torch clips to max_norm / (norm + 1e-6))


@pytest.mark.parametrize("opt", [lambda p: torch.optim.SGD(p, lr=LR), lambda p: torch.optim.Adam(p, lr=LR, fused=True)],
                         ids=["sgd_host_check", "adam_fused_found_inf"])
def test_a_nan_loss_skips_its_update_and_reports_not_finite(opt) -> None:  # noqa: ANN001
    step = make_step("ba", opt=opt)
    a, b = step.bare["a"], step.bare["b"]
    a0, b0 = weights(a), weights(b)
    logs, finite = step(batches()[0], step=0, fault_nan=True)  # the last update's ("a") loss is NaN
    assert not bool(finite)
    assert all(torch.equal(w0, w) for w0, w in zip(a0, weights(a)))  # skipped: a unchanged
    assert not torch.equal(b0[0], weights(b)[0])  # the finite update before it was applied
    assert torch.isnan(logs["a/grad_norm"]) and torch.isfinite(logs["b/grad_norm"])
    _, finite = step(batches()[0], step=1)
    assert bool(finite) and not torch.equal(a0[0], weights(a)[0])


def test_a_finite_loss_with_a_non_finite_gradient_is_skipped_too() -> None:
    """√0 has an infinite derivative: the loss is 0, the gradient NaN (∞ · 0), the norm NaN."""
    bare = nets()
    recipe = Probe(bare)
    sqrt0 = Update("a", ("a",), lambda n, b, o: ((n["a"](b["x"]) * 0).sum().sqrt(), {}))
    step = TrainStep(recipe, [sqrt0], bare, bare, {s: torch.optim.SGD(m.parameters(), lr=LR) for s, m in bare.items()})
    a0 = weights(bare["a"])
    logs, finite = step(batches()[0], step=0)
    assert torch.isnan(logs["a/grad_norm"]) and not bool(finite)
    assert all(torch.equal(w0, w) for w0, w in zip(a0, weights(bare["a"])))


# ----------------------------------------------------------------------------- EMA and schedules
class EmaRecorder:
    def __init__(self) -> None:
        self.calls: list[tuple[nn.Module, int, torch.Tensor]] = []

    def update(self, model: nn.Module, step: int) -> None:
        self.calls.append((model, step, model.weight.detach().clone()))


def test_ema_is_updated_after_each_run_of_its_own_slot_only() -> None:
    emas = {"a": EmaRecorder()}
    step = make_step("ba", repeat=2, emas=emas)
    step(batches()[0], step=7)
    assert [(m, s) for m, s, _ in emas["a"].calls] == [(step.bare["a"], 7)]  # bare module, the step number
    assert torch.equal(emas["a"].calls[0][2], step.bare["a"].weight.detach())  # after a's optimizer step
    emas = {"b": EmaRecorder()}
    step = make_step("ba", repeat=2, emas=emas)
    step(batches()[0], step=3)
    assert [(m, s) for m, s, _ in emas["b"].calls] == [(step.bare["b"], 3)] * 2  # once per run of b's update


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before `optimizer.step\\(\\)`")  # the skipped step
def test_schedulers_step_with_every_run_of_their_slot_even_a_skipped_one() -> None:
    step = make_step("ba", repeat=3)
    step.schedulers = {s: torch.optim.lr_scheduler.LambdaLR(o, lambda k: 0.5**k) for s, o in step.optimizers.items()}
    step(batches()[0], step=0, fault_nan=True)
    assert step.schedulers["b"].last_epoch == 3 and step.schedulers["a"].last_epoch == 1
    assert step.optimizers["b"].param_groups[0]["lr"] == pytest.approx(LR / 8)


def test_prepare_batch_runs_once_per_drawn_batch_in_fp32_without_grad() -> None:
    """``Recipe.prepare_batch`` (device-side synthesis, BasicSR's feed_data): called on every batch
    drawn, before the forward, with gradients off and autocast off even inside a bf16 autocast step."""
    calls: list[tuple[bool, bool, int]] = []

    class Synth(Probe):
        def prepare_batch(self, batch):  # noqa: ANN001, ANN201
            calls.append((torch.is_grad_enabled(), torch.is_autocast_enabled("cpu"), int(batch["id"])))
            return {**batch, "x": batch["x"] * 2}

        def run_forward(self, nets, batch):  # noqa: ANN001, ANN201
            forwarded.append(batch["x"])
            return super().run_forward(nets, batch)

    forwarded: list[torch.Tensor] = []
    bare = nets()
    recipe = Synth(bare)
    ups = [Update("b", ("b",), recipe.loss_b, repeat=2, graph=False), Update("a", ("a",), recipe.loss_a)]
    step = TrainStep(recipe, ups, {s: Wrapped(m) for s, m in bare.items()}, bare,
                     {s: torch.optim.SGD(m.parameters(), lr=LR) for s, m in bare.items()},
                     autocast=lambda: torch.autocast("cpu", dtype=torch.bfloat16))
    next_batch, drawn = batches()
    step(next_batch, 0)
    assert calls == [(False, False, 0), (False, False, 1)]  # two draws (d_steps 2), each prepared once
    assert recipe.seen == {"b": [0, 1], "a": [1]}
    assert all(torch.equal(f, 2 * d) for f, d in zip(forwarded, drawn, strict=True))  # the forward sees the prepared batch
