"""tools/bench_peer_train.py: the i2i side of the training-step comparison with BasicSR / Real-ESRGAN.

The peers run only in the bench venv (tools/peers/train_step.py); here a stand-in answers the
peer protocol so that the arguments, the timing loop and the JSON are tested without it.
"""
from __future__ import annotations

import ast
import json

import pytest
import torch
from conftest import ROOT, load_tool

TINY = {
    "srresnet": {"batch": 2, "hr": 32, "width": 8, "blocks": 1},
    "realesrgan": {"batch": 2, "pad": 48, "gt": 32, "width": 8, "blocks": 1, "growth": 4, "d_width": 8, "queue": 4},
}


@pytest.fixture(scope="module")
def tool():
    return load_tool("bench_peer_train")


def test_arguments(tool) -> None:
    a = tool.parse_args([])
    assert a.targets == ["srresnet", "realesrgan"] and a.mode == "default" and (a.warmup, a.iters) == (2, 5)
    assert a.i2i_configs == ["plain", "fast"] and a.peer_configs == ["fp32", "bf16_cl"]
    assert a.shapes["srresnet"] == {"batch": 16, "hr": 96, "width": 64, "blocks": 16}  # BasicSR / SRGAN batch, crop, size
    q = tool.parse_args(["--quick", "--targets", "realesrgan", "--set", "realesrgan.blocks=3"])
    assert q.targets == ["realesrgan"] and (q.warmup, q.iters) == (1, 2) and q.shapes["realesrgan"]["blocks"] == 3
    full = tool.parse_args(["--full"]).shapes["realesrgan"]
    assert (full["batch"], full["gt"], full["pad"], full["blocks"], full["growth"]) == (12, 256, 400, 23, 32)
    assert tool.i2i_options("fast+vgglp").vgglp and tool.i2i_options("fast+vgglp").plan
    for bad in (["--targets", "edsr"], ["--peer-configs", "fp16"], ["--set", "realesrgan.depth=3"],
                ["--set", "realesrgan.blocks=x"], ["--quick", "--full"], ["--iters", "0"]):
        with pytest.raises(SystemExit):
            tool.parse_args(bad)
    with pytest.raises(SystemExit, match="unknown option flag"):
        tool.parse_args(["--i2i-configs", "plain,turbo"])


def test_missing_bench_venv_is_one_clear_error(tool, tmp_path) -> None:
    with pytest.raises(SystemExit, match="no bench venv python at"):
        tool.Peer(str(tmp_path / "nope" / "python"), None)


@pytest.mark.parametrize("target", ["srresnet", "realesrgan"])
def test_i2i_steps_build_and_train(tool, target: str) -> None:
    w, cfg = tool.i2i_workload(target, TINY[target])
    step = tool.i2i_step(w, cfg, tool.i2i_options("plain"), torch.device("cpu"))
    assert step.ema_slots == ["generator"]  # both peers' YAMLs: ema_decay 0.999
    before = {s: [p.detach().clone() for p in m.parameters()] for s, m in step.models.items()}
    loss = step()
    assert torch.isfinite(loss)
    for s, m in step.models.items():  # every network was updated
        assert any(not torch.equal(a, b) for a, b in zip(before[s], m.parameters())), s
    g = step.models["generator"]
    if target == "srresnet":
        fast = tool.i2i_step(w, cfg, tool.i2i_options("fast"), torch.device("cpu"))
        assert fast.plan is not None and torch.isfinite(fast())  # train.fast's plan on this device  # BasicSR's MSRResNet settings: no BN, L1, Adam 2e-4 (0.9, 0.99)
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in g.modules())
        assert type(w.recipe.losses["pixel"]).__name__.lower().startswith("l1")
        assert w.optim["generator"]["lr"] == 2e-4 and list(w.optim["generator"]["betas"]) == [0.9, 0.99]
        assert tool.i2i_degradation(w, torch.device("cpu")) is None
        shipped, _ = tool.i2i_workload(target, TINY[target], shipped=True)
        assert any(isinstance(m, torch.nn.BatchNorm2d) for m in shipped.models["generator"].modules())
    else:  # the recipe's synthesis: HR pads (B, 3, 48, 48) -> LR (B, 3, 8, 8), HR crops 32²
        assert sum(isinstance(m, torch.nn.Module) and type(m).__name__ == "RRDB" for m in g.modules()) == 1
        assert w.recipe.losses["content"].weights_source is None  # random VGG19 on both sides
        out = tool.i2i_degradation(w, torch.device("cpu"))()
        assert out["lr"].shape == (2, 3, 8, 8) and out["hr"].shape == out["hr_usm"].shape == (2, 3, 32, 32)
        assert 0 <= float(out["lr"].min()) and float(out["lr"].max()) <= 1


class FakePeer:
    """Answers the peer protocol with fixed times: fp32 0.4 s, bf16_cl 0.2 s, feed_data 0.1 s."""

    def __init__(self) -> None:
        self.ops: list[dict] = []

    def ask(self, **msg):
        self.ops.append(msg)
        op = msg["op"]
        if op == "build":
            return {"ok": True, "parameters": {"Net": 10}}
        if op == "step":
            return {"ok": True, "step_s": 0.4 if msg["name"].endswith("fp32") else 0.2, "feed_s": 0.1}
        if op == "flops":
            return {"ok": True, "flops": 1000}
        if op == "dataset_time":
            return {"ok": True, "median_s": 0.01}
        return {"ok": True}


def test_rounds_alternate_and_the_json(tool, tmp_path, monkeypatch) -> None:
    args = tool.parse_args(["--quick", "--targets", "realesrgan", "--iters", "2", "--warmup", "1",
                            "--i2i-configs", "plain"])
    args.shapes["realesrgan"] = TINY["realesrgan"]
    order: list[str] = []
    real_rounds = tool.rounds

    def spy(fns, warmup, iters, log):
        wrapped = {k: (lambda k=k, f=f: (order.append(k), f())[1]) for k, f in fns.items()}
        return real_rounds(wrapped, warmup, iters, log)

    monkeypatch.setattr(tool, "rounds", spy)
    peer = FakePeer()
    res = tool.run_target("realesrgan", args.shapes["realesrgan"], args, peer, torch.device("cpu"), lambda m: None)
    names = ["i2i_plain", "i2i_degradation", "peer_fp32", "peer_bf16_cl"]
    assert order == names + names[::-1] + names  # every round, the order reversed every other one
    assert [m["op"] for m in peer.ops if m["op"] == "build"] == ["build", "build"]
    assert peer.ops[-2:] == [{"op": "drop", "name": "realesrgan_fp32"}, {"op": "drop", "name": "realesrgan_bf16_cl"}]
    assert len(res["i2i"]["plain"]["times_s"]) == 2 and len(res["peer"]["fp32"]["times_s"]) == 2  # warm-up excluded
    assert res["peer"]["fp32"]["median_s"] == 0.4 and res["peer"]["bf16_cl"]["feed_data_share"] == pytest.approx(0.5)
    for pc in ("fp32", "bf16_cl"):
        for ic in ("plain",):
            assert res["ratios"][f"peer_{pc}/i2i_{ic}"] == pytest.approx(
                res["peer"][pc]["median_s"] / res["i2i"][ic]["median_s"])
    d = res["i2i_degradation"]
    assert d["share_of_step"]["plain"] == pytest.approx(d["median_s"] / res["i2i"]["plain"]["median_s"])
    assert res["peer_kernels_per_batch_s"] == 0.01 and res["peer_flops_per_step"] == 1000
    assert res["i2i_flops_per_step"] > 0 and res["i2i_ema_slots"] == ["generator"]
    json.dumps(res)  # the JSON holds plain numbers and strings
    assert any("ratios" in line for line in tool.summary_lines({"realesrgan": res}))


def test_peer_script_never_imports_i2i() -> None:
    """tools/peers/train_step.py runs in the bench venv, where i2i is not installed."""
    tree = ast.parse((ROOT / "tools" / "peers" / "train_step.py").read_text())
    mods = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    mods |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert {"basicsr", "realesrgan", "torch"} <= mods and not mods & {"i2i", "bench", "tools"}
