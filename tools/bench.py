#!/usr/bin/env python
"""Benchmark i2i's training steps and SR inference on the device at hand; JSON out.

For each target the median of ``--iters`` timed calls after ``--warmup`` untimed ones:
seconds per call, images/s, peak memory (process RSS on CPU, ``max_memory_allocated`` on
CUDA), model FLOPs per call (``torch.utils.flop_counter``, matmuls and convolutions
only), achieved FLOP/s, and that as a fraction of this machine's GEMM peak (fp32 and bf16
``--gemm-n``³ matmuls) *timed in the same rounds* — so a fraction is a ratio of two numbers
taken under the same background load.

Targets (paper shapes by default, ``--quick`` shrinks them; ``--set target.key=value``
changes one):

* ``srresnet``  SRResNet-MSE step (64 ch, 16 blocks, ×4), batch 16 of 96×96 HR
* ``srgan``     SRGAN step: G + VGG-style D + VGG19 relu5_4 content loss (random VGG weights)
* ``pix2pix``   unet_256 + 70×70 PatchGAN, 256×256, batch 1 (``pix2pix_b4``: batch 4)
* ``segmentation``  tasks/segmentation_adversarial.yaml's nets, batch 8 of 64×64
* ``acgan``     tasks/acgan_mnist.yaml's DCGANs, batch 64 of 28×28
* ``sr_infer``  SRResNet ×4 on a 256×256 LR image (no grad)
* ``sr_quality``  the shipped model (i2i/weights/srresnet_x4) on a real photo: PSNR of each
  configuration's output against the HR photo and against the plain fp32 output
* ``tiled``     tiled SR: time for an LR image of side ``lr`` and of side ``2·lr`` (4× pixels)
* ``tiled_rss`` peak RSS of a fresh process upscaling ``lr``² → (4·lr)² with tiles
* ``sr_tool``   the SR tool as a whole process (``tools/infer.py --task sr --device DEV``, the
  shipped model) on one ``lr``² photo vs the sum of its parts, each timed alone in this
  process: decode (``i2i.data.io.read_image``), one untiled network pass (synchronised) and
  PNG encode (``save_image``): ``whole_over_parts`` (issue 11 target on a GPU: ≤ 1.5)
* ``sr_tool_folder``  the same tool over a folder of ``images`` such photos vs start-up (a
  fresh process importing i2i and loading the model onto the device) + ``images`` × (network
  + encode), the parts' medians as above
* ``video``     a panned-photo H.264 clip (``frames`` of ``lr``², with audio) through
  ``i2i.apps.video.process_video`` (decode + network + encode in threads) vs the network alone
  on the same decoded frames: ``whole_over_network`` (issue 26 goal on a CPU: ≥ 0.85)
* ``folder_processes``  ``tools/infer.py --task sr`` on a folder of ``images`` photos, one process
  vs ``accelerate launch --cpu --num_processes 2`` (whole commands); ``byte_identical`` outputs

A training step is the engine's own (:class:`i2i.engine.step.TrainStep`, what ``Trainer.fit``
calls): the recipe's updates (for a GAN the D step on detached fakes, the G step with D's
parameters frozen), gradient-norm measurement and device-side non-finite skip included, with
the optimizers from the YAML; plain PyTorch stands in for Accelerate (one process).

Configurations (``--configs``, or ``--compare A B`` which also prints B's speed-up over A):

* ``plain`` — the references' way: fp32, contiguous, eager, PyTorch's default Adam (a
  per-parameter loop on CPU).
* ``default`` — i2i's defaults in fp32: as plain but with the fused Adam kernel
  (:func:`i2i.engine.optim.build_optimizer`).
* ``fast`` — for training exactly ``train.fast: true`` on this device
  (:func:`i2i.perf.fast_training_plan`: bf16 autocast where native, fp16 on older GPUs, fp32 on
  a CPU without native bf16; channels_last for convolutional networks; fused optimizers;
  compile only where the plan says so); for inference ``tools/infer.py --fast`` (BN folding,
  channels_last, autocast where native). SRGAN's VGG content loss stays fp32, the library
  default (``vgglp`` runs it under autocast: ``losses.content.low_precision=true``).

Or ``+``-joined flags: ``fp32``/``bf16``/``fp16``/``auto``, ``cl`` (channels_last), ``fold`` (BN
folding, inference only), ``compile`` (torch.compile), ``graphs`` (torch.compile with mode
``reduce-overhead``: CUDA graphs on a GPU; the first call's time, compilation and capture
included, is ``first_call_s``), ``unfused`` (PyTorch's default Adam),
``vgg32`` (SRGAN's VGG in fp32 under autocast, the default), ``vgglp`` (SRGAN's VGG under autocast).

``--profile N``: after timing, one step of every training configuration under
``torch.profiler``; the top ``N`` operators by self time go to the JSON and the log. All configurations of a target are built in
one process and run interleaved, round by round, alternating their order. The allocator
setting (``--malloc``) is per process: compare it in two runs.

Examples::

    python tools/bench.py --quick --json bench.json
    python tools/bench.py --targets sr_infer --compare plain fast --json sr.json
    python tools/bench.py --targets srgan --set srgan.batch=4 --compare plain bf16+cl
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from i2i import perf  # noqa: E402

# ----------------------------------------------------------------------------- shapes
PAPER: dict[str, dict[str, Any]] = {
    "srresnet": {"batch": 16, "hr": 96, "width": 64, "blocks": 16},
    "srgan": {"batch": 16, "hr": 96, "width": 64, "blocks": 16},
    "pix2pix": {"batch": 1, "size": 256},
    "pix2pix_b4": {"batch": 4, "size": 256},
    "segmentation": {"batch": 8, "size": 64},
    "acgan": {"batch": 64},
    "sr_infer": {"lr": 256, "width": 64, "blocks": 16},
    "sr_quality": {"lr": 96},
    "tiled": {"lr": 512, "tile": 192, "overlap": 26},
    "tiled_rss": {"lr": 1024, "tile": 192, "overlap": 26},
    "sr_tool": {"lr": 1024, "rounds": 3},
    "sr_tool_folder": {"lr": 1024, "images": 16, "rounds": 1},
    "video": {"lr": 96, "frames": 24, "model": "srresnet_x4", "batch": 1, "codec": "libx264", "rounds": 3},
    "folder_processes": {"lr": 64, "images": 64, "model": "srresnet_x4_small", "rounds": 1},
}
QUICK: dict[str, dict[str, Any]] = {
    "srresnet": {"batch": 2, "hr": 48, "width": 16, "blocks": 2},
    "srgan": {"batch": 2, "hr": 48, "width": 16, "blocks": 2},
    "pix2pix": {"batch": 1, "size": 64},
    "pix2pix_b4": {"batch": 2, "size": 64},
    "segmentation": {"batch": 2, "size": 32},
    "acgan": {"batch": 8},
    "sr_infer": {"lr": 32, "width": 16, "blocks": 2},
    "sr_quality": {"lr": 32},
    "tiled": {"lr": 32, "tile": 16, "overlap": 8},
    "tiled_rss": {"lr": 64, "tile": 32, "overlap": 8},
    "sr_tool": {"lr": 64, "rounds": 2},
    "sr_tool_folder": {"lr": 64, "images": 4, "rounds": 1},
    "video": {"lr": 32, "frames": 6, "model": "srresnet_x4_small", "batch": 1, "codec": "libx264", "rounds": 2},
    "folder_processes": {"lr": 32, "images": 8, "model": "srresnet_x4_small", "rounds": 1},
}
DEFAULT_TARGETS = ["srresnet", "srgan", "pix2pix", "pix2pix_b4", "segmentation", "acgan", "sr_infer", "sr_quality",
                   "tiled", "tiled_rss", "sr_tool", "sr_tool_folder", "video", "folder_processes"]


# ----------------------------------------------------------------------------- configurations
@dataclass(frozen=True)
class Options:
    """One speed configuration; ``name`` is what the user typed."""

    name: str
    precision: str = "fp32"  # fp32 | bf16 | fp16 | auto
    channels_last: bool = False
    fold: bool = False
    compile: bool = False
    graphs: bool = False  # torch.compile(mode="reduce-overhead"): CUDA graphs on a GPU (plain Inductor on CPU)
    unfused: bool = False  # PyTorch's default per-parameter Adam instead of i2i's fused default
    vgg32: bool = False  # SRGAN: VGG content loss in fp32 under autocast (the library default)
    vgglp: bool = False  # SRGAN: VGG content loss under autocast (losses.content.low_precision=true)
    plan: bool = False  # training: the settings of train.fast (i2i.perf.fast_training_plan) on this device

    def dtype(self, device: torch.device) -> torch.dtype | None:
        return perf.autocast_dtype(device, self.precision)  # type: ignore[arg-type]

    def autocast(self, device: torch.device) -> Any:
        return perf.autocast(device, self.precision)  # type: ignore[arg-type]


def parse_options(text: str) -> Options:
    """``plain`` | ``fast`` | flags joined by ``+`` (see the module docstring)."""
    if text == "plain":
        return Options(text, unfused=True)
    if text == "default":
        return Options(text)
    if text == "fast":
        return Options(text, precision="auto", channels_last=True, fold=True, plan=True)
    kw: dict[str, Any] = {}
    for flag in text.split("+"):
        if flag in ("fp32", "bf16", "fp16", "auto"):
            kw["precision"] = flag
        elif flag in ("cl", "channels_last"):
            kw["channels_last"] = True
        elif flag in ("fold", "fold_bn"):
            kw["fold"] = True
        elif flag == "compile":
            kw["compile"] = True
        elif flag in ("graphs", "cudagraphs"):
            kw["graphs"] = True
        elif flag == "unfused":
            kw["unfused"] = True
        elif flag == "vgg32":
            kw["vgg32"] = True
        elif flag == "vgglp":
            kw["vgglp"] = True
        else:
            raise SystemExit(f"bench: unknown option flag {flag!r} in {text!r}; "
                             "use plain, default, fast, or fp32/bf16/fp16/auto, cl, fold, compile, graphs, unfused, vgg32, vgglp "
                             "joined by '+'")
    return Options(text, **kw)


def compile_net(net: nn.Module, opts: Options, device: torch.device, in_place: bool = False) -> nn.Module:
    """``net`` compiled as ``opts`` asks: ``graphs`` captures CUDA graphs (mode reduce-overhead),
    which removes the per-kernel launch cost that dominates small GPU steps. ``in_place``:
    ``module.compile()`` as the engine's ``train.compile`` does (same object returned)."""
    if not (opts.graphs or opts.compile):
        return net
    mode = "reduce-overhead" if opts.graphs else "default"
    if in_place:
        perf.compile_in_place(net, device.type, mode=mode)
        return net
    return perf.maybe_compile(net, True, device.type, mode=mode)


def prepare_net(model: nn.Module, opts: Options, device: torch.device) -> nn.Module:
    """An inference copy of ``model`` on ``device`` with ``opts``' folding, layout and compilation."""
    m = perf.prepare_inference(model, fold_bn=opts.fold, channels_last=opts.channels_last, compile=False,
                               device_type=device.type).to(device)
    return compile_net(m, opts, device)


# ----------------------------------------------------------------------------- measuring
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class PeakRSS:
    """Peak resident set size of this process while the block runs, sampled every 2 ms.

    ``ru_maxrss`` only ever grows over the process's life, so it cannot attribute a peak to
    one configuration; a sampling thread can (it may miss a spike shorter than 2 ms).
    """

    def __init__(self) -> None:
        import psutil

        self.proc = psutil.Process()
        self.peak = 0
        self.start = 0
        self._stop = threading.Event()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            self._stop.wait(0.002)

    def __enter__(self) -> PeakRSS:
        self.start = self.peak = self.proc.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def peak_memory(fn: Callable[[], Any], device: torch.device) -> dict[str, float]:
    """Peak memory of one call of ``fn``: RSS (CPU) or allocated device memory (CUDA), in MiB.

    Also the call's time: it is each configuration's *first* call, so with ``compile`` it
    includes the compilation (``first_call_s``).
    """
    if device.type == "cuda":
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        dt = time.perf_counter() - t0
        peak = torch.cuda.max_memory_allocated(device)
        return {"cuda_peak_allocated_mib": peak / 2**20, "cuda_step_increase_mib": (peak - base) / 2**20,
                "first_call_s": dt}
    with PeakRSS() as m:
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
    return {"rss_peak_mib": m.peak / 2**20, "rss_step_increase_mib": (m.peak - m.start) / 2**20, "first_call_s": dt}


def gemm_fn(n: int, dtype: torch.dtype, device: torch.device) -> Callable[[], Any]:
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    return lambda: torch.mm(a, b)


def interleaved(fns: dict[str, Callable[[], Any]], warmup: int, iters: int, device: torch.device,
                log: Callable[[str], None]) -> dict[str, list[float]]:
    """Time every fn once per round, ``warmup`` + ``iters`` rounds, order reversed every round.

    Reversing the order means neither side always runs right after the other (cache state,
    turbo, a neighbour's burst of load); the medians then compare like with like.
    """
    names = list(fns)
    times: dict[str, list[float]] = {k: [] for k in names}
    for r in range(warmup + iters):
        order = names if r % 2 == 0 else names[::-1]
        for k in order:
            sync(device)
            t0 = time.perf_counter()
            fns[k]()
            sync(device)
            dt = time.perf_counter() - t0
            if r >= warmup:
                times[k].append(dt)
        tag = "warm-up" if r < warmup else "timed"
        log(f"  round {r + 1}/{warmup + iters} ({tag}): " + ", ".join(
            f"{k} {times[k][-1] if r >= warmup else dt:.3f}s" if r >= warmup else k for k in names))
    return times


def summarise(times: list[float], images: int, flops: int | None, peaks: dict[str, float]) -> dict[str, Any]:
    med = statistics.median(times)
    out: dict[str, Any] = {"median_s": med, "min_s": min(times), "times_s": times, "images_per_s": images / med,
                           "flops": flops}
    if flops:
        fps = flops / med
        out["flops_per_s"] = fps
        for k in ("fp32", "bf16"):
            if peaks.get(k):
                out[f"frac_{k}_peak"] = fps / peaks[k]
    return out


# ----------------------------------------------------------------------------- building workloads
def load_cfg(name: str, overrides: list[str]) -> Any:
    from i2i.config import load_config

    base = ["logging.tracker=none", "logging.progress=false", "train.init={}"]
    return load_config(ROOT / "tasks" / name, base + overrides)


@dataclass
class TrainWorkload:
    """Everything a training step needs, built once from a task YAML."""

    recipe: Any
    models: dict[str, nn.Module]
    optim: dict[str, dict[str, Any]]
    batch: dict[str, Any]
    dataset: Any = None
    batch_size: int = 1
    info: dict[str, Any] = field(default_factory=dict)
    d_steps: int = 1


def build_train(cfg: Any, batch: dict[str, Any], with_dataset: bool) -> TrainWorkload:
    """The run's recipe and networks through the engine's one build (:mod:`i2i.engine.build`)."""
    from i2i.engine.build import build_dataset, build_models, build_recipe

    torch.manual_seed(0)
    recipe = build_recipe(cfg.recipe, cfg.losses)
    models = build_models(cfg.recipe, cfg.models)
    ds = build_dataset(cfg.data, "train") if with_dataset else None
    recipe.setup(models, ds)
    n = next(v for v in batch.values() if isinstance(v, torch.Tensor)).shape[0]
    params = {s: sum(p.numel() for p in m.parameters()) for s, m in models.items()}
    return TrainWorkload(recipe, models, dict(cfg.optim), batch, ds, n, {"parameters": params}, cfg.train.d_steps)


def make_train_step(w: TrainWorkload, opts: Options, device: torch.device) -> Callable[[], torch.Tensor]:
    """A closure running one training step of the engine (:class:`i2i.engine.step.TrainStep`,
    the function ``Trainer.fit`` calls) on a private copy of the models, with plain PyTorch in
    place of Accelerate (one process: the same backward, clip and step).

    It returns the last update's loss terms' total (detached); ``step.models`` holds the models it trains.
    """
    from i2i.engine.optim import FUSED_BY_DEFAULT, build_optimizer
    from i2i.engine.step import TrainStep
    from i2i.engine.trainer import batch_to_device

    models = {s: copy.deepcopy(m).to(device).train() for s, m in w.models.items()}
    plan = perf.fast_training_plan(device, *models.values()) if opts.plan else None
    if plan is not None:  # train.fast: the trainer's own decision for this device and these networks
        dtype = plan.autocast_dtype()
        opts = Options(opts.name, precision={None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype],
                       channels_last=plan.channels_last, compile=plan.compile, vgg32=opts.vgg32, vgglp=opts.vgglp)
    batch = batch_to_device(w.batch, device, opts.channels_last)
    if opts.channels_last:
        for m in models.values():
            perf.to_channels_last(m)
    recipe = copy.deepcopy(w.recipe).to(device)
    if (opts.vgg32 or opts.vgglp) and "content" in getattr(recipe, "losses", {}):
        recipe.losses["content"].low_precision = opts.vgglp and not opts.vgg32
    specs = {s: (dict(w.optim[s], fused=False) if opts.unfused and w.optim[s]["type"] in FUSED_BY_DEFAULT
                 else w.optim[s]) for s in models}
    optims = {s: build_optimizer(specs[s], f"optim.{s}", [p for p in m.parameters() if p.requires_grad],
                                 fast=plan is not None and plan.fused_optimizers)
              for s, m in models.items()}
    for m in models.values():  # in place, as the engine's train.compile: bare and wrapped are one module
        compile_net(m, opts, device, in_place=True)
    train_step = TrainStep(recipe, recipe.updates(list(models), w.d_steps), models, models, optims,
                           autocast=lambda: opts.autocast(device))

    def step(fed: dict[str, Any] | None = None) -> torch.Tensor:
        b = batch if fed is None else batch_to_device(fed, device, opts.channels_last)
        logs, _ = train_step(lambda: b, 0)
        return logs["g/total"] if "g/total" in logs else next(iter(logs.values()))

    step.models = models  # type: ignore[attr-defined]  (for tests: the weights after a step)
    step.plan = plan.summary() if plan is not None else None  # type: ignore[attr-defined]
    return step


@contextlib.contextmanager
def literal_layers(*models: nn.Module) -> Any:
    """Count the FLOPs of the architecture as published, not of faster rewrites of it.

    SRResNet runs its tail in the sub-pixel domain (``fuse_tail``), which executes 1.23×
    that layer's multiply-adds; achieved FLOP/s are reported for the *useful* work, the
    literal 9×9 layer's, so a rewrite can never inflate them.
    """
    mods = [m for model in models for m in model.modules() if hasattr(m, "fuse_tail")]
    saved = [m.fuse_tail for m in mods]
    for m in mods:
        m.fuse_tail = False
    try:
        yield
    finally:
        for m, v in zip(mods, saved):
            m.fuse_tail = v


def random_bn_stats(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BN running statistics, so that folding a random model is a real test."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) * 0.5 + 0.75)
            if m.affine:
                m.weight.data.copy_(torch.rand(m.num_features, generator=g) * 0.5 + 0.75)
                m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model


def make_infer(model: nn.Module, x: torch.Tensor, opts: Options, device: torch.device) -> Callable[[], torch.Tensor]:
    m = prepare_net(model, opts, device)
    xin = perf.to_channels_last(x.to(device)) if opts.channels_last else x.to(device)

    def run() -> torch.Tensor:
        with torch.inference_mode(), opts.autocast(device):
            return m(xin).float()

    return run


def sr_batch(n: int, hr: int, scale: int = 4) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {"lr": torch.rand(n, 3, hr // scale, hr // scale, generator=g),
            "hr": torch.rand(n, 3, hr, hr, generator=g)}


def real_photo(side: int) -> torch.Tensor:
    """(1, 3, side, side) in [0, 1]: a centre crop of scikit-image's ``coffee`` (400×600).

    ``coffee`` is in the embedded SR *validation* split, so the shipped model never saw it.
    """
    from skimage import data

    img = torch.from_numpy(data.coffee()).permute(2, 0, 1).float().div(255)
    h, w = img.shape[-2:]
    y, x = (h - side) // 2, (w - side) // 2
    if side > min(h, w):
        raise SystemExit(f"bench: photo crop {side} larger than the photo ({h}×{w})")
    return img[None, :, y:y + side, x:x + side].contiguous()


# ----------------------------------------------------------------------------- targets
def train_target(name: str, shape: dict[str, Any], device: torch.device) -> TrainWorkload:
    if name in ("srresnet", "srgan"):
        g = f"{{type: srresnet, scale: 4, width: {shape['width']}, num_blocks: {shape['blocks']}, batch_norm: true}}"
        ov = [f"models.generator={g}", f"data.batch_size={shape['batch']}", f"data.patch_size={shape['hr']}"]
        if name == "srgan":
            # random VGG weights (nothing downloads); the content loss in fp32 as the library default
            # (losses.content.low_precision=false; the flag vgglp measures it under autocast)
            ov += ["losses.content.weights=null"]
        cfg = load_cfg(f"{name}.yaml", ov)
        return build_train(cfg, sr_batch(shape["batch"], shape["hr"]), with_dataset=True)
    if name.startswith("pix2pix"):
        s, n = shape["size"], shape["batch"]
        # the paper's nets (unet_256 + 70×70 PatchGAN, RGB -> RGB), as in tasks/pix2pix_aligned.yaml
        # the paper's nets: unet_256 + 70×70 PatchGAN (sketch, 1 channel -> RGB); smaller
        # crops (--quick) get the generic U-Net with as many levels as the crop allows
        gen = ("{type: unet_256, in_channels: 1, out_channels: 3, norm: batch, dropout: 0.5}" if s == 256 else
               f"{{type: unet, in_channels: 1, out_channels: 3, num_downs: {s.bit_length() - 1}, norm: batch}}")
        ov = [f"models.generator={gen}",
              "models.discriminator={type: patchgan, in_channels: 4, n_layers: 3, base_channels: 64, norm: batch}",
              f"data.batch_size={n}", f"data.crop_size={s}", f"data.load_size={max(s, s * 286 // 256)}"]
        cfg = load_cfg("pix2pix_sketch2photo.yaml", ov)
        g = torch.Generator().manual_seed(2)
        batch = {"A": torch.rand(n, 1, s, s, generator=g) * 2 - 1, "B": torch.rand(n, 3, s, s, generator=g) * 2 - 1}
        return build_train(cfg, batch, with_dataset=True)
    if name == "segmentation":
        s, n = shape["size"], shape["batch"]
        cfg = load_cfg("segmentation_adversarial.yaml", [f"data.batch_size={n}", f"data.size={s}"])
        g = torch.Generator().manual_seed(3)
        batch = {"image": torch.rand(n, 3, s, s, generator=g), "mask": torch.randint(0, 7, (n, s, s), generator=g)}
        return build_train(cfg, batch, with_dataset=True)
    if name == "acgan":
        n = shape["batch"]
        cfg = load_cfg("acgan_mnist.yaml", [f"data.batch_size={n}"])
        g = torch.Generator().manual_seed(4)
        batch = {"image": torch.rand(n, 1, 28, 28, generator=g) * 2 - 1, "label": torch.randint(0, 10, (n,), generator=g)}
        return build_train(cfg, batch, with_dataset=True)
    raise KeyError(name)


def folder_feeds(name: str, shape: dict[str, Any], opts: Options, w: TrainWorkload,
                 device: torch.device) -> dict[str, Callable[[], Any]]:
    """SR targets: the step of configuration ``opts`` fed by the recipe's real data pipeline.

    scikit-image's photos are written as PNG files to a temporary folder; ``sr_folder``
    reads them with the YAML's loader settings (workers, prefetch, pinned memory on CUDA;
    random crops, flips, MATLAB-bicubic LR made per sample) — once with the decoded-image
    cache (``cache: memory``, the YAML default) and once decoding every PNG per sample
    (``cache: none``). Each call = fetch the next batch + the training step, so a loader
    that cannot keep up shows as a longer call than the synthetic-tensor step.
    """
    if name not in ("srresnet", "srgan"):
        return {}
    import atexit
    import shutil
    import tempfile

    from skimage import data as skdata
    from torch.utils.data import DataLoader

    from i2i.data.io import save_image
    from i2i.engine.trainer import loader_options
    from i2i.registry import DATASETS

    cfg = load_cfg(f"{name}.yaml", [])
    folder = Path(tempfile.mkdtemp(prefix="i2i_bench_photos_"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    photos = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field")
    for n in photos:
        save_image(folder / f"{n}.png", getattr(skdata, n)())
    fns: dict[str, Callable[[], Any]] = {}
    for cache in ("memory", "none"):
        kw = dict(cfg.data.kwargs, patch_size=shape["hr"], cache=cache)
        ds = DATASETS.get(cfg.data.type)(root=str(folder), split="train", **kw)
        workers = cfg.data.num_workers
        loader = DataLoader(ds, batch_size=shape["batch"], shuffle=True, drop_last=True, **loader_options(cfg.data),
                            generator=torch.Generator().manual_seed(0))
        step = make_train_step(w, opts, device)
        it = iter(loader)

        def fed(step: Callable[..., Any] = step, it: Any = it) -> Any:
            return step(next(it))

        fed.info = {"folder_images": len(photos), "cache": cache, "num_workers": workers,  # type: ignore[attr-defined]
                    "prefetch_factor": cfg.data.prefetch_factor}
        fns[f"{opts.name}+folder_{cache}"] = fed
    return fns


def data_time(w: TrainWorkload, n_batches: int) -> dict[str, Any] | None:
    """Median seconds to fetch one batch from the recipe's embedded dataset (DataLoader, 0 workers)."""
    if w.dataset is None:
        return None
    from torch.utils.data import DataLoader

    loader = DataLoader(w.dataset, batch_size=w.batch_size, shuffle=True, num_workers=0,
                        generator=torch.Generator().manual_seed(0))
    it = iter(loader)
    next(it)  # first batch may fill caches (sr_folder's memory cache)
    ts = []
    for _ in range(n_batches):
        t0 = time.perf_counter()
        try:
            next(it)
        except StopIteration:
            it = iter(loader)
            next(it)
        ts.append(time.perf_counter() - t0)
    return {"dataset": type(w.dataset).__name__, "fetch_median_s": statistics.median(ts), "times_s": ts}


def run_train(name: str, shape: dict[str, Any], configs: list[Options], args: argparse.Namespace,
              device: torch.device, log: Callable[[str], None]) -> dict[str, Any]:
    w = train_target(name, shape, device)
    steps = {o.name: make_train_step(w, o, device) for o in configs}
    with literal_layers(*w.models.values()):  # FLOPs do not depend on the options
        flops = perf.count_flops(make_train_step(w, configs[0], device))
    mem = {o.name: peak_memory(steps[o.name], device) for o in configs}  # also a first warm-up call
    fns: dict[str, Callable[[], Any]] = dict(steps)
    feeds = folder_feeds(name, shape, configs[-1], w, device) if args.data else {}
    fns.update(feeds)
    fns.update(args.gemm_fns)
    times = interleaved(fns, args.warmup, args.iters, device, log)
    peaks = {k: args.gemm_flops / statistics.median(times[f"gemm_{k}"]) for k in ("fp32", "bf16")}
    res: dict[str, Any] = {"shape": shape, "info": w.info, "gemm_peak_flops_per_s": peaks, "configs": {}}
    for o in configs:
        res["configs"][o.name] = summarise(times[o.name], w.batch_size, flops, peaks) | mem[o.name]
        if getattr(steps[o.name], "plan", None):
            res["configs"][o.name]["train_fast_plan"] = steps[o.name].plan  # type: ignore[attr-defined]
    if args.profile:
        res["profile"] = {o.name: profile_step(steps[o.name], device, args.profile, log, f"{name} {o.name}")
                          for o in configs}
    if feeds:
        synth = statistics.median(times[configs[-1].name])
        res["folder_data"] = {k: {"median_s": statistics.median(times[k]), "times_s": times[k],
                                  "ratio_to_synthetic": statistics.median(times[k]) / synth,
                                  **feeds[k].info}  # type: ignore[attr-defined]
                              for k in feeds}
    if args.data:
        dt = data_time(w, max(3, args.iters))
        if dt is not None:
            t_step = res["configs"][configs[0].name]["median_s"]
            dt["images_per_s_step_plus_fetch"] = w.batch_size / (t_step + dt["fetch_median_s"])
            res["data"] = dt
    return res


def profile_step(fn: Callable[[], Any], device: torch.device, top: int, log: Callable[[str], None],
                 title: str) -> list[dict[str, Any]]:
    """One call of ``fn`` (warm) under ``torch.profiler``: the ``top`` operators by self time.

    Each row: operator, calls, self seconds (CPU; CUDA kernels' self time on a GPU), share of the
    step's summed self time. What is not convolution/matmul work (copies and layout conversions,
    element-wise ops, optimizer kernels) shows here.
    """
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    fn()
    sync(device)
    with profile(activities=acts) as prof:
        fn()
        sync(device)
    key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    ev = [e for e in prof.key_averages() if getattr(e, key, 0) > 0]
    total = sum(getattr(e, key) for e in ev) or 1
    ev.sort(key=lambda e: getattr(e, key), reverse=True)
    rows = [{"op": e.key, "calls": e.count, "self_s": getattr(e, key) / 1e6, "share": getattr(e, key) / total}
            for e in ev[:top]]
    log(f"  profile {title}: step self time {total / 1e6:.3f}s")
    for r in rows:
        log(f"    {r['op'][:48]:<48} {r['calls']:>6} {r['self_s']:>8.4f}s {100 * r['share']:>5.1f}%")
    return rows


def sr_model(width: int, blocks: int) -> nn.Module:
    from i2i.nn.srresnet import SRResNet

    torch.manual_seed(0)
    return random_bn_stats(SRResNet(4, width=width, num_blocks=blocks)).eval()


def run_infer(shape: dict[str, Any], configs: list[Options], args: argparse.Namespace, device: torch.device,
              log: Callable[[str], None]) -> dict[str, Any]:
    model = sr_model(shape["width"], shape["blocks"])
    x = torch.rand(1, 3, shape["lr"], shape["lr"], generator=torch.Generator().manual_seed(5))
    runs = {o.name: make_infer(model, x, o, device) for o in configs}
    with torch.inference_mode(), literal_layers(model):
        flops = perf.count_flops(lambda: model.to(device)(x.to(device)))
    ref = runs[configs[0].name]().cpu()
    agree = {}
    for o in configs[1:]:
        out = runs[o.name]().cpu()
        agree[o.name] = {"max_abs_diff_vs_" + configs[0].name: float((out - ref).abs().max()),
                         "psnr_db_vs_" + configs[0].name: psnr(out.clamp(0, 1), ref.clamp(0, 1))}
    mem = {o.name: peak_memory(runs[o.name], device) for o in configs}
    fns: dict[str, Callable[[], Any]] = dict(runs)
    fns.update(args.gemm_fns)
    times = interleaved(fns, args.warmup, args.iters, device, log)
    peaks = {k: args.gemm_flops / statistics.median(times[f"gemm_{k}"]) for k in ("fp32", "bf16")}
    res: dict[str, Any] = {"shape": shape, "gemm_peak_flops_per_s": peaks, "configs": {}}
    for o in configs:
        res["configs"][o.name] = summarise(times[o.name], 1, flops, peaks) | mem[o.name] | agree.get(o.name, {})
    return res


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of images in [0, 1] (no quantisation; inf when identical)."""
    mse = float((a.double() - b.double()).square().mean())
    return float("inf") if mse == 0 else 10 * float(torch.log10(torch.tensor(1.0 / mse)))


def run_quality(shape: dict[str, Any], configs: list[Options], device: torch.device) -> dict[str, Any]:
    """The shipped SRResNet on a real photo: PSNR vs the HR photo for every configuration."""
    from i2i.data.resize import imresize
    from i2i.inference import SHIPPED, load_model

    if not (SHIPPED["sr"] / "config.json").is_file():
        return {"skipped": f"no shipped model at {SHIPPED['sr']}"}
    model = load_model(None, task="sr").generator.eval()
    hr = real_photo(shape["lr"] * 4)
    lr = imresize(hr, scale=0.25).clamp(0, 1)
    outs = {o.name: make_infer(model, lr, o, device)().cpu().clamp(0, 1) for o in configs}
    c = 4  # crop_border = scale, the SR convention
    res: dict[str, Any] = {"shape": shape, "photo": "skimage.data.coffee centre crop (SR val split)", "configs": {}}
    base = configs[0].name
    for o in configs:
        sr = outs[o.name][..., c:-c, c:-c]
        res["configs"][o.name] = {"psnr_db_vs_hr": psnr(sr, hr[..., c:-c, c:-c]),
                                  f"psnr_db_vs_{base}": psnr(outs[o.name], outs[base]),
                                  f"max_abs_diff_vs_{base}": float((outs[o.name] - outs[base]).abs().max())}
    for o in configs[1:]:
        r = res["configs"][o.name]
        r["psnr_change_db"] = r["psnr_db_vs_hr"] - res["configs"][base]["psnr_db_vs_hr"]
    return res


def tiled_model(args: argparse.Namespace) -> nn.Module:
    from i2i.inference import SHIPPED, load_model

    if (SHIPPED["sr"] / "config.json").is_file() and not args.quick:
        return load_model(None, task="sr").generator.eval()
    return sr_model(16, 2)


def run_tiled(shape: dict[str, Any], opts: Options, args: argparse.Namespace, device: torch.device,
              log: Callable[[str], None]) -> dict[str, Any]:
    """Time of tiled SR for an LR side ``lr`` (1×) and ``2·lr`` (4× pixels), interleaved."""
    from i2i.tiling import tiled_apply

    model = tiled_model(args)
    m = prepare_net(model, opts, device)
    g = torch.Generator().manual_seed(6)
    s = shape["lr"]
    xs = {"1x": torch.rand(1, 3, s, s, generator=g).to(device), "4x": torch.rand(1, 3, 2 * s, 2 * s, generator=g).to(device)}

    def fn(x: torch.Tensor) -> torch.Tensor:
        x = perf.to_channels_last(x) if opts.channels_last else x
        with opts.autocast(device):
            return m(x).float()

    fns = {k: (lambda x=x: tiled_apply(fn, x, scale=4, tile=shape["tile"], overlap=shape["overlap"]))
           for k, x in xs.items()}
    times = interleaved(fns, args.warmup, args.iters, device, log)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"shape": shape, "options": opts.name, "median_s": med, "times_s": times, "time_ratio_4x_pixels": med["4x"] / med["1x"]}


def run_tiled_rss(shape: dict[str, Any], opts: Options, args: argparse.Namespace) -> dict[str, Any]:
    """Peak RSS of a *fresh* process doing one tiled upscale (so nothing else counts)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_tiled-child", json.dumps(shape), "--configs", opts.name,
           "--threads", str(torch.get_num_threads())] + (["--quick"] if args.quick else [])
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": out.stderr[-2000:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _hwm_mib() -> float | None:
    """This process's peak RSS (VmHWM) in MiB, or None off Linux.

    Not ``ru_maxrss``: on Linux a child started by fork+exec inherits the parent's value,
    so it would report the benchmark process's peak instead of its own.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def tiled_child(shape: dict[str, Any], opts: Options, args: argparse.Namespace) -> None:
    from i2i.tiling import tiled_apply

    device = torch.device("cpu")
    model = tiled_model(args)
    m = prepare_net(model, opts, device)
    s = shape["lr"]
    x = torch.rand(1, 3, s, s, generator=torch.Generator().manual_seed(7))
    before = _hwm_mib()

    def fn(t: torch.Tensor) -> torch.Tensor:
        t = perf.to_channels_last(t) if opts.channels_last else t
        with opts.autocast(device):
            return m(t).float()

    with PeakRSS() as sampled:  # a second opinion, and the only one off Linux
        t0 = time.perf_counter()
        y = tiled_apply(fn, x, scale=4, tile=shape["tile"], overlap=shape["overlap"])
        dt = time.perf_counter() - t0
    peak = _hwm_mib() or sampled.peak / 2**20
    print(json.dumps({"shape": shape, "options": opts.name, "output": list(y.shape), "seconds": dt,
                      "rss_peak_mib": peak, "rss_before_mib": before, "rss_sampled_peak_mib": sampled.peak / 2**20,
                      "output_tensor_mib": y.numel() * y.element_size() / 2**20}))


# ----------------------------------------------------------------------------- the SR tool as a process
_STARTUP = """
import sys, time, torch
sys.path.insert(0, sys.argv[1])
from i2i.perf import tune_allocator
tune_allocator()
import i2i.apps.super_resolution  # what tools/infer.py --task sr imports
from i2i.inference import load_model
m = load_model(None, task="sr", device=sys.argv[2])
if sys.argv[2].startswith("cuda"):
    torch.zeros(1, device=sys.argv[2]).add_(1)
    torch.cuda.synchronize()
"""


def tool_photo(side: int) -> Any:
    """(side, side, 3) uint8: scikit-image's ``astronaut`` resized by Pillow's bicubic — a photo
    with real texture, so PNG encoding costs what it costs on photos (noise would not compress)."""
    import numpy as np
    from PIL import Image
    from skimage import data

    return np.asarray(Image.fromarray(data.astronaut()).resize((side, side), Image.BICUBIC))


def timed_process(cmd: list[str]) -> float:
    """Wall seconds of one subprocess; raises with its stderr's tail if it fails."""
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])}...: exit {out.returncode}: {out.stderr.strip()[-500:]}")
    return dt


def sr_tool_parts(src: Path, dst: Path, rounds: int, device: torch.device) -> dict[str, list[float]]:
    """Decode, one untiled network pass (synchronised) and PNG encode of ``src``, each timed alone.

    The network is the shipped model as the tool loads it (fp32, no ``--fast``); its first
    call (cuDNN autotuning, lazy CUDA init) is a warm-up and is not counted.
    """
    from i2i.data.io import read_image, save_image
    from i2i.inference import load_model

    G = load_model(None, task="sr", device=device).generator.eval()
    times: dict[str, list[float]] = {"decode": [], "network": [], "encode": []}
    a = read_image(src, mode="keep")
    x = torch.from_numpy(a.copy()).permute(2, 0, 1)[None].float().div(255).to(device)
    with torch.inference_mode():
        G(x)
        for _ in range(rounds):
            t0 = time.perf_counter()
            a = read_image(src, mode="keep")
            times["decode"].append(time.perf_counter() - t0)
            sync(device)
            t0 = time.perf_counter()
            y = G(x)
            sync(device)
            times["network"].append(time.perf_counter() - t0)
            out = y.clamp(0, 1).mul(255).round().to(torch.uint8)[0].permute(1, 2, 0).cpu().numpy()
            t0 = time.perf_counter()
            save_image(dst, out)
            times["encode"].append(time.perf_counter() - t0)
    return times


def run_sr_tool(name: str, shape: dict[str, Any], device: torch.device, log: Callable[[str], None]) -> dict[str, Any]:
    """``sr_tool`` / ``sr_tool_folder``: the whole tool process against the sum of its parts."""
    import shutil
    import tempfile

    from i2i.data.io import save_image
    from i2i.inference import SHIPPED

    if not (SHIPPED["sr"] / "config.json").is_file():
        return {"skipped": f"no shipped model at {SHIPPED['sr']}"}
    work = Path(tempfile.mkdtemp(prefix="i2i_bench_tool_"))
    try:
        src = save_image(work / "in" / "photo.png", tool_photo(shape["lr"]))
        rounds = int(shape.get("rounds", 1))
        parts = sr_tool_parts(src, work / "parts.png", max(rounds, 3), device)
        med = {k: statistics.median(v) for k, v in parts.items()}
        infer = [sys.executable, str(ROOT / "tools" / "infer.py"), "--task", "sr", "--device", str(device)]
        res: dict[str, Any] = {"shape": shape, "device": str(device), "parts_s": med, "parts_times_s": parts}
        # start-up (interpreter, imports, model onto the device): a part of the folder target;
        # for one image it is reported beside the ratio, which leaves it out
        startup = statistics.median([timed_process([sys.executable, "-c", _STARTUP, str(ROOT), str(device)])
                                     for _ in range(rounds)])
        res["startup_s"] = startup
        if name == "sr_tool":
            whole = [timed_process(infer + [str(src), "-o", str(work / "out.png")]) for _ in range(rounds)]
            res["parts_sum_s"] = med["decode"] + med["network"] + med["encode"]
        else:
            n = int(shape["images"])
            for i in range(1, n):
                shutil.copy(src, src.with_name(f"photo{i:02d}.png"))
            whole = [timed_process(infer + [str(src.parent), "-o", str(work / "out")]) for _ in range(rounds)]
            res.update({"images": n, "parts_sum_s": startup + n * (med["network"] + med["encode"])})
        res.update({"whole_s": statistics.median(whole), "whole_times_s": whole})
        res["whole_over_parts"] = res["whole_s"] / res["parts_sum_s"]
        if name == "sr_tool":
            res["whole_over_parts_plus_startup"] = res["whole_s"] / (res["parts_sum_s"] + startup)
        log(f"  whole {res['whole_s']:.3f}s, parts {res['parts_sum_s']:.3f}s: {res['whole_over_parts']:.2f}×")
        return res
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench_clip(path: Path, side: int, frames: int) -> Path:
    """An H.264 clip of ``frames`` 25 fps frames: :func:`tool_photo` panned one pixel per frame, and a sine track."""
    from fractions import Fraction

    import av
    import numpy as np

    photo = tool_photo(side + frames)
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=25)
        v.width = v.height = side
        v.pix_fmt = "yuv420p"
        a = c.add_stream("aac", rate=48000)
        for i in range(frames):
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(photo[i:i + side, i:i + side]), "rgb24")
            f.pts, f.time_base = i, Fraction(1, 25)
            c.mux(v.encode(f))
        c.mux(v.encode(None))
        n = 48000 * frames // 25
        wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / 48000)).astype(np.float32)
        for k in range(0, n, 1024):
            fr = av.AudioFrame.from_ndarray(wave[None, k:k + 1024], format="flt", layout="mono")
            fr.sample_rate, fr.pts = 48000, k
            c.mux(a.encode(fr))
        c.mux(a.encode(None))
    return path


def run_video(shape: dict[str, Any], device: torch.device, log: Callable[[str], None]) -> dict[str, Any]:
    """``video``: ``i2i.apps.video.process_video`` (decode + network + encode, threads overlapping)
    against the network alone (the same frame function on the same frames, already decoded
    and kept in memory), round by round; ``whole_over_network`` = whole fps / network fps
    (issue 26's goal on a CPU: ≥ 0.85)."""
    import shutil
    import tempfile

    import av

    from i2i.apps.common import FileLoop
    from i2i.apps.video import VideoOptions, _frame_function, frame_to_rgb, process_video
    from i2i.inference import load_model, shipped_model
    from i2i.pipelines.super_resolution import SuperResolutionPipeline

    work = Path(tempfile.mkdtemp(prefix="i2i_bench_video_"))
    try:
        clip = bench_clip(work / "clip.mp4", int(shape["lr"]), int(shape["frames"]))
        pipe = SuperResolutionPipeline(load_model(shipped_model(shape["model"]), device=device))
        batch = int(shape.get("batch", 1))
        fn = _frame_function(FileLoop(pipe), batch)
        opts = VideoOptions(codec=shape.get("codec", "libx264"), batch=batch)
        with av.open(str(clip)) as c:
            frames = [frame_to_rgb(f) for f in c.decode(video=0)]
        n = len(frames)
        fn(frames[:batch])  # warm-up
        whole, net = [], []
        for _ in range(int(shape.get("rounds", 3))):
            t0 = time.perf_counter()
            with torch.inference_mode():
                for i in range(0, n, batch):
                    fn(frames[i:i + batch])
            sync(device)
            net.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            with torch.inference_mode():
                r = process_video(clip, work / "out.mp4", fn, opts)
            whole.append(time.perf_counter() - t0)
            assert r.frames == n
        res = {"shape": shape, "device": str(device), "frames": n, "whole_s": statistics.median(whole),
               "network_s": statistics.median(net), "whole_times_s": whole, "network_times_s": net,
               "threads": torch.get_num_threads()}
        res["whole_fps"], res["network_fps"] = n / res["whole_s"], n / res["network_s"]
        res["whole_over_network"] = res["whole_fps"] / res["network_fps"]
        log(f"  whole {res['whole_fps']:.2f} fps, network alone {res['network_fps']:.2f} fps: "
            f"{res['whole_over_network']:.2f}×")
        return res
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_folder_processes(shape: dict[str, Any], log: Callable[[str], None]) -> dict[str, Any]:
    """``folder_processes``: ``tools/infer.py --task sr`` over a folder of ``images`` photos in one
    process against ``accelerate launch --cpu --num_processes 2`` (whole commands, start-up
    included); checks that both wrote the same bytes."""
    import shutil
    import tempfile

    from i2i.data.io import save_image

    work = Path(tempfile.mkdtemp(prefix="i2i_bench_procs_"))
    try:
        side, n = int(shape["lr"]), int(shape["images"])
        photo = tool_photo(side + n)
        for i in range(n):
            save_image(work / "in" / f"p{i:03d}.png", photo[i:i + side, i:i + side])
        base = [str(ROOT / "tools" / "infer.py"), "--task", "sr", "--model", shape["model"], "--device", "cpu",
                str(work / "in")]
        launch = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "2", "--num_machines",
                  "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
        one, two = [], []
        for _ in range(int(shape.get("rounds", 1))):
            one.append(timed_process([sys.executable, *base, "-o", str(work / "one")]))
            two.append(timed_process([*launch, *base, "-o", str(work / "two")]))
        same = all((work / "one" / f.name).read_bytes() == f.read_bytes() for f in (work / "two").iterdir())
        res = {"shape": shape, "images": n, "one_process_s": statistics.median(one), "two_processes_s": statistics.median(two),
               "one_times_s": one, "two_times_s": two, "byte_identical": same and len(list((work / "two").iterdir())) == n,
               "cpus": os.cpu_count()}
        res["speedup_two_over_one"] = res["one_process_s"] / res["two_processes_s"]
        log(f"  1 process {res['one_process_s']:.1f}s, 2 processes {res['two_processes_s']:.1f}s: "
            f"{res['speedup_two_over_one']:.2f}×, byte-identical: {res['byte_identical']}")
        return res
    finally:
        shutil.rmtree(work, ignore_errors=True)


def derived_ratios(results: dict[str, Any]) -> dict[str, Any]:
    """Ratios across targets of one run: ``pix2pix_b4/pix2pix`` per configuration (issue 11:
    batch 4 should take ≥ 2.5× batch 1's time in the fast configuration) — by time per step."""
    t = results["targets"]
    out: dict[str, Any] = {}
    if "configs" in t.get("pix2pix", {}) and "configs" in t.get("pix2pix_b4", {}):
        out["pix2pix_b4/pix2pix"] = {k: t["pix2pix_b4"]["configs"][k]["median_s"] / c["median_s"]
                                     for k, c in t["pix2pix"]["configs"].items()
                                     if "median_s" in c and "median_s" in t["pix2pix_b4"]["configs"].get(k, {})}
    return out


# ----------------------------------------------------------------------------- report
def table(results: dict[str, Any], configs: list[Options]) -> str:
    rows = [f"{'target':<13} {'config':<14} {'median s':>9} {'img/s':>8} {'GFLOP':>8} {'GFLOP/s':>8} "
            f"{'%fp32pk':>7} {'%bf16pk':>7} {'peak MiB':>9}"]
    for t, r in results["targets"].items():
        for name, c in r.get("configs", {}).items():
            if "median_s" not in c:
                continue
            mem = c.get("rss_peak_mib", c.get("cuda_peak_allocated_mib", float("nan")))
            fl = (c.get("flops") or 0) / 1e9
            rows.append(f"{t:<13} {name:<14} {c['median_s']:>9.3f} {c['images_per_s']:>8.2f} {fl:>8.1f} "
                        f"{c.get('flops_per_s', 0) / 1e9:>8.1f} {100 * c.get('frac_fp32_peak', 0):>6.0f}% "
                        f"{100 * c.get('frac_bf16_peak', 0):>6.0f}% {mem:>9.0f}")
        if "speedup" in r:
            rows.append(f"{'':<13} speed-up {configs[-1].name} / {configs[0].name}: {r['speedup']:.2f}×")
    return "\n".join(rows)


def plot(results: dict[str, Any], configs: list[Options], path: str) -> None:
    """Grouped bars: each target's throughput per configuration, relative to the first one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(t, r["configs"]) for t, r in results["targets"].items()
            if all("median_s" in r.get("configs", {}).get(o.name, {}) for o in configs)]
    if not rows:
        return
    fig, ax = plt.subplots(figsize=(1.3 * len(rows) + 2, 3.6))
    width = 0.8 / len(configs)
    for i, o in enumerate(configs):
        ys = [c[configs[0].name]["median_s"] / c[o.name]["median_s"] for _, c in rows]
        bars = ax.bar([k + (i - (len(configs) - 1) / 2) * width for k in range(len(rows))], ys, width, label=o.name)
        ax.bar_label(bars, fmt="%.2f×", fontsize=7)
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_xticks(range(len(rows)), [t for t, _ in rows], fontsize=8)
    ax.set_ylabel(f"speed-up over {configs[0].name}")
    meta = results["meta"]
    ax.set_title(f"tools/bench.py, {meta['date']}, {meta['device']} ({meta['threads']} threads), torch {meta['torch']}",
                 fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--targets", nargs="+", default=None, help=f"subset of: {' '.join(DEFAULT_TARGETS)}")
    ap.add_argument("--configs", nargs="+", default=["plain"], help="configurations to run (see docstring)")
    ap.add_argument("--compare", nargs=2, metavar=("A", "B"), help="run A and B interleaved; print B's speed-up")
    ap.add_argument("--quick", action="store_true", help="tiny shapes, 1 warm-up + 5 timed rounds (CI smoke test)")
    ap.add_argument("--set", action="append", default=[], metavar="TARGET.KEY=VALUE", help="change one shape")
    ap.add_argument("--iters", type=int, default=None, help="timed rounds (default 5)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed rounds (default 2; 1 with --quick)")
    ap.add_argument("--gemm-n", type=int, default=None, help="GEMM side for the peak (default 2048; 256 with --quick)")
    ap.add_argument("--no-data", dest="data", action="store_false", help="skip the data-pipeline timing")
    ap.add_argument("--device", default=None, help="cpu | cuda (default: cuda if available)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--json", default=None, help="write every number here")
    ap.add_argument("--malloc", choices=("tuned", "default"), default="tuned",
                    help="tuned (what the tools do: i2i.perf.tune_allocator) or glibc's default behaviour")
    ap.add_argument("--plot", default=None, metavar="PNG", help="bar chart of each target's speed-up over the first config")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="also profile one step of each training configuration: top N operators (torch.profiler)")
    ap.add_argument("--from-json", default=None, metavar="JSON", help="no timing: re-print and --plot a saved run")
    ap.add_argument("--_tiled-child", dest="tiled_child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    args.malloc_tuned = perf.tune_allocator() if args.malloc == "tuned" else False
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        configs = [Options(**c) for c in saved["meta"]["configs"]]
        print(table(saved, configs))
        if args.plot:
            plot(saved, configs, args.plot)
        return 0
    names = args.compare if args.compare else args.configs
    configs = [parse_options(c) for c in names]
    if args.tiled_child:
        tiled_child(json.loads(args.tiled_child), configs[0], args)
        return 0
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    args.iters = args.iters or 5
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    n = args.gemm_n or (256 if args.quick else 2048)
    args.gemm_flops = 2 * n**3
    args.gemm_fns = {"gemm_fp32": gemm_fn(n, torch.float32, device),
                     "gemm_bf16": gemm_fn(n, torch.bfloat16, device)}
    shapes = copy.deepcopy(QUICK if args.quick else PAPER)
    for s in args.set:
        key, _, val = s.partition("=")
        t, _, k = key.partition(".")
        if t not in shapes or not k or not val:
            raise SystemExit(f"bench: --set {s!r}: expected TARGET.KEY=VALUE with TARGET in {', '.join(shapes)}")
        shapes[t][k] = json.loads(val) if val[0].isdigit() or val[0] in "[{-" else val
    targets = args.targets or DEFAULT_TARGETS
    for t in targets:
        if t not in shapes:
            raise SystemExit(f"bench: unknown target {t!r}; expected one of {', '.join(DEFAULT_TARGETS)}")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    import i2i  # noqa: F401  (registers everything)

    results: dict[str, Any] = {
        "meta": {
            "date": datetime.date.today().isoformat(), "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
            "device": str(device), "torch": torch.__version__, "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cpu_native_bf16": perf.cpu_has_native_bf16(), "threads": torch.get_num_threads(),
            "malloc_tuned": args.malloc_tuned,
            "cuda_device": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "loadavg_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
            "configs": [o.__dict__ for o in configs], "warmup": args.warmup, "iters": args.iters, "gemm_n": n,
            "autocast_dtype": {o.name: str(o.dtype(device)) for o in configs},
            "train_fast_plan": perf.fast_training_plan(device).to_dict(),  # "fast" for training targets
        },
        "targets": {},
    }
    # standalone GEMM peak first (each target also times the GEMMs in its own rounds)
    log(f"GEMM peak ({n}³, median of {args.iters})")
    gt = interleaved(args.gemm_fns, 1, args.iters, device, log)
    results["gemm_peak_flops_per_s"] = {k.removeprefix("gemm_"): args.gemm_flops / statistics.median(v) for k, v in gt.items()}
    t_start = time.perf_counter()
    for t in targets:
        log(f"== {t} {shapes[t]}")
        t0 = time.perf_counter()
        if t in ("sr_infer",):
            r = run_infer(shapes[t], configs, args, device, log)
        elif t == "sr_quality":
            r = run_quality(shapes[t], configs, device)
        elif t == "tiled":
            r = run_tiled(shapes[t], configs[-1], args, device, log)
        elif t == "tiled_rss":
            r = run_tiled_rss(shapes[t], configs[-1], args) if device.type == "cpu" else {"skipped": "CPU only"}
        elif t in ("sr_tool", "sr_tool_folder"):
            r = run_sr_tool(t, shapes[t], device, log)
        elif t == "video":
            r = run_video(shapes[t], device, log)
        elif t == "folder_processes":
            r = run_folder_processes(shapes[t], log) if device.type == "cpu" else {"skipped": "CPU processes only"}
        else:
            r = run_train(t, shapes[t], configs, args, device, log)
        if len(configs) > 1 and "configs" in r and all("median_s" in c for c in r["configs"].values()):
            r["speedup"] = r["configs"][configs[0].name]["median_s"] / r["configs"][configs[-1].name]["median_s"]
        r["wall_s"] = time.perf_counter() - t0
        results["targets"][t] = r
        results["derived"] = derived_ratios(results)
        if args.json:  # written after every target: a long run that is cut short keeps what it has
            Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    results["meta"]["loadavg_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    results["meta"]["wall_s"] = time.perf_counter() - t_start
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    print(table(results, configs))
    if args.plot:
        plot(results, configs, args.plot)
    if results.get("derived"):
        print("derived", json.dumps(results["derived"]))
    for t in ("sr_quality", "tiled", "tiled_rss", "sr_tool", "sr_tool_folder", "video", "folder_processes"):
        if t in results["targets"]:
            r = {k: v for k, v in results["targets"][t].items() if k not in ("times_s",)}
            print(t, json.dumps(r, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
