"""i2i.perf: every speed option gives fp32's numbers within a stated tolerance.

Tolerances (all on CPU, tiny shapes):
* BN folding, channels_last: max |Δ| ≤ 1e-5 against the fp32 eager contiguous model — the
  same arithmetic in another order, so only float round-off differs.
* bf16 autocast: PSNR(bf16 output, fp32 output) > 40 dB for the shipped SRResNet on a real
  photo crop (bf16 keeps 8 mantissa bits: ~2.4 decimal digits per operation); training-step
  losses within 3 % relative.

resolve_device (the one device rule) and inference_dtype (--fast's fp16/bf16 choice) are in
the last section: their CUDA branches are checked on the CPU by monkeypatching ``torch.cuda``'s
queries (the rule is what is tested, not a GPU). The fused optimizer default is tested in
tests/test_engine_optim.py.
"""
from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import load_tool
from torch import nn

from i2i import perf
from i2i.errors import ConfigError
from i2i.nn.patchgan import PatchGAN
from i2i.nn.srresnet import SRResNet
from i2i.nn.unet import UNet

ROOT = Path(__file__).resolve().parent.parent


def _random_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial running statistics and affine parameters (fresh BN would fold to identity)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.2)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.2)
    return model


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = (a.double() - b.double()).square().mean().item()
    return float("inf") if mse == 0 else 10 * torch.log10(torch.tensor(1.0 / mse)).item()


def _bn_count(m: nn.Module) -> int:
    return sum(isinstance(x, nn.BatchNorm2d) for x in m.modules())


# ----------------------------------------------------------------------------- BN folding
@pytest.mark.parametrize("make, shape", [
    (lambda: SRResNet(4, width=8, num_blocks=2), (2, 3, 8, 8)),
    (lambda: UNet(in_channels=1, out_channels=3, num_downs=3, base_channels=8, norm="batch"), (2, 1, 16, 16)),
    (lambda: PatchGAN(in_channels=4, n_layers=2, base_channels=8, norm="batch"), (2, 4, 32, 32)),
])
def test_fold_batchnorm_matches_eval_model(make, shape):
    torch.manual_seed(0)
    model = _random_bn(make()).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(*shape)
    folded = perf.fold_batchnorm(model)
    with torch.no_grad():
        ref, out = model(x), folded(x)
    assert _bn_count(model) > 0 and _bn_count(folded) == 0  # SRResNet: conv-BN pairs; U-Net: also ConvTranspose-BN
    assert not folded.training
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    # the original is untouched: same modules, same values
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_fold_batchnorm_keeps_train_mode_original_and_skips_unfoldable():
    bn = nn.BatchNorm2d(4, track_running_stats=False)  # batch statistics even in eval: not foldable
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), bn, nn.ReLU(), nn.BatchNorm2d(4))  # 2nd BN follows ReLU
    model.train()
    folded = perf.fold_batchnorm(model)
    assert model.training and isinstance(model[1], nn.BatchNorm2d)
    assert isinstance(folded[1], nn.BatchNorm2d) and isinstance(folded[3], nn.BatchNorm2d)


# ----------------------------------------------------------------------------- channels_last
def test_channels_last_matches_contiguous():
    torch.manual_seed(0)
    model = _random_bn(SRResNet(4, width=8, num_blocks=2)).eval()
    x = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        ref = model(x)
        cl_model = perf.to_channels_last(perf.fold_batchnorm(model))  # a copy: `model` stays NCHW
        cl_x = perf.to_channels_last(x)
        assert cl_x.is_contiguous(memory_format=torch.channels_last)
        out = cl_model(cl_x)
        out_plain_unfolded = perf.to_channels_last(model)(cl_x)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(out_plain_unfolded, ref, atol=1e-5, rtol=0)


# ----------------------------------------------------------------------------- precision
def test_autocast_dtype_choices():
    assert perf.autocast_dtype("cpu", "fp32") is None
    assert perf.autocast_dtype("cpu", "bf16") is torch.bfloat16
    expected = torch.bfloat16 if perf.cpu_has_native_bf16() else None
    assert perf.autocast_dtype("cpu", "auto") is expected
    with pytest.raises(ValueError, match="precision"):
        perf.autocast_dtype("cpu", "int8")  # type: ignore[arg-type]
    with perf.autocast("cpu", "fp32"):
        assert not torch.is_autocast_enabled("cpu")
    with perf.autocast("cpu", "bf16"):
        assert torch.is_autocast_enabled("cpu")


def _shipped_or_random() -> nn.Module:
    from i2i.inference import SHIPPED, load_model

    if (SHIPPED["sr"] / "config.json").is_file():
        return load_model(None, task="sr").generator.eval()
    torch.manual_seed(0)
    return _random_bn(SRResNet(4, width=16, num_blocks=2)).eval()


def test_bf16_autocast_srresnet_psnr_vs_fp32():
    from skimage import data

    from i2i.data.resize import imresize

    photo = torch.from_numpy(data.coffee()).permute(2, 0, 1).float().div(255)[None]
    hr = photo[..., 100:196, 200:296]  # 96×96 crop of a photo the shipped model never trained on
    lr = imresize(hr, scale=0.25).clamp(0, 1)
    model = _shipped_or_random()
    with torch.no_grad():
        ref = model(lr).clamp(0, 1)
        fast_model = perf.prepare_inference(model, fold_bn=True, channels_last=True)
        with perf.autocast("cpu", "bf16"):
            out = fast_model(perf.to_channels_last(lr))
        assert out.dtype == torch.bfloat16
        out = out.float().clamp(0, 1)
    assert _psnr(out, ref) > 40.0


# ----------------------------------------------------------------------------- compile / flops
def test_maybe_compile_disabled_is_identity():
    m = nn.Conv2d(1, 1, 1)
    assert perf.maybe_compile(m, enabled=False) is m


def test_count_flops_conv_closed_form():
    conv = nn.Conv2d(3, 8, 3, padding=1)
    x = torch.randn(1, 3, 10, 10)
    # 2 FLOPs per multiply-add: 2 · C_out · C_in · k² · H · W
    assert perf.count_flops(lambda: conv(x)) == 2 * 8 * 3 * 9 * 100


def test_frozen_restores_flags():
    m = nn.Linear(2, 2)
    m.bias.requires_grad_(False)
    with perf.frozen(m):
        assert not any(p.requires_grad for p in m.parameters())
    assert m.weight.requires_grad and not m.bias.requires_grad


# ----------------------------------------------------------------------------- the benchmark's step
def _bench():
    return load_tool("bench")


def test_bench_options_parse():
    bench = _bench()
    fast = bench.parse_options("fast")
    assert fast.channels_last and fast.fold and fast.precision == "auto" and not fast.unfused
    plain, default = bench.parse_options("plain"), bench.parse_options("default")
    assert plain.unfused and plain.precision == "fp32" and not plain.channels_last
    assert not default.unfused and default.precision == "fp32"
    assert bench.parse_options("auto+cl+vgg32").vgg32 and bench.parse_options("auto+cl+vgglp").vgglp
    assert fast.plan and not default.plan  # training targets: "fast" is train.fast's plan
    o = bench.parse_options("bf16+cl+compile")
    assert (o.precision, o.channels_last, o.fold, o.compile) == ("bf16", True, False, True)
    with pytest.raises(SystemExit, match="unknown option"):
        bench.parse_options("bf16+turbo")


@pytest.mark.parametrize("target, bf16_max_err, bf16_min_cos", [
    ("srresnet", 1e-2, 0.999),  # pixel MSE: bf16 changes G's gradient by ~0.4 % (measured)
    # SRGAN: measured 27 % gradient error, cosine 0.96. Not the VGG's doing: with random VGG
    # weights its relu5_4 features are ~1e-6 and the content term ~1e-13, and running the VGG
    # in fp32 (bench flag vgg32) gives the identical gradient; it is the adversarial term
    # (1e-3 · BCE of D's bf16 logits) whose small gradient bf16 rounds coarsely
    ("srgan", 0.5, 0.9),
])
def test_bench_train_step_options_agree_with_fp32(target, bf16_max_err, bf16_min_cos):
    """One tiny engine-style step per option, from the same weights and batch.

    Compared: G's loss and G's gradient (all parameters as one vector g), by relative norm
    error ‖g − g_fp32‖ / ‖g_fp32‖ and cosine. (Not the weights: Adam's first update is
    −lr·g/(|g| + ε), so a round-off change of a gradient entry near ε moves a weight by up
    to lr.) channels_last: loss within 1e-5, gradient error < 1e-4. bf16 autocast: loss
    within 3 %, gradient error and cosine as parametrised.
    """
    import i2i  # noqa: F401

    bench = _bench()
    cpu = torch.device("cpu")
    w = bench.train_target(target, {"batch": 2, "hr": 32, "width": 8, "blocks": 1}, cpu)
    if "discriminator" in w.optim:
        # D steps before G's gradient is taken; with Adam, D's first update −lr·g/(|g| + ε)
        # would turn round-off in D's tiny gradients into lr-sized changes. SGD stays linear.
        w.optim["discriminator"] = {"type": "sgd", "lr": 1.0e-4}
    loss, grads = {}, {}
    for name in ("plain", "cl", "bf16+cl"):
        step = bench.make_train_step(w, bench.parse_options(name), cpu)
        torch.manual_seed(0)
        loss[name] = step().float().item()
        # zero_grad(set_to_none) runs before backward, so .grad still holds this step's gradient
        grads[name] = torch.cat([p.grad.flatten() for p in step.models["generator"].parameters()]).double()

    def rel_err(name: str) -> float:
        return ((grads[name] - grads["plain"]).norm() / grads["plain"].norm()).item()

    assert loss["cl"] == pytest.approx(loss["plain"], abs=1e-5, rel=1e-5)
    assert rel_err("cl") < 1e-4
    assert loss["bf16+cl"] == pytest.approx(loss["plain"], rel=0.03)
    assert rel_err("bf16+cl") < bf16_max_err
    assert torch.nn.functional.cosine_similarity(grads["bf16+cl"], grads["plain"], 0).item() > bf16_min_cos


_FAULTS = """
import resource, sys, torch
from i2i.perf import tune_allocator
print(tune_allocator(), file=sys.stderr)
for i in range(12):
    if i == 2:
        start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t = torch.empty(16 * 2**20).fill_(1.0)  # 64 MiB, freed at the next assignment
    del t
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start)
"""


def test_tune_allocator_stops_page_faults_on_reused_activations():
    """With the setting, a freed 64 MiB tensor's pages are reused; glibc's default maps fresh ones."""
    import subprocess

    def faults(env_value: str) -> tuple[int, str]:
        env = dict(os.environ, I2I_TUNE_MALLOC=env_value)
        out = subprocess.run([sys.executable, "-c", _FAULTS], env=env, capture_output=True, text=True, check=True)
        return int(out.stdout.strip().splitlines()[-1]), out.stderr.strip().splitlines()[-1]

    tuned, took = faults("1")
    default, took_default = faults("0")
    assert (took, took_default) == ("True", "False")
    pages = 64 * 2**20 // 4096  # 16,384 per fresh 64 MiB block
    assert default > 8 * pages  # 10 allocations: each one faulted in again
    # reused; an occasional block is faulted again (the kernel may reclaim idle pages: this
    # machine runs DAMON's kdamond) — measured 0 or 1 blocks over 10
    assert tuned < 3 * pages


_TRIM = """
import sys, torch
from i2i.perf import release_free_memory, tune_allocator
def rss():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1]) // 1024
tune_allocator()
t = torch.empty(64 * 2**20).fill_(1.0)  # 256 MiB from the heap, kept there when freed
del t
kept = rss()
released = release_free_memory()
print(released, kept - rss())
"""


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's malloc_trim")
def test_release_free_memory_gives_the_kept_heap_back():
    """After tune_allocator a freed 256 MiB tensor stays resident; release_free_memory returns it."""
    import subprocess

    out = subprocess.run([sys.executable, "-c", _TRIM], capture_output=True, text=True, check=True)
    released, dropped = out.stdout.split()
    assert released == "True" and int(dropped) > 200  # MiB


# ----------------------------------------------------------------------------- --fast inference
def _shipped_or_small():
    from i2i.inference import SHIPPED, load_model

    if (SHIPPED["sr"] / "config.json").is_file():
        return load_model(None, task="sr").generator.eval()
    from i2i.nn.srresnet import SRResNet

    return SRResNet(4, width=16, num_blocks=2).eval()


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_fast_inference_psnr_within_0_05_db_of_fp32(precision):
    """The --fast configuration on the shipped ×4 model and a real photo it never saw.

    Tolerances: PSNR against the HR photo within 0.05 dB of the plain fp32 output's (the
    issue's bound); the outputs themselves ≥ 45 dB apart (measured ~56 dB in bf16) and,
    with fp32 (only BN folding and NHWC change the arithmetic), ≥ 80 dB.
    """
    from skimage import data

    from i2i.data.resize import imresize
    from i2i.perf import fast_inference

    hr = torch.from_numpy(data.coffee()[100:292, 200:392].copy()).permute(2, 0, 1).float().div(255)[None]
    lr = imresize(hr, scale=0.25).clamp(0, 1)
    net = _shipped_or_small()
    with torch.inference_mode():
        ref = net(lr).clamp(0, 1)
        fast = fast_inference(net, "cpu", precision=precision)
        out = fast(lr).clamp(0, 1)
    assert out.dtype == torch.float32 and out.shape == ref.shape

    def psnr(a, b):
        return (10 * torch.log10(1 / (a - b).square().mean())).item()

    assert abs(psnr(out, hr) - psnr(ref, hr)) <= 0.05
    assert psnr(out, ref) >= (45 if precision == "bf16" else 80)


def test_fast_inference_wrapper_reads_through_attributes():
    from i2i.nn.srresnet import SRResNet
    from i2i.perf import FastInference, fast_inference

    net = SRResNet(2, width=8, num_blocks=1)
    fast = fast_inference(net, "cpu", precision="fp32")
    assert isinstance(fast, FastInference) and fast.scale == 2 and not fast.training
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())  # folded
    with pytest.raises(AttributeError):
        _ = fast.no_such_attribute


# ----------------------------------------------------------------------------- short training runs
def _short_sr_run(tmp_path, name: str, extra: list[str]) -> list[float]:
    import json

    from accelerate.state import AcceleratorState

    from i2i import config
    from i2i.engine import trainer

    # Accelerate keeps one process-wide state, fixed by the first Accelerator's mixed_precision;
    # these runs differ in it, so each starts from a fresh state (as a new process would)
    AcceleratorState._reset_state(reset_partial_state=True)
    root = Path(__file__).resolve().parents[1]
    cfg = config.load_config(root / "tasks" / "srresnet.yaml", [
        "models.generator.width=8", "models.generator.num_blocks=1", "data.patch_size=24", "data.batch_size=4",
        "data.num_workers=0", "data.repeat=4", "train.max_steps=60", "train.log_every=1", "train.ckpt_every=60",
        "eval.every=0", "eval.at_end=false", "logging.tracker=none", "logging.sample_every=0",
        "logging.progress=false", "optim.generator.lr=1.0e-3", *extra])
    run = trainer.Trainer(cfg, output_dir=tmp_path / name).fit()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [r["g/pixel"] for r in rows if "g/pixel" in r]


@pytest.mark.parametrize("option", [
    ["train.mixed_precision=bf16"],
    ["train.channels_last=true"],
    pytest.param(["train.compile=true"], marks=[pytest.mark.slow, pytest.mark.skipif(
        not __import__("i2i.perf", fromlist=["can_compile"]).can_compile("cpu"), reason="no C++ compiler")]),
])
def test_short_training_run_with_speed_option_reaches_fp32_loss_range(tmp_path, option):
    """60 SRResNet steps from the same seed and batches: the last 20 steps' mean pixel loss
    with the option is within 10 % of fp32's (measured: bf16 −0.2 %, channels_last and
    compile −8e-6), and both runs learned (≥ 2× below the first 5 steps')."""
    base = _short_sr_run(tmp_path, "fp32", ["train.mixed_precision=no"])
    other = _short_sr_run(tmp_path, "opt", option)
    assert len(base) == len(other) == 60

    def mean(v):
        return sum(v) / len(v)

    for losses in (base, other):
        assert mean(losses[-20:]) < 0.5 * mean(losses[:5])
    assert mean(other[-20:]) == pytest.approx(mean(base[-20:]), rel=0.10)


def test_fast_inference_wrapper_copies_and_pickles():
    import copy
    import pickle

    from i2i.nn.srresnet import SRResNet
    from i2i.perf import fast_inference

    fast = fast_inference(SRResNet(2, width=8, num_blocks=1), "cpu", precision="fp32")
    x = torch.rand(1, 3, 6, 6)
    for clone in (copy.deepcopy(fast), pickle.loads(pickle.dumps(fast))):
        assert clone.scale == 2
        torch.testing.assert_close(clone(x), fast(x))


@pytest.mark.skipif(not __import__("i2i.perf", fromlist=["can_compile"]).can_compile("cpu"), reason="no C++ compiler")
def test_compiled_inference_matches_eager(device):
    """torch.compile (Inductor) on the inference path: same output as eager fp32 within 1e-4
    (fusion reorders float sums; measured max |Δ| ~1e-6 on CPU). The reference is computed in
    float64 on the CPU: on CUDA, eager and Inductor may pick different conv algorithms, and
    TF32 is switched off for the comparison so that "fp32" means fp32 on both sides."""
    from i2i.nn.srresnet import SRResNet
    from i2i.perf import fast_inference

    torch.manual_seed(0)
    net = SRResNet(2, width=8, num_blocks=1).eval()
    x = torch.rand(1, 3, 12, 10)
    with torch.inference_mode():
        ref = copy.deepcopy(net).double()(x.double()).float()
    prev = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        with torch.inference_mode():
            out = fast_inference(net.to(device), device.type, precision="fp32", compile=True)(x.to(device))
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = prev
    torch.testing.assert_close(out.cpu(), ref, atol=1e-4, rtol=1e-4)


# ============================================================================= devices and --fast's precision
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


# ----------------------------------------------------------------------------- train.fast: the plan
def test_fast_plan_on_a_cpu_with_native_bf16(monkeypatch):
    monkeypatch.setattr(perf, "cpu_has_native_bf16", lambda: True)
    plan = perf.training_plan("cpu", fast=True, can_compile_here=True)
    assert (plan.mixed_precision, plan.channels_last, plan.fused_optimizers, plan.compile, plan.cudnn_benchmark) == (
        "bf16", True, True, False, False)
    assert plan.autocast_dtype() is torch.bfloat16
    assert plan.summary().startswith("fast: bf16 autocast, channels_last, fused optimizers; compile off (≤ 6 % per step")
    assert perf.fast_training_plan("cpu") == perf.training_plan("cpu", fast=True)  # compile off either way


def test_fast_plan_on_a_cpu_without_native_bf16_stays_fp32(monkeypatch):
    monkeypatch.setattr(perf, "cpu_has_native_bf16", lambda: False)
    plan = perf.training_plan("cpu", fast=True)
    assert (plan.mixed_precision, plan.channels_last, plan.fused_optimizers, plan.compile) == ("no", True, True, False)
    assert plan.autocast_dtype() is None
    assert "fast: fp32, channels_last" in plan.summary() and "emulated bf16 is slower than fp32" in plan.summary()


@pytest.mark.parametrize("capability, precision", [((9, 0), "bf16"), ((8, 0), "bf16"), ((7, 5), "fp16"), ((6, 1), "fp16")])
def test_fast_plan_on_cuda_follows_the_compute_capability(monkeypatch, capability, precision):
    """Ampere and later: bf16 (fp32's range, no scaler); older GPUs: fp16 + Accelerate's GradScaler,
    even where ``torch.cuda.is_bf16_supported()`` would say yes by emulation."""
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    plan = perf.training_plan("cuda", fast=True, can_compile_here=True)
    assert plan.mixed_precision == precision and plan.channels_last and plan.fused_optimizers
    assert plan.cudnn_benchmark and not plan.compile and "not measured on cuda" in dict(plan.reasons)["compile"]
    assert ("fp16 autocast + GradScaler" in plan.summary()) == (precision == "fp16")
    assert not perf.training_plan("cuda", fast=True, deterministic=True).cudnn_benchmark  # autotuning breaks exact resume


def test_explicit_keys_win_over_fast(monkeypatch):
    monkeypatch.setattr(perf, "cpu_has_native_bf16", lambda: True)
    plan = perf.training_plan("cpu", fast=True, mixed_precision="no", channels_last=False, compile=True,
                              can_compile_here=True)
    assert (plan.mixed_precision, plan.channels_last, plan.compile, plan.fused_optimizers) == ("no", False, True, True)
    assert dict(plan.reasons) == {"mixed_precision": "train.mixed_precision=no", "channels_last": "train.channels_last=false",
                                  "compile": "train.compile=true"}
    assert not perf.training_plan("cpu", compile=True, can_compile_here=False).compile  # no compiler: eager, said so
    # without fast every piece is its key's value; precision None = the launcher's
    off = perf.training_plan("cpu")
    assert (off.mixed_precision, off.channels_last, off.compile, off.fused_optimizers, off.fast) == (None, False, False,
                                                                                                      False, False)
    assert perf.training_plan("cpu", mixed_precision="bf16", channels_last=True).channels_last


def test_fast_turns_channels_last_off_only_for_networks_without_convolutions(monkeypatch):
    monkeypatch.setattr(perf, "cpu_has_native_bf16", lambda: True)
    mlp, conv = nn.Sequential(nn.Linear(4, 4)), nn.Sequential(nn.Conv2d(3, 4, 3))
    assert not perf.fast_training_plan("cpu", mlp).channels_last
    assert perf.fast_training_plan("cpu", mlp, conv).channels_last
    explicit = perf.training_plan("cpu", fast=True, channels_last=True).for_networks(mlp)
    assert explicit.channels_last  # an explicit key is kept as given


@pytest.mark.parametrize("flags, capability, native", [
    ("fpu avx2 avx512f avx512_bf16", "AVX512", True),
    ("fpu avx2 avx512f amx_bf16 amx_tile", "AVX512", True),
    ("fpu avx2 avx512f avx512bw", "AVX512", False),  # AVX-512 alone: oneDNN would emulate bf16
    (None, "AMX", True),  # no /proc/cpuinfo: PyTorch's capability decides
    (None, "AVX2", False),
])
def test_cpu_native_bf16_detection(monkeypatch, flags, capability, native):
    import builtins
    import io

    real_open = builtins.open

    def fake_open(path, *a, **k):
        if str(path) == "/proc/cpuinfo":
            if flags is None:
                raise OSError("no cpuinfo")
            return io.StringIO(f"processor\t: 0\nflags\t\t: {flags}\n")
        return real_open(path, *a, **k)

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    perf.cpu_has_native_bf16.cache_clear()
    try:
        assert perf.cpu_has_native_bf16() is native
    finally:
        perf.cpu_has_native_bf16.cache_clear()


def test_fast_optimizers():
    from i2i.engine.optim import build_optimizer

    p = [nn.Parameter(torch.zeros(3))]
    assert build_optimizer({"type": "sgd", "lr": 0.1}, "optim.g", p, fast=True).defaults["fused"]
    assert not build_optimizer({"type": "sgd", "lr": 0.1}, "optim.g", p).defaults.get("fused")
    assert build_optimizer({"type": "rmsprop", "lr": 0.1}, "optim.g", p, fast=True).defaults["foreach"]
    assert build_optimizer({"type": "adam", "lr": 0.1}, "optim.g", p, fast=True).defaults["fused"]
    assert not build_optimizer({"type": "sgd", "lr": 0.1, "fused": False}, "optim.g", p, fast=True).defaults["fused"]


@pytest.mark.parametrize("native", [True, False])
def test_bench_fast_training_step_is_train_fast(monkeypatch, native):
    """The benchmark's "fast" training step runs the plan the trainer would: on a CPU without
    native bf16 that is fp32 + NHWC + fused optimizers, so its loss equals the ``cl`` step's."""
    import i2i  # noqa: F401

    monkeypatch.setattr(perf, "cpu_has_native_bf16", lambda: native)
    bench = _bench()
    cpu = torch.device("cpu")
    w = bench.train_target("srresnet", {"batch": 2, "hr": 16, "width": 8, "blocks": 1}, cpu)
    step = bench.make_train_step(w, bench.parse_options("fast"), cpu)
    assert step.plan == perf.fast_training_plan(cpu, *w.models.values()).summary()
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in step.models["generator"].parameters()
               if p.dim() == 4)
    torch.manual_seed(0)
    fast_loss = step().float().item()
    torch.manual_seed(0)
    cl_loss = bench.make_train_step(w, bench.parse_options("cl"), cpu)().float().item()
    if native:
        assert fast_loss == pytest.approx(cl_loss, rel=0.03) and fast_loss != cl_loss  # bf16 changes the numbers
    else:
        assert fast_loss == pytest.approx(cl_loss, rel=1e-6)
