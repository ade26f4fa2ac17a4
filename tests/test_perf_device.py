"""i2i.perf.resolve_device (the one device rule) and inference_dtype (--fast's fp16/bf16 choice).

The CUDA branches are checked on the CPU by monkeypatching ``torch.cuda``'s queries: the rule
is what is tested, not a GPU.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from i2i import perf
from i2i.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def _fake_cuda(monkeypatch: pytest.MonkeyPatch, count: int = 2, bf16: bool = True) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(perf, "_cuda_bf16", lambda: bf16)
    monkeypatch.delenv("ACCELERATE_USE_CPU", raising=False)


# ----------------------------------------------------------------------------- resolve_device
def test_default_device_is_cuda_when_present(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_cuda(monkeypatch)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert perf.resolve_device(None) == torch.device("cuda", 0)
    assert perf.resolve_device("auto") == torch.device("cuda", 0)
    monkeypatch.setenv("LOCAL_RANK", "3")  # a multi-GPU launch: each process its own GPU
    assert perf.resolve_device(None) == torch.device("cuda", 1)
    assert perf.resolve_device("cpu") == torch.device("cpu")  # --device cpu forces the CPU
    assert perf.resolve_device("cuda:1") == torch.device("cuda", 1)
    monkeypatch.setenv("ACCELERATE_USE_CPU", "true")  # accelerate launch --cpu
    assert perf.resolve_device(None) == torch.device("cpu")


def test_default_device_is_cpu_without_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert perf.resolve_device(None) == torch.device("cpu")
    with pytest.raises(ConfigError, match=r"^--device: cuda was requested but CUDA is not available"):
        perf.resolve_device("cuda")


@pytest.mark.parametrize("name, words", [("gpu0", "unknown device"), ("cuda:7", "does not exist"),
                                         ("meta", "unsupported device")])
def test_bad_device_names_are_one_line_errors(monkeypatch: pytest.MonkeyPatch, name: str, words: str) -> None:
    _fake_cuda(monkeypatch)
    with pytest.raises(ConfigError, match=words) as e:
        perf.resolve_device(name)
    assert str(e.value).startswith("--device: ") and "\n" not in str(e.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("tool", ["infer", "eval"])
def test_tools_refuse_cuda_where_there_is_none(tool: str) -> None:
    r = subprocess.run([sys.executable, str(ROOT / "tools" / f"{tool}.py"), "--task", "sr", "--device", "cuda", "x.png"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == ["error: --device: cuda was requested but CUDA is not available here; "
                                             "use --device cpu"]


def test_load_model_and_accelerator_follow_the_rule(device: torch.device) -> None:
    from accelerate.state import AcceleratorState

    from i2i.apps.common import make_accelerator
    from i2i.inference import load_model

    default = load_model(None, task="sr")
    assert next(default.generator.parameters()).device.type == perf.resolve_device().type
    model = load_model(None, task="sr", device=device)
    assert next(model.generator.parameters()).device.type == device.type
    AcceleratorState._reset_state(reset_partial_state=True)
    try:
        assert make_accelerator(device).device.type == device.type  # eval: model and batches agree
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)


# ----------------------------------------------------------------------------- inference_dtype
class _Scaled(nn.Module):
    """conv -> ×gain (functional, as a residual add would be) -> conv: peak ≈ gain."""

    def __init__(self, gain: float):
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b, self.gain = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 3, 3, padding=1), gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x) * self.gain) / self.gain


def _probe() -> tuple[torch.Tensor]:
    return (torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0)),)


def test_activation_peak_sees_functional_results_and_keeps_outputs() -> None:
    net = _Scaled(1e6).eval()
    with torch.no_grad():
        ref = net(*_probe())
    peak = perf.activation_peak(net, *_probe())
    assert 1e4 < peak < 1e8  # the ×1e6 between the convs is seen as b's input
    with torch.no_grad():
        assert torch.equal(net(*_probe()), ref)  # the hooks are gone and changed nothing


def test_fp16_for_tame_models_bf16_for_huge_activations(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_cuda(monkeypatch, bf16=True)
    tame, huge = _Scaled(1.0).eval(), _Scaled(1e6).eval()
    assert perf.inference_dtype(tame, "cuda", _probe()) is torch.float16
    assert perf.inference_dtype(huge, "cuda", _probe()) is torch.bfloat16
    assert perf.inference_dtype(tame, "cuda", None) is torch.bfloat16  # nothing known: range first
    # the check is real: fp16 overflows on the huge model, bf16 does not
    with torch.no_grad():
        x = _probe()[0]
        assert torch.isinf(huge.a(x).mul(huge.gain).half()).any()
        assert torch.isfinite(huge.a(x).mul(huge.gain).bfloat16()).all()
    _fake_cuda(monkeypatch, bf16=False)  # an older GPU: no bf16, so fp32 unless fp16 is safe
    assert perf.inference_dtype(huge, "cuda", _probe()) is None
    assert perf.inference_dtype(tame, "cuda", _probe()) is torch.float16


def test_fast_on_cpu_is_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    tame = _Scaled(1.0).eval()
    cpu_rule = perf.autocast_dtype("cpu", "auto")
    assert perf.inference_dtype(tame, "cpu", _probe()) is cpu_rule
    fast = perf.fast_inference(tame, "cpu", probe=_probe())
    assert fast.precision == {None: "fp32", torch.bfloat16: "bf16"}[cpu_rule]
    assert perf.fast_inference(tame, "cpu", precision="fp32").precision == "fp32"  # a forced choice stays


def test_sr_fast_picks_fp16_on_cuda_for_the_shipped_model(monkeypatch: pytest.MonkeyPatch) -> None:
    from i2i.pipelines.super_resolution import probe_input
    from i2i.inference import load_model

    model = load_model(None, task="sr", device="cpu")
    net = perf.fold_batchnorm(model.generator)
    _fake_cuda(monkeypatch)
    assert perf.inference_dtype(net, "cuda", probe_input(model)) is torch.float16
