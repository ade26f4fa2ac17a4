"""Speed helpers: BN folding, channels-last, autocast dtype choice, optional torch.compile.

Each helper is opt-in and returns a new object or a context; none changes a model in place
except :func:`to_channels_last` (which, like ``Module.to``, converts parameters in place).
Measured effects on the project's networks are in ``docs/performance.md``
(``tools/bench.py`` reproduces them).

* :func:`fold_batchnorm` — for an exported *inference* model: an eval-mode BatchNorm2d is
  an affine map per channel, so it can be merged into the preceding convolution's weight
  and bias (Ioffe & Szegedy 2015, §3.1 at inference; the usual "conv-BN fusion"). The
  network then does one pass over memory per layer instead of two.
* :func:`to_channels_last` — NHWC layout: oneDNN (CPU) and cuDNN (tensor cores) pick their
  fastest convolution kernels for it, and no reorder is needed between layers.
* :func:`autocast` / :func:`autocast_dtype` — bf16 on CPUs with native bf16 dot products
  (AVX512-BF16 or AMX), bf16 or fp16 on CUDA; fp32 elsewhere, where emulated bf16 is slower.
* :func:`inference_dtype` — the ``--fast`` dtype for one model: on CUDA fp16 when a probe
  forward shows its activations far inside fp16's range, else bf16; on CPU as :func:`autocast_dtype`.
* :func:`resolve_device` — the device rule of every tool and of the Python API: CUDA when
  present (as training), ``--device cpu`` to force the CPU.
* :func:`maybe_compile` — ``torch.compile`` when asked for and possible (Inductor needs a
  C++ compiler on CPU); otherwise the module unchanged.
* :func:`training_plan` / :func:`fast_training_plan` — ``train.fast``: which of the training
  speed-ups (autocast dtype, GradScaler, channels_last, fused optimizers, torch.compile, cuDNN
  autotuning) are on for a device, each with its reason; explicit ``train.*`` keys win.
* :func:`count_flops` — FLOPs of one call, by :class:`torch.utils.flop_counter.FlopCounterMode`.
* :func:`tune_allocator` — keep freed activation-sized blocks in glibc's heap instead of
  unmapping them (the tools call it at start; ``I2I_TUNE_MALLOC=0`` turns it off).
"""
from __future__ import annotations

import copy
import ctypes
import functools
import math
import os
import platform
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import torch
from torch import Tensor, nn

__all__ = ["fold_batchnorm", "to_channels_last", "cpu_has_native_bf16", "autocast_dtype", "autocast",
           "resolve_device", "activation_peak", "inference_dtype", "FP16_SAFE_PEAK",
           "maybe_compile", "can_compile", "count_flops", "prepare_inference", "frozen", "tune_allocator",
           "FastInference", "fast_inference", "compile_in_place", "TrainingPlan", "training_plan",
           "fast_training_plan", "cuda_has_native_bf16", "is_convolutional"]

Precision = Literal["fp32", "bf16", "fp16", "auto"]


# ----------------------------------------------------------------------------- BN folding
def _fold_pair(conv: nn.Conv2d | nn.ConvTranspose2d, bn: nn.BatchNorm2d) -> None:
    """Merge ``bn``'s eval-mode affine map into ``conv`` (in place on the copy).

    BN(y) = γ (y − μ) / √(σ² + ε) + β = s·y + (β − s·μ) with s = γ / √(σ² + ε), per output
    channel; with y = W∗x + b this is (s·W)∗x + (s·(b − μ) + β). Computed in float64 so
    the folded weights round once, not twice.
    """
    w = conv.weight.detach().double()
    mean, var = bn.running_mean.double(), bn.running_var.double()
    gamma = bn.weight.detach().double() if bn.weight is not None else torch.ones_like(mean)
    beta = bn.bias.detach().double() if bn.bias is not None else torch.zeros_like(mean)
    s = gamma / torch.sqrt(var + bn.eps)
    b = conv.bias.detach().double() if conv.bias is not None else torch.zeros_like(mean)
    if isinstance(conv, nn.ConvTranspose2d):  # weight (C_in, C_out, kh, kw): output channels on dim 1
        w = w * s.view(1, -1, 1, 1)
    else:  # weight (C_out, C_in/groups, kh, kw)
        w = w * s.view(-1, 1, 1, 1)
    dtype, device = conv.weight.dtype, conv.weight.device
    conv.weight = nn.Parameter(w.to(dtype=dtype, device=device), requires_grad=conv.weight.requires_grad)
    conv.bias = nn.Parameter(((b - mean) * s + beta).to(dtype=dtype, device=device))


def _foldable(conv: nn.Module, bn: nn.Module) -> bool:
    if not isinstance(bn, nn.BatchNorm2d) or bn.running_mean is None or bn.running_var is None:
        return False  # no running statistics: BN normalises with batch stats even in eval
    if isinstance(conv, nn.Conv2d):
        return conv.out_channels == bn.num_features
    if isinstance(conv, nn.ConvTranspose2d):
        return conv.groups == 1 and conv.out_channels == bn.num_features
    return False


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """A copy of ``module`` in eval mode with every Conv2d→BatchNorm2d pair merged.

    A pair is a ``Conv2d`` (or ``ConvTranspose2d`` with ``groups=1``) immediately followed
    by a ``BatchNorm2d`` with running statistics inside the same ``nn.Sequential`` — how
    every i2i network is built (:func:`i2i.nn.blocks.conv_norm_act`; SRResNet's residual
    blocks, U-Net and PatchGAN layers). The BN is replaced by ``nn.Identity`` so state-dict
    keys of the other layers keep their names. BNs used in other ways (called from
    ``forward`` code, after a non-conv layer) are left as they are.

    The result computes what ``module.eval()`` computes, within float round-off, and is
    meant for inference only: training it would no longer normalise anything. The
    original module is not modified.

    Args:
        module: any ``nn.Module``.
    Returns:
        the folded copy, in eval mode.
    """
    folded = copy.deepcopy(module).eval()
    for parent in folded.modules():
        if not isinstance(parent, nn.Sequential):
            continue
        names = list(parent._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = parent._modules[a], parent._modules[b]
            if conv is not None and bn is not None and _foldable(conv, bn):
                _fold_pair(conv, bn)  # type: ignore[arg-type]
                parent._modules[b] = nn.Identity()
    return folded


# ----------------------------------------------------------------------------- memory layout
def to_channels_last(x: nn.Module | Tensor) -> nn.Module | Tensor:
    """NHWC (``torch.channels_last``) version of a module (in place, like ``.to``) or a 4-D tensor.

    The values are unchanged; only the strides differ. Convolutions given an NHWC input
    produce NHWC outputs, so converting the model and its input once suffices.
    """
    if isinstance(x, Tensor):
        return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x
    return x.to(memory_format=torch.channels_last)


# ----------------------------------------------------------------------------- device
def resolve_device(name: str | torch.device | None = None) -> torch.device:
    """The device to run inference on: ``name``, or CUDA when present, as training picks it.

    ``None``/``"auto"``: the CPU under ``accelerate launch --cpu`` (``ACCELERATE_USE_CPU``) or
    without CUDA; else ``cuda:LOCAL_RANK`` (0 in a single process), so that each process of a
    multi-GPU launch loads its model where Accelerate will put it. ``"cpu"`` forces the CPU;
    ``"cuda"``/``"cuda:N"`` (``"mps"``) must exist. Raises:
        ConfigError: naming ``--device``, for an unknown name or an absent device.
    """
    from .distributed import use_cpu
    from .errors import ConfigError

    if name is None or str(name) == "auto":
        if use_cpu() or not torch.cuda.is_available():
            return torch.device("cpu")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"unknown device {str(name)!r}; expected cpu, cuda, cuda:N or auto", "--device") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{dev} was requested but CUDA is not available here; use --device cpu", "--device")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"{dev} does not exist ({torch.cuda.device_count()} CUDA device(s))", "--device")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError("mps was requested but is not available here; use --device cpu", "--device")
    elif dev.type != "cpu":
        raise ConfigError(f"unsupported device {str(name)!r}; expected cpu, cuda, cuda:N or auto", "--device")
    return dev


# ----------------------------------------------------------------------------- precision
@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 dot products natively (AVX512-BF16 or AMX-BF16).

    ``torch.backends.cpu.get_cpu_capability()`` reports only the vector width (``AVX512``),
    and oneDNN accepts bf16 on any AVX-512 CPU — but without the bf16 instructions it
    emulates them and is slower than fp32. So the CPU flags decide; where they cannot be
    read (not Linux) bf16 is used only if PyTorch's capability reports AMX.
    """
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool({"avx512_bf16", "amx_bf16"} & flags)
    except OSError:
        pass
    cap = torch.backends.cpu.get_cpu_capability() if hasattr(torch.backends, "cpu") else ""
    return "AMX" in cap.upper()


def autocast_dtype(device: str | torch.device, precision: Precision = "auto") -> torch.dtype | None:
    """The autocast dtype to use on ``device``, or ``None`` for plain fp32.

    ``auto``: CUDA → bf16 where supported (Ampere and later; no loss scaling needed), else
    fp16; CPU → bf16 if :func:`cpu_has_native_bf16`, else fp32. ``fp32``/``bf16``/``fp16``
    force a choice (``fp16`` on CPU is slow and meant only for tests).
    """
    kind = torch.device(device).type
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if precision != "auto":
        raise ValueError(f"precision must be fp32, bf16, fp16 or auto, got {precision!r}")
    if kind == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if kind == "cpu":
        return torch.bfloat16 if cpu_has_native_bf16() else None
    return None


FP16_SAFE_PEAK = 2.0**12
"""Largest probe activation for which ``--fast`` uses fp16 on CUDA: fp16 overflows at 65504,
so 4096 leaves 16× headroom for inputs brighter or busier than the probe."""


@torch.no_grad()
def activation_peak(net: nn.Module, *probe: Any) -> float:
    """Largest |value| entering or leaving any module of ``net`` in one fp32 forward on ``probe``.

    Forward hooks see every module's inputs and outputs, so the results of functional
    operations (a residual ``x + f(x)``) are seen as the next module's input. A non-finite
    value gives ``inf``. The net runs where its parameters are, in eval mode as given.
    """
    peak = 0.0

    def record(value: Any) -> None:
        nonlocal peak
        if isinstance(value, Tensor) and value.is_floating_point() and value.numel():
            peak = max(peak, value.detach().abs().max().float().item())
        elif isinstance(value, (tuple, list)):
            for v in value:
                record(v)

    def hook(_m: nn.Module, inputs: Any, output: Any) -> None:  # returns None: the output is kept
        record(inputs)
        record(output)

    hooks = [m.register_forward_hook(hook) for m in net.modules()]
    try:
        with torch.autocast(next(net.parameters()).device.type, enabled=False):
            net(*probe)
    finally:
        for h in hooks:
            h.remove()
    return peak if math.isfinite(peak) else math.inf


def _cuda_bf16() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def inference_dtype(net: nn.Module, device_type: str, probe: tuple[Any, ...] | None = None) -> torch.dtype | None:
    """The autocast dtype of ``--fast`` for ``net`` on ``device_type`` (None = fp32).

    CUDA: fp16 when ``probe`` is given and :func:`activation_peak` on it stays below
    :data:`FP16_SAFE_PEAK` — fp16 keeps 10 mantissa bits to bf16's 8, so it is the more
    accurate choice when nothing overflows; otherwise bf16 (fp32's range; no probe means
    nothing is known, so the range-safe choice), or fp32 on GPUs without bf16 where fp16
    is not known to be safe. CPU (and others): :func:`autocast_dtype`'s rule — bf16 where
    the CPU computes it natively, else fp32 — since fp16 on a CPU is slower than fp32.
    """
    if device_type != "cuda":
        return autocast_dtype(device_type, "auto")
    if probe is not None and activation_peak(net, *probe) < FP16_SAFE_PEAK:
        return torch.float16
    return torch.bfloat16 if _cuda_bf16() else None


def autocast(device: str | torch.device, precision: Precision = "auto") -> Any:
    """``torch.autocast`` context for ``device`` with :func:`autocast_dtype`'s choice.

    A no-op context when the choice is fp32. Outputs of autocast regions may be bf16/fp16:
    call ``.float()`` before metrics. For *training* in fp16 a gradient scaler is also
    needed (the engine's ``train.mixed_precision: fp16`` does that through Accelerate).
    """
    dtype = autocast_dtype(device, precision)
    if dtype is None:
        return nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


# ----------------------------------------------------------------------------- training: one switch
def cuda_has_native_bf16(device: str | torch.device = "cuda") -> bool:
    """Whether the CUDA device computes bf16 natively: compute capability 8.0 (Ampere) or later.

    Not ``torch.cuda.is_bf16_supported()``: by default it also says yes for older GPUs that only
    emulate bf16 (slower than fp16 with a GradScaler there).
    """
    major, minor = torch.cuda.get_device_capability(device)
    return (major, minor) >= (8, 0)


def is_convolutional(*modules: nn.Module) -> bool:
    """Whether any module holds a 2-D (transposed) convolution: where NHWC changes kernels."""
    return any(isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) for mod in modules for m in mod.modules())


# The CPU measurement behind "compile off" (README "Performance", tools/bench.py compile flag):
# SRResNet step 0.759 -> 0.734 s (fp32) and 0.423 -> 0.397 s (bf16), pix2pix 0.623 -> 0.648 s
# and 0.417 -> 0.413 s, for 21-25 s of compilation in the first step.
_COMPILE_CPU_WHY = "≤ 6 % per step on this CPU for 21-25 s of compilation: pays after ~1,000 steps; train.compile=true"


@dataclass(frozen=True)
class TrainingPlan:
    """The training speed settings a run uses, and why (what ``train.fast`` resolves to).

    Attributes:
        device: ``cpu`` / ``cuda`` / ...
        fast: whether ``train.fast`` asked for the device's safe speed-ups.
        mixed_precision: ``no`` / ``bf16`` / ``fp16`` for Accelerate (fp16 brings its
            GradScaler), or ``None``: the launcher / environment decides (not fast, no key).
        channels_last: NHWC networks and image batches.
        fused_optimizers: besides Adam/AdamW (fused by default), SGD fused and RMSprop foreach
            (:func:`i2i.engine.optim.build_optimizer`'s ``fast``).
        compile: ``torch.compile`` of every network, in place.
        cudnn_benchmark: cuDNN autotuning (CUDA, not with ``train.deterministic``).
        reasons: piece -> why it is on or off (printed, recorded in the run).
    """

    device: str
    fast: bool
    mixed_precision: str | None
    channels_last: bool
    fused_optimizers: bool
    compile: bool
    cudnn_benchmark: bool
    reasons: tuple[tuple[str, str], ...] = ()

    def autocast_dtype(self) -> torch.dtype | None:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.mixed_precision or "no")

    def for_networks(self, *modules: nn.Module) -> TrainingPlan:
        """The plan for these networks: ``fast`` turns NHWC off where nothing is convolutional
        (an explicit ``train.channels_last`` stays as given)."""
        why = dict(self.reasons)
        if self.fast and self.channels_last and why.get("channels_last", "").startswith("fast") \
                and not is_convolutional(*modules):
            why["channels_last"] = "fast: off, no 2-D convolution in the networks"
            return replace(self, channels_last=False, reasons=tuple(why.items()))
        return self

    def summary(self) -> str:
        """One line, e.g. ``fast: bf16 autocast, channels_last, fused optimizers; compile off (…)``."""
        mp = {"bf16": "bf16 autocast", "fp16": "fp16 autocast + GradScaler", "no": "fp32"}.get(
            self.mixed_precision or "", "precision from the launcher")
        on = [mp] + (["channels_last"] if self.channels_last else []) \
            + (["fused optimizers"] if self.fused_optimizers else ["fused Adam"]) \
            + (["cuDNN autotuning"] if self.cudnn_benchmark else []) + (["torch.compile"] if self.compile else [])
        why = dict(self.reasons)
        off = []
        if not self.compile:
            off.append(f"compile off ({why.get('compile', 'train.compile=true turns it on')})")
        if self.mixed_precision == "no" and "mixed_precision" in why:
            off.append(f"no autocast ({why['mixed_precision']})")
        head = "fast" if self.fast else "speed"
        return f"{head}: {', '.join(on)}" + (f"; {'; '.join(off)}" if off else "")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["reasons"] = dict(self.reasons)
        return d


def training_plan(device: str | torch.device, fast: bool = False, mixed_precision: str | None = None,
                  channels_last: bool | None = None, compile: bool | None = None, deterministic: bool = False,
                  can_compile_here: bool | None = None) -> TrainingPlan:
    """Resolve ``train.fast`` and the explicit ``train.*`` keys for ``device`` (one function decides).

    With ``fast`` (each piece only where an explicit key does not say otherwise):

    * precision: CUDA with compute capability ≥ 8.0 → bf16 autocast (fp32's range: no loss
      scaling); older CUDA → fp16 autocast with Accelerate's GradScaler; a CPU with native bf16
      dot products (AVX512-BF16 / AMX, :func:`cpu_has_native_bf16`) → bf16; any other CPU →
      fp32 (emulated bf16 is slower than fp32). Losses, GAN logits and EMA stay fp32 either way
      (the losses cast to float before reducing; EMA runs outside autocast).
    * channels_last: on (turned off again for networks without 2-D convolutions,
      :meth:`TrainingPlan.for_networks`).
    * fused optimizers: SGD fused and RMSprop foreach too (Adam/AdamW are fused by default).
    * torch.compile: off — on the CPU measured not to pay for runs under ~1,000 steps; on CUDA
      not measured yet.
    * cuDNN autotuning on CUDA unless ``deterministic``.

    Without ``fast`` every piece is its key's value (``None`` = off; precision ``None`` = the
    launcher's). ``can_compile_here`` overrides :func:`can_compile` (tests).
    """
    kind = torch.device(device).type
    why: dict[str, str] = {}
    mp = mixed_precision
    if mp is not None:
        why["mixed_precision"] = f"train.mixed_precision={mp}"
    elif fast:
        if kind == "cuda":
            if cuda_has_native_bf16(device):
                mp, why["mixed_precision"] = "bf16", "fast: CUDA compute capability >= 8.0 (native bf16)"
            else:
                mp, why["mixed_precision"] = "fp16", "fast: CUDA compute capability < 8.0: fp16 with a GradScaler"
        elif kind == "cpu" and cpu_has_native_bf16():
            mp, why["mixed_precision"] = "bf16", "fast: CPU with native bf16 (AVX512-BF16/AMX)"
        else:
            mp, why["mixed_precision"] = "no", f"fast: {kind} without native bf16: emulated bf16 is slower than fp32"
    if channels_last is not None:
        cl, why["channels_last"] = channels_last, f"train.channels_last={str(channels_last).lower()}"
    else:
        cl = fast
        if fast:
            why["channels_last"] = "fast: NHWC, the layout oneDNN and cuDNN convolutions prefer"
    compiles = can_compile(kind) if can_compile_here is None else can_compile_here
    if compile is not None:
        comp = compile and compiles
        why["compile"] = f"train.compile={str(compile).lower()}" + ("" if compiles or not compile else ": no compiler here")
    else:
        comp = False
        if fast:
            why["compile"] = _COMPILE_CPU_WHY if kind == "cpu" else f"not measured on {kind} yet; train.compile=true"
    bench = fast and kind == "cuda" and not deterministic
    return TrainingPlan(kind, fast, mp, cl, fast, comp, bench, tuple(why.items()))


def fast_training_plan(device: str | torch.device, *modules: nn.Module) -> TrainingPlan:
    """``train.fast: true`` with no explicit key, for ``device`` (and these networks, if given)."""
    plan = training_plan(device, fast=True)
    return plan.for_networks(*modules) if modules else plan


# ----------------------------------------------------------------------------- compilation
@functools.cache
def can_compile(device_type: str = "cpu") -> bool:
    """Whether ``torch.compile`` (Inductor) can run here: on CPU it needs a C++ compiler."""
    if not hasattr(torch, "compile"):
        return False
    if device_type == "cpu":
        return any(shutil.which(cc) for cc in ("g++", "c++", "clang++"))
    return True


def maybe_compile(module: nn.Module, enabled: bool, device_type: str = "cpu", **kwargs: Any) -> nn.Module:
    """``torch.compile(module, **kwargs)`` if ``enabled`` and :func:`can_compile`, else ``module``.

    Compilation happens lazily on the first call (tens of seconds on a CPU) and again for
    every new input shape unless ``dynamic=True``; worth it for long runs and fixed-size
    serving, not for a single image.
    """
    if not enabled or not can_compile(device_type):
        return module
    return torch.compile(module, **kwargs)  # type: ignore[return-value]


def compile_in_place(module: nn.Module, device_type: str = "cpu", **kwargs: Any) -> bool:
    """``module.compile()`` (same module object, same state-dict keys) if :func:`can_compile`.

    Returns whether it was compiled. Used by the trainer's ``train.compile``; unlike
    ``torch.compile(module)`` no ``_orig_mod.`` wrapper appears in checkpoints.
    """
    if not can_compile(device_type):
        return False
    module.compile(**kwargs)
    return True


# ----------------------------------------------------------------------------- one-stop inference
def prepare_inference(model: nn.Module, fold_bn: bool = True, channels_last: bool = True,
                      compile: bool = False, device_type: str = "cpu") -> nn.Module:
    """An eval-mode copy of ``model`` with the chosen speed options (BN folded, NHWC, compiled).

    Autocast is a property of the call, not of the model: wrap calls in :func:`autocast`.
    Inputs should then be passed through :func:`to_channels_last` too (outputs are correct
    either way; a contiguous input only costs one reorder in the first layer).
    """
    m = fold_batchnorm(model) if fold_bn else copy.deepcopy(model).eval()
    if channels_last:
        m = to_channels_last(m)  # type: ignore[assignment]
    return maybe_compile(m, compile, device_type)  # type: ignore[arg-type]


class FastInference(nn.Module):
    """Wraps a prepared network so that every call runs under :func:`autocast` with NHWC inputs.

    Returns float32 outputs, so callers (metrics, image writers) see what the plain network
    gives them. Attributes the wrapper lacks (``scale``, ``multiple``, ...) are read from
    the wrapped network, so front-ends can use it in place of the generator.
    """

    def __init__(self, net: nn.Module, device_type: str, precision: Precision = "auto", channels_last: bool = True):
        super().__init__()
        self.net = net
        self.device_type = device_type
        self.precision = precision
        self.channels_last = channels_last

    def forward(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        if self.channels_last and isinstance(x, Tensor):
            x = to_channels_last(x)
        with autocast(self.device_type, self.precision):
            y = self.net(x, *args, **kwargs)
        return y.float() if isinstance(y, Tensor) and y.is_floating_point() else y

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            net = self.__dict__.get("_modules", {}).get("net")  # absent while copying/unpickling
            if net is None:
                raise
            return getattr(net, name)


_PRECISION_OF: dict[torch.dtype | None, Precision] = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


def fast_inference(model: nn.Module, device: str | torch.device = "cpu", precision: Precision = "auto",
                   fold_bn: bool = True, channels_last: bool = True, compile: bool = False,
                   probe: tuple[Any, ...] | None = None) -> FastInference:
    """The fastest measured inference configuration (``tools/infer.py --fast``), as one module.

    :func:`prepare_inference` (BN folded, NHWC, optionally compiled) inside
    :class:`FastInference` (autocast). ``precision="auto"`` takes :func:`inference_dtype`
    for the prepared net and ``probe`` (the arguments of one typical call, on ``device``):
    on CUDA fp16 when the probe's activations stay far inside fp16's range, else bf16; on
    CPU bf16 where native, else fp32. Numerics: bf16 rounds activations to 8 mantissa
    bits; on the shipped ×4 model the output PSNR moves by ≤ 0.05 dB (``tools/bench.py
    --targets sr_quality``; tested in tests/test_perf.py). ``fold_bn=False`` where BN must
    still use batch statistics (pix2pix's ``--batch-stats``).
    """
    kind = torch.device(device).type
    net = prepare_inference(model, fold_bn=fold_bn, channels_last=channels_last, compile=compile, device_type=kind)
    if precision == "auto":  # decided once, here: every later call runs in the same dtype
        precision = _PRECISION_OF[inference_dtype(net, kind, probe)]
    return FastInference(net, kind, precision, channels_last).eval()


# ----------------------------------------------------------------------------- measurement
def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of one call of ``fn()`` (forward and, if ``fn`` calls it, backward).

    Uses :class:`~torch.utils.flop_counter.FlopCounterMode`, which counts matmuls and
    convolutions (2 FLOPs per multiply-add) — the operations that dominate these
    networks; element-wise work (activations, BN, optimizer updates) is not counted.
    """
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return int(counter.get_total_flops())


@contextmanager
def frozen(*modules: nn.Module | None) -> Iterator[None]:
    """Parameters of ``modules`` frozen (no grads computed for them) inside the block, then as they were."""
    saved = [(p, p.requires_grad) for m in modules if m is not None for p in m.parameters()]
    for p, _ in saved:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, was in saved:
            p.requires_grad_(was)


# ----------------------------------------------------------------------------- host allocator
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc <malloc.h>


@functools.cache
def tune_allocator(mmap_threshold: int = 1 << 30) -> bool:
    """Serve CPU tensors up to ``mmap_threshold`` bytes from glibc's heap and keep freed ones there.

    PyTorch's CPU allocator is plain ``malloc``. glibc serves blocks above its mmap threshold
    (128 KiB, adapting up to 32 MiB) with a fresh ``mmap`` and returns them with ``munmap``
    when freed, and trims freed memory at the top of its heap, so new activation tensors of
    an eager forward pass — tens to hundreds of MiB at super-resolution sizes — are
    page-faulted in again, 4 KiB at a time, by the kernel. Measured on SRResNet ×4 (64 ch,
    16 blocks) at 256² LR, timing 7 forward passes: 11.8 s of the process's CPU time went
    to the kernel and a fp32 forward took 3.30 s; with this setting 0.65 s and 2.21 s (same
    outputs: only where memory comes from changes). ``tools/bench.py --malloc default``
    measures the difference.
    The cost is that freed memory stays with the process (up to 2 GiB above the heap top
    is kept before trimming), as with PyTorch's CUDA caching allocator.

    ``mallopt`` is glibc's documented knob for this (``MALLOC_MMAP_THRESHOLD_`` and
    ``MALLOC_TRIM_THRESHOLD_`` in the environment do the same, but only at process start);
    jemalloc/tcmalloc via ``LD_PRELOAD`` would do it too but cannot be turned on from
    inside a running interpreter. Process-wide, so the library never calls it on import:
    the tools (:func:`i2i.cli.run`) and ``tools/bench.py`` do. ``I2I_TUNE_MALLOC=0``
    disables it. Returns whether the setting took effect (glibc on Linux only).
    """
    if os.environ.get("I2I_TUNE_MALLOC", "1") == "0" or platform.system() != "Linux":
        return False
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    limit = 2**31 - 1  # mallopt takes a C int
    mmap_ok = mallopt(_M_MMAP_THRESHOLD, ctypes.c_int(min(mmap_threshold, limit))) == 1
    trim_ok = mallopt(_M_TRIM_THRESHOLD, ctypes.c_int(min(2 * mmap_threshold, limit))) == 1
    return mmap_ok and trim_ok


def release_free_memory() -> bool:
    """Give the heap's free memory back to the system (glibc's ``malloc_trim(0)``); whether it did.

    With :func:`tune_allocator` freed blocks stay with the process; after a large temporary is
    gone (staged tiling's feature map of a whole photo, hundreds of MiB) the next allocations —
    often in another thread's arena, where they cannot reuse it — would add to the peak instead.
    Measured: RRDBNet ×4 1024² -> 4096², the PNG writer thread's allocations after the upscale
    raised the process's peak by 73 MiB without it. The tools also call it once the model is loaded
    (the weights file's state dict, copied into the network, is freed then): RealESRGAN_x4plus on a
    64² photo, peak 920 -> 900 MiB."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False
