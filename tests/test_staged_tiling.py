"""Staged exact tiling (:func:`i2i.tiling.run_staged`, :func:`i2i.tiling.apply_in_place`): a network
run one stage at a time over a feature map of the whole image gives the untiled network's output,
and each stage's radius is the one that makes it so (one pixel less shows)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from i2i.nn.rrdbnet import RRDBNet
from i2i.nn.srvgg import SRVGGNetCompact
from i2i.tiling import StagePlan, apply_in_place, run_staged, stage_tiles


def _kaiming(net: nn.Module, seed: int = 0) -> nn.Module:
    """Kaiming-normal convolutions (the default inits make far pixels count too little to test)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / m.weight[0].numel()) ** 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    return net.eval()


def _nets() -> dict[str, nn.Module]:
    pytest.importorskip("spandrel")
    from spandrel.architectures.Compact import Compact
    from spandrel.architectures.ESRGAN.__arch.RRDB import RRDBNet as PeerRRDB

    return {"i2i_rrdbnet": RRDBNet(scale=4, width=8, num_blocks=2, growth=4),
            "i2i_srvgg": SRVGGNetCompact(scale=4, width=8, num_conv=9),
            "spandrel_rrdbnet": PeerRRDB(num_filters=8, num_blocks=2, scale=4),
            "spandrel_compact": Compact(num_feat=8, num_conv=6, upscale=2)}


def _plan(net: nn.Module) -> StagePlan:
    from i2i.pipelines.super_resolution import stage_plan

    plan = stage_plan(net)
    assert plan is not None
    return plan


@pytest.mark.parametrize("name", ["i2i_rrdbnet", "i2i_srvgg", "spandrel_rrdbnet", "spandrel_compact"])
def test_staged_equals_untiled_and_each_radius_is_needed(name: str) -> None:
    net = _kaiming(_nets()[name]).double()
    plan = _plan(net)
    scale = int(getattr(net, "scale", None) or net.upscale)
    x = torch.rand(1, 3, 47, 38, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        want = net(x)
    assert plan.radius <= 15 * 2 + 4  # RRDBNet ×4: 15 per block + 4; SRVGG: one per convolution
    for tile, body in ((8, 16), (13, 20), (40, 40), (8, 64)):  # (8, 64): the body in one tile, the whole map
        got = run_staged(plan, x, scale, tile=tile, body_tile=body)
        assert got.shape == want.shape
        assert (got - want).abs().max().item() < 1e-12, (tile, body)
    # one pixel of context less than a stage's radius changes the result (float64: far above round-off)
    for field in ("head_radius", "block_radius", "tail_radius"):
        short = dataclasses.replace(plan, **{field: getattr(plan, field) - 1})
        got = run_staged(short, x, scale, tile=8, body_tile=16)
        assert (got - want).abs().max().item() > 1e-9, field


def test_apply_in_place_equals_the_stage_on_the_whole_map() -> None:
    torch.manual_seed(0)
    stage = _kaiming(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 5, padding=2))).double()
    feats = torch.randn(2, 4, 29, 33, dtype=torch.float64)
    with torch.no_grad():
        want = stage(feats)
    for tile in (3, 7, 10, 64):  # radius 3: tiles from the radius itself up to the whole map
        f = feats.clone()
        ticks: list[int] = []
        out = apply_in_place(stage, f, tile, 3, progress=lambda t=ticks: t.append(1))
        assert out is f and (f - want).abs().max().item() < 1e-12, tile
        assert len(ticks) == stage_tiles(29, 33, tile)
    f = feats.clone()
    apply_in_place(stage, f, 7, 2)  # too little context: wrong
    assert (f - want).abs().max().item() > 1e-3
    with pytest.raises(ValueError, match="at least the radius"):
        apply_in_place(stage, feats.clone(), 2, 3)
    with pytest.raises(ValueError, match="changed a patch's shape"):
        apply_in_place(lambda t: t[:, :, 1:], feats.clone(), 8, 1)


def _rrdb_file(tmp_path: Path) -> Path:
    pytest.importorskip("spandrel")
    from spandrel.architectures.ESRGAN.__arch.RRDB import RRDBNet as PeerRRDB

    net = _kaiming(PeerRRDB(num_filters=8, num_blocks=2, scale=4), seed=3)
    with torch.no_grad():  # an output spanning the 8-bit range: the last conv scaled down, offset to mid-grey
        last = net.model[-1]
        last.weight.mul_(0.05)
        last.bias.fill_(0.5)
    f = tmp_path / "RealESRGAN_x4plus.pth"
    torch.save({"params_ema": net.state_dict()}, f)  # the keys as spandrel's class names them (ESRGAN's old layout)
    return f


def test_the_pipeline_tiles_a_foreign_file_in_stages_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from i2i.inference import load_model
    from i2i.pipelines import super_resolution as sr

    model = load_model(_rrdb_file(tmp_path), device="cpu")
    img = np.random.default_rng(0).integers(0, 256, (37, 45, 3), dtype=np.uint8)
    whole = sr.SuperResolutionPipeline(model, tile=0)(img)
    staged = sr.SuperResolutionPipeline(model, tile=8)
    assert staged.plan is not None and staged.plan.radius == 15 * 2 + 4
    calls = []
    monkeypatch.setattr(sr, "run_staged", lambda *a, **k: calls.append(1) or run_staged(*a, **k))
    staged.progress = lambda done, total: calls.append((done, total))
    got = staged(img)
    assert calls[0] == 1 and calls[-1][0] == calls[-1][1]  # staged ran, and its bar reached its total
    assert np.abs(got.astype(int) - whole.astype(int)).max() <= 1  # rounding of float round-off at .5 at most
    assert whole.std() > 5  # the output is an image, not a constant
    # an explicit context runs one-pass tiles, as asked; 2 pixels of it are too few for this network
    short = sr.SuperResolutionPipeline(model, tile=8, overlap=2)
    assert short.plan is None and np.abs(short(img).astype(int) - whole.astype(int)).max() > 1
    # a map over the budget: one-pass exact tiles, the same result
    calls.clear()
    monkeypatch.setattr(sr, "STAGED_MAP_BYTES", 100)
    staged.progress = None
    assert np.abs(staged(img).astype(int) - whole.astype(int)).max() <= 1 and not calls


def test_fast_runs_the_stages_as_the_fast_network_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under ``--fast`` every stage runs NHWC under the wrapper's autocast: the staged result equals the
    fast network's own untiled one up to bf16 rounding (the fp32 network's differs far more)."""
    from i2i.perf import fast_inference
    from i2i.pipelines import super_resolution as sr

    net = _kaiming(RRDBNet(scale=4, width=8, num_blocks=2, growth=4))
    fast = fast_inference(net, "cpu", precision="bf16")
    plan = _plan(fast)
    x = torch.rand(1, 3, 30, 26, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want = fast(x).clamp(0, 1)
        far = (want - net(x).clamp(0, 1)).abs().max().item()  # what bf16 itself changes
    for body in (8, sr.BODY_TILE):  # blocks in place on 8² tiles; the whole map in one tile
        monkeypatch.setattr(sr, "BODY_TILE", body)
        got = sr.sr_tiles(fast, x, 4, tile=8, overlap=0, plan=plan)
        err = (got - want).abs()
        assert err.mean().item() < 1e-3 and err.max().item() < max(far, 1e-6), body


def test_lean_dense_blocks_give_the_blocks_own_values() -> None:
    """The staged body runs RRDBs without their concatenations: bit for bit the module's forward
    (and the module's forward itself on channels-last inputs)."""
    from i2i.foreign import _lean_rrdb

    nets = _nets()
    x = torch.randn(1, 8, 19, 23, generator=torch.Generator().manual_seed(4))
    mine = _kaiming(nets["i2i_rrdbnet"]).body[0]
    peer = _kaiming(nets["spandrel_rrdbnet"]).model[1].sub[0]
    lean_peer = _lean_rrdb(peer)
    assert lean_peer is not peer
    nhwc = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        assert torch.equal(mine.lean(x.clone()), mine(x))
        assert torch.equal(lean_peer(x.clone()), peer(x))
        assert torch.allclose(mine.lean(nhwc), mine(x), atol=1e-5) and torch.allclose(lean_peer(nhwc), peer(x), atol=1e-5)
