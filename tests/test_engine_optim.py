"""i2i.engine.optim: optimizers by name (fused Adam/AdamW by default) and the learning-rate
schedules at chosen steps against values computed by hand."""
from __future__ import annotations

import math

import pytest
import torch

from i2i.engine import optim  # noqa: F401  (registers the optimizers and schedules)
from i2i.errors import ConfigError
from i2i.registry import OPTIMIZERS, SCHEDULERS

BASE_LR = 2.0


def factors(spec: dict, total: int, steps: list[int]) -> list[float]:
    """lr / base lr after ``s`` scheduler steps, for each ``s`` in ``steps``, through the registry as the trainer builds it."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=BASE_LR)
    sched = SCHEDULERS.build(spec, "sched.generator", optimizer=opt, total_steps=total)
    out, done = [], 0
    for s in steps:
        for _ in range(s - done):
            opt.step()
            sched.step()
        done = s
        out.append(opt.param_groups[0]["lr"] / BASE_LR)
    return out


# ----------------------------------------------------------------------------- optimizers
def test_build_optimizer_fuses_adam_by_default_and_matches_the_loop() -> None:
    from i2i.engine.optim import build_optimizer

    torch.manual_seed(0)
    # no BN: a conv bias before BN has a zero gradient, and Adam's −lr·m/(√v + ε) turns the
    # round-off in a zero gradient into an lr-sized step (the update rule, not the kernel)
    nets = [torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Tanh(), torch.nn.Conv2d(8, 2, 1))
            for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    fused = build_optimizer({"type": "adam", "lr": 1e-2, "betas": [0.5, 0.999]}, "optim.generator",
                            list(nets[0].parameters()))
    loop = build_optimizer({"type": "adam", "lr": 1e-2, "betas": [0.5, 0.999], "fused": False}, "optim.generator",
                           list(nets[1].parameters()))
    assert fused.defaults["fused"] is True and not loop.defaults["fused"]
    x = torch.randn(4, 3, 9, 9)
    for _ in range(5):
        for net, opt in zip(nets, (fused, loop)):
            opt.zero_grad()
            net(x).square().mean().backward()
            opt.step()
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)  # same update rule, rounding order only
    sgd = build_optimizer({"type": "sgd", "lr": 0.1}, "optim.d", list(nets[0].parameters()))
    assert not sgd.defaults.get("fused")
    foreach = build_optimizer({"type": "adamw", "lr": 0.1, "foreach": True}, "optim.d", list(nets[0].parameters()))
    assert not foreach.defaults.get("fused")


# ----------------------------------------------------------------------------- schedules
def test_constant() -> None:
    assert factors({"type": "constant"}, 10, [0, 5, 10]) == [1.0, 1.0, 1.0]


def test_linear_decay_is_constant_then_linear_to_the_end_factor() -> None:
    # 10 steps, start 0.5: constant for steps 0-5, then 1 - (s - 5) / 5
    got = factors({"type": "linear_decay"}, 10, [0, 4, 5, 6, 7, 9, 10, 12])
    assert got == pytest.approx([1, 1, 1, 0.8, 0.6, 0.2, 0.0, 0.0])
    # end_factor 0.1 and start 0.2 over 20 steps: begin 4, span 16; step 8 → 1 - 0.9 · 4/16
    assert factors({"type": "linear_decay", "start": 0.2, "end_factor": 0.1}, 20, [3, 8, 20]) == pytest.approx([1, 0.775, 0.1])


def test_step_schedule_multiplies_by_gamma_at_each_milestone() -> None:
    got = factors({"type": "step", "milestones": [0.5, 0.75], "gamma": 0.1}, 100, [49, 50, 74, 75, 100])
    assert got == pytest.approx([1, 0.1, 0.1, 0.01, 0.01])
    # milestones ≥ 1 are absolute steps (SRGAN: ×0.1 at step 10^5 of 2·10^5)
    assert factors({"type": "step", "milestones": [30]}, 1000, [29, 30]) == pytest.approx([1, 0.1])


def test_cosine_with_warmup_and_a_floor() -> None:
    # warmup 2: (s + 1) / 2; then 0.1 + 0.9 · ½(1 + cos(π t)), t = (s - 2) / 8
    cos = [0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)) for t in (0, 0.25, 0.5, 1)]
    got = factors({"type": "cosine", "warmup": 2, "min_factor": 0.1}, 10, [0, 1, 2, 4, 6, 10, 11])
    assert got == pytest.approx([0.5, 1.0, *cos, 0.1])
    assert cos[1] == pytest.approx(0.868198, abs=1e-6)
    assert factors({"type": "cosine"}, 4, [0, 2, 4]) == pytest.approx([1.0, 0.5, 0.0])


def test_schedule_state_holds_only_numbers() -> None:
    """The checkpoint loads with ``weights_only=True``: the scheduler state must not pickle the lambdas."""
    import io

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = SCHEDULERS.build({"type": "cosine", "warmup": 2}, "sched.g", optimizer=opt, total_steps=10)
    buf = io.BytesIO()
    torch.save(sched.state_dict(), buf)
    buf.seek(0)
    assert torch.load(buf, weights_only=True)["lr_lambdas"] == [None]


def test_unknown_names_and_keys_are_config_errors() -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ConfigError, match=r"^sched.generator.warmup: unknown key; allowed: end_factor, start"):
        SCHEDULERS.build({"type": "linear_decay", "warmup": 3}, "sched.generator", optimizer=opt, total_steps=10)
    with pytest.raises(ConfigError, match=r"^optim.generator.type: unknown optimizer 'adamax'"):
        OPTIMIZERS.build({"type": "adamax", "lr": 0.1}, "optim.generator", params=[torch.nn.Parameter(torch.zeros(1))])
