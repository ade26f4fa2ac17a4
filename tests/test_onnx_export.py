"""ONNX export of every task's inference network: onnxruntime's outputs equal PyTorch's."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("onnxruntime")

from i2i import runs  # noqa: E402
from i2i.config import load_config  # noqa: E402
from i2i.engine.build import build_run  # noqa: E402
from i2i.inference import load_model  # noqa: E402
from i2i.onnx_export import TOLERANCE, OnnxError, OnnxNet, export_onnx  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
from conftest import TINY_PER_TASK as TINY  # noqa: E402
SLOTS = {"cyclegan_fashion": ["generator_ab", "generator_ba"]}  # the recipe's inference_slots; others: generator


def make_export(task: str, folder: Path) -> Path:
    """An export of the task's networks with random weights, written through i2i.runs."""
    torch.manual_seed(0)
    cfg = load_config(ROOT / "tasks" / f"{task}.yaml", ["logging.tracker=none"] + TINY[task])
    built = build_run(cfg, datasets=False, init=False)
    for m in built.models.values():  # non-trivial BN statistics, so that eval mode matters
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
    info = runs.export_info(built.recipe.task, cfg.to_dict(), list(built.models), built.recipe.export_meta(), 0, [])
    runs.write_export(folder, {s: m.state_dict() for s, m in built.models.items()}, info)
    return folder


@pytest.mark.parametrize("task", sorted(TINY))
def test_every_tasks_network_exports_and_onnxruntime_agrees(task: str, tmp_path: Path) -> None:
    model = load_model(make_export(task, tmp_path / "export"), device="cpu")
    done = export_onnx(model, tmp_path / "onnx")
    assert [d.slot for d in done] == SLOTS.get(task, ["generator"]) and all(d.path.is_file() for d in done)
    assert all(d.max_abs_diff <= TOLERANCE * d.value_range for d in done)
    # and independently of export_onnx's own check: another batch size and image size again
    net, onnx = model.nets[done[-1].slot], OnnxNet(done[-1].path)
    g = torch.Generator().manual_seed(5)
    if "z" in done[0].inputs:
        args = [torch.randn(3, model.meta["z_dim"], generator=g)]
        if "label" in done[0].inputs:
            args.append(torch.tensor([0, 9, 4]))
    else:
        side = 3 * max(int(model.meta.get("multiple", 1) or 1), 16)
        args = [torch.rand(3, net.state_dict()[next(iter(net.state_dict()))].shape[1], side, side + 16, generator=g)]
    with torch.no_grad():
        want = net(*args)
    got = onnx(*args)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, atol=TOLERANCE * float(want.max() - want.min()), rtol=0)


def test_a_wrong_onnx_graph_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check can fail: a network whose traced graph differs from its eager run is refused."""
    model = load_model(make_export("srresnet", tmp_path / "export"), device="cpu")

    class Drifting(torch.nn.Module):  # eager adds 1 after tracing: the exported graph lacks it
        def __init__(self, net: torch.nn.Module):
            super().__init__()
            self.net, self.traced = net, False

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.net(x)
            return out + 1 if torch.jit.is_tracing() is False and self.traced else out

    wrapped = Drifting(model.generator)
    model.nets["generator"] = wrapped
    real_export = torch.onnx.export

    def export_then_drift(*a, **k):  # noqa: ANN002, ANN003, ANN202
        real_export(*a, **k)
        wrapped.traced = True

    monkeypatch.setattr(torch.onnx, "export", export_then_drift)
    with pytest.raises(OnnxError, match=r"generator\.onnx: onnxruntime differs from PyTorch"):
        export_onnx(model, tmp_path / "onnx")
    assert sorted(p.name for p in (tmp_path / "onnx").iterdir()) == []  # nothing that failed its check is left


def test_onnx_net_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(OnnxError, match="no such ONNX file"):
        OnnxNet(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(OnnxError, match="cannot load it"):
        OnnxNet(bad)


def test_a_malformed_onnx_file_is_refused_by_the_checker(tmp_path: Path) -> None:
    """The ONNX checker runs on every export: a file whose graph is broken is one line naming it."""
    import onnx

    from i2i.onnx_export import _check_graph

    model = load_model(make_export("srresnet", tmp_path / "export"), device="cpu")
    good = export_onnx(model, tmp_path / "onnx", verify=False)[0].path
    graph = onnx.load(str(good))
    graph.graph.node[0].input[0] = "no_such_tensor"  # a node reading a value nothing produces
    bad = tmp_path / "bad.onnx"
    onnx.save(graph, str(bad))
    with pytest.raises(OnnxError, match=r"bad.onnx: not a valid ONNX model"):
        _check_graph(bad)
