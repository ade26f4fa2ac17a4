#!/usr/bin/env python
"""The peers' own training steps, driven over stdin/stdout by ``tools/bench_peer_train.py``.

Runs in the *bench venv* (``/work/benchvenv``: torch, torchvision, ``basicsr`` and ``realesrgan``
installed from PyPI with ``--no-deps``; see docs/performance.md), never in i2i's environment,
and imports nothing from i2i. One process holds every configuration of one target, built once:

* ``srresnet``: BasicSR's ``SRModel`` with ``MSRResNet`` (Wang et al.'s BasicSR, the modified
  SRResNet of ``options/train/SRResNet_SRGAN/train_MSRResNet_x4.yml``: no BN, L1, Adam 2e-4
  β (0.9, 0.99), EMA 0.999). A step = ``feed_data({'lq', 'gt'})`` + ``optimize_parameters``.
* ``realesrgan``: Real-ESRGAN's ``RealESRGANModel`` (``options/train_realesrgan_x4plus.yml``:
  RRDBNet + UNetDiscriminatorSN, L1 1 + perceptual 1 (VGG19 conv1_2..conv5_4, 0.1/0.1/1/1/1) +
  vanilla GAN 0.1, Adam 1e-4 β (0.9, 0.99), EMA 0.999, the second-order degradation options).
  A step = ``feed_data({'gt', 'kernel1', 'kernel2', 'sinc_kernel'})`` — which runs the
  degradation, the paired crop and the training-pair pool on the device — + ``optimize_parameters``.
  The kernels come from ``RealESRGANDataset.__getitem__`` itself (a 400×400 PNG in a temporary
  folder), drawn before timing: in the peer they are made in the data-loader workers, not in
  the step.

What this script changes in the peers, and only to run them on a CPU without downloads:

* ``nn.Module.cuda`` / ``Tensor.cuda`` return the object unchanged when CUDA is absent:
  ``RealESRGANModel`` moves its JPEG and USM modules and its pool to ``.cuda()`` unconditionally.
* The perceptual loss's VGG19 is built with random weights (``torchvision.models.vgg19(weights=None)``):
  BasicSR would download the ImageNet weights. The cost of a step does not depend on the values.
* ``filter2D`` gets ``img.contiguous()``: on a CPU, ``DiffJPEG`` returns a channels-last-strided
  tensor (it ends in a ``permute``) and ``F.pad(mode="reflect")`` keeps those strides, so
  ``filter2D``'s ``img.view(1, b * c, ph, pw)`` fails in the second stage's blur ("view size is
  not compatible with input tensor's size and stride"). The copy costs the peer one memcpy of
  the LR-sized image.
* ``torchvision.transforms.functional_tensor`` (removed in torchvision 0.17, imported by
  ``basicsr.data.degradations``) is aliased to ``_functional_tensor`` when the venv lacks it.

Configurations: ``precision`` fp32 or bf16 — bf16 wraps ``optimize_parameters`` in
``torch.autocast(device, torch.bfloat16)`` (``feed_data``, the degradation, stays fp32, as the
peer would run it) — and ``channels_last``: the networks (and the VGG) and the fed tensors in
``torch.channels_last``.

Protocol: one JSON object per line on stdin, one JSON reply per line on stdout (everything
else the peers print goes to stderr):

* ``{"op": "info"}`` -> versions, threads
* ``{"op": "build", "name", "target", "shape", "precision", "channels_last", "seed"}``
* ``{"op": "step", "name"}`` -> ``{"step_s", "feed_s", "optimize_s"}`` (perf_counter inside this process)
* ``{"op": "flops", "name"}`` -> FLOPs of one step (``torch.utils.flop_counter``)
* ``{"op": "dataset_time", "name", "n"}`` -> median seconds of ``batch`` dataset items (realesrgan)
* ``{"op": "drop", "name"}`` frees a configuration; ``{"op": "quit"}``
"""
from __future__ import annotations

import contextlib
import copy
import json
import os
import random
import statistics
import sys
import tempfile
import time
import types
from typing import Any

PROTO = sys.stdout
sys.stdout = sys.stderr  # the peers' prints and logs must not mix with the replies


def _alias_functional_tensor() -> None:
    import importlib.util

    if importlib.util.find_spec("torchvision.transforms.functional_tensor") is None:
        import torchvision.transforms._functional_tensor as ft

        sys.modules["torchvision.transforms.functional_tensor"] = ft


def _cpu_patches(torch: Any) -> None:
    if torch.cuda.is_available():
        return
    torch.nn.Module.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]
    torch.Tensor.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]


def _random_vgg() -> None:
    import torchvision
    from basicsr.archs import vgg_arch

    vgg_arch.VGG_PRETRAIN_PATH = os.path.join(tempfile.gettempdir(), "no-such-dir", "vgg19.pth")
    vgg_arch.vgg = types.SimpleNamespace(**{
        name: (lambda pretrained=False, _n=name, **kw: getattr(torchvision.models, _n)(weights=None))
        for name in ("vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn")})


def _contiguous_filter2d() -> None:
    from basicsr.utils import img_process_util
    from realesrgan.models import realesrgan_model

    original = img_process_util.filter2D

    def filter2d(img: Any, kernel: Any) -> Any:
        return original(img.contiguous(), kernel)

    img_process_util.filter2D = filter2d
    realesrgan_model.filter2D = filter2d


_alias_functional_tensor()
import numpy as np
import torch

_cpu_patches(torch)
_random_vgg()
_contiguous_filter2d()

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
DEGRADATION = {  # train_realesrgan_x4plus.yml, top level (RealESRGANModel.feed_data reads these)
    "resize_prob": [0.2, 0.7, 0.1], "resize_range": [0.15, 1.5], "gaussian_noise_prob": 0.5,
    "noise_range": [1, 30], "poisson_scale_range": [0.05, 3], "gray_noise_prob": 0.4, "jpeg_range": [30, 95],
    "second_blur_prob": 0.8, "resize_prob2": [0.3, 0.4, 0.3], "resize_range2": [0.3, 1.2],
    "gaussian_noise_prob2": 0.5, "noise_range2": [1, 25], "poisson_scale_range2": [0.05, 2.5],
    "gray_noise_prob2": 0.4, "jpeg_range2": [30, 95],
}
KERNELS = {  # train_realesrgan_x4plus.yml, datasets.train (RealESRGANDataset reads these)
    "blur_kernel_size": 21, "kernel_list": ["iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso",
                                            "plateau_aniso"],
    "kernel_prob": [0.45, 0.25, 0.12, 0.03, 0.12, 0.03], "sinc_prob": 0.1, "blur_sigma": [0.2, 3],
    "betag_range": [0.5, 4], "betap_range": [1, 2],
    "blur_kernel_size2": 21, "kernel_list2": ["iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso",
                                              "plateau_aniso"],
    "kernel_prob2": [0.45, 0.25, 0.12, 0.03, 0.12, 0.03], "sinc_prob2": 0.1, "blur_sigma2": [0.2, 1.5],
    "betag_range2": [0.5, 4], "betap_range2": [1, 2], "final_sinc_prob": 0.8,
    "gt_size": 256, "use_hflip": True, "use_rot": False,
}


def srresnet_opt(shape: dict[str, Any]) -> dict[str, Any]:
    """train_MSRResNet_x4.yml as BasicSR's option parser would give it (CPU, no dist)."""
    return {
        "name": "bench_MSRResNet", "model_type": "SRModel", "scale": 4, "num_gpu": 0, "dist": False, "rank": 0,
        "world_size": 1, "is_train": True, "manual_seed": 0,
        "network_g": {"type": "MSRResNet", "num_in_ch": 3, "num_out_ch": 3, "num_feat": shape["width"],
                      "num_block": shape["blocks"], "upscale": 4},
        "path": {"pretrain_network_g": None, "param_key_g": "params", "strict_load_g": True, "resume_state": None},
        "train": {
            "ema_decay": 0.999,
            "optim_g": {"type": "Adam", "lr": 2e-4, "weight_decay": 0, "betas": [0.9, 0.99]},
            "scheduler": {"type": "CosineAnnealingRestartLR", "periods": [250000] * 4, "restart_weights": [1] * 4,
                          "eta_min": 1e-7},
            "total_iter": 1000000, "warmup_iter": -1,
            "pixel_opt": {"type": "L1Loss", "loss_weight": 1.0, "reduction": "mean"},
        },
    }


def realesrgan_opt(shape: dict[str, Any]) -> dict[str, Any]:
    """train_realesrgan_x4plus.yml as BasicSR's option parser would give it (CPU, no dist)."""
    return {
        "name": "bench_RealESRGANx4plus", "model_type": "RealESRGANModel", "scale": 4, "num_gpu": 0, "dist": False,
        "rank": 0, "world_size": 1, "is_train": True, "manual_seed": 0,
        "l1_gt_usm": True, "percep_gt_usm": True, "gan_gt_usm": False,
        **DEGRADATION, "gt_size": shape["gt"], "queue_size": shape["queue"],
        "network_g": {"type": "RRDBNet", "num_in_ch": 3, "num_out_ch": 3, "num_feat": shape["width"],
                      "num_block": shape["blocks"], "num_grow_ch": shape["growth"]},
        "network_d": {"type": "UNetDiscriminatorSN", "num_in_ch": 3, "num_feat": shape["d_width"],
                      "skip_connection": True},
        "path": {"pretrain_network_g": None, "param_key_g": "params_ema", "strict_load_g": True, "resume_state": None},
        "train": {
            "ema_decay": 0.999,
            "optim_g": {"type": "Adam", "lr": 1e-4, "weight_decay": 0, "betas": [0.9, 0.99]},
            "optim_d": {"type": "Adam", "lr": 1e-4, "weight_decay": 0, "betas": [0.9, 0.99]},
            "scheduler": {"type": "MultiStepLR", "milestones": [400000], "gamma": 0.5},
            "total_iter": 400000, "warmup_iter": -1,
            "pixel_opt": {"type": "L1Loss", "loss_weight": 1.0, "reduction": "mean"},
            "perceptual_opt": {"type": "PerceptualLoss",
                               "layer_weights": {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1, "conv4_4": 1,
                                                 "conv5_4": 1},
                               "vgg_type": "vgg19", "use_input_norm": True, "perceptual_weight": 1.0,
                               "style_weight": 0, "range_norm": False, "criterion": "l1"},
            "gan_opt": {"type": "GANLoss", "gan_type": "vanilla", "real_label_val": 1.0, "fake_label_val": 0.0,
                        "loss_weight": 0.1},
            "net_d_iters": 1, "net_d_init_iters": 0,
        },
    }


class KernelSource:
    """Batches of (kernel1, kernel2, sinc_kernel) from ``RealESRGANDataset.__getitem__`` itself."""

    def __init__(self) -> None:
        import cv2
        from realesrgan.data.realesrgan_dataset import RealESRGANDataset

        self.dir = tempfile.TemporaryDirectory(prefix="i2i_peer_kernels_")
        img = (np.random.default_rng(0).random((400, 400, 3)) * 255).astype(np.uint8)
        cv2.imwrite(os.path.join(self.dir.name, "a.png"), img)
        meta = os.path.join(self.dir.name, "meta_info.txt")
        with open(meta, "w") as f:
            f.write("a.png\n")
        self.ds = RealESRGANDataset({**KERNELS, "dataroot_gt": self.dir.name, "meta_info": meta,
                                     "io_backend": {"type": "disk"}})

    def batch(self, n: int) -> dict[str, torch.Tensor]:
        items = [self.ds[0] for _ in range(n)]
        return {k: torch.stack([it[k] for it in items]) for k in ("kernel1", "kernel2", "sinc_kernel")}


class PeerStep:
    """One configuration: the peer model, its fed batches and one timed step."""

    def __init__(self, target: str, shape: dict[str, Any], precision: str, channels_last: bool, seed: int):
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        self.target, self.shape, self.precision, self.channels_last = target, shape, precision, channels_last
        self.iter = 0
        g = torch.Generator().manual_seed(1)
        b = shape["batch"]
        if target == "srresnet":
            from basicsr.models.sr_model import SRModel

            self.model = SRModel(srresnet_opt(shape))
            hr = shape["hr"]
            lq = torch.rand(b, 3, hr // 4, hr // 4, generator=g)
            self.feeds = [{"lq": lq, "gt": torch.rand(b, 3, hr, hr, generator=g)}]
            self.nets = [self.model.net_g]
        elif target == "realesrgan":
            from realesrgan.models.realesrgan_model import RealESRGANModel

            self.model = RealESRGANModel(realesrgan_opt(shape))
            gt = torch.rand(b, 3, shape["pad"], shape["pad"], generator=g)
            kernels = KernelSource()
            self.kernels = kernels
            self.feeds = [{"gt": gt, **kernels.batch(b)} for _ in range(shape.get("kernel_batches", 4))]
            self.nets = [self.model.net_g, self.model.net_d, self.model.cri_perceptual.vgg]
        else:
            raise SystemExit(f"train_step.py: unknown target {target!r}")
        if channels_last:
            for m in self.nets:
                m.to(memory_format=torch.channels_last)
        self.params = {type(m).__name__: sum(p.numel() for p in m.parameters()) for m in self.nets}

    def _to_cl(self) -> None:
        for name in ("lq", "gt", "gt_usm"):
            t = getattr(self.model, name, None)
            if isinstance(t, torch.Tensor) and t.dim() == 4:
                setattr(self.model, name, t.contiguous(memory_format=torch.channels_last))

    def autocast(self) -> Any:
        if self.precision == "bf16":
            return torch.autocast(DEVICE.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def __call__(self) -> dict[str, float]:
        self.iter += 1
        feed = self.feeds[self.iter % len(self.feeds)]
        t0 = time.perf_counter()
        self.model.feed_data(feed)
        if self.channels_last:
            self._to_cl()
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
        t1 = time.perf_counter()
        with self.autocast():
            self.model.optimize_parameters(self.iter)
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
        t2 = time.perf_counter()
        return {"step_s": t2 - t0, "feed_s": t1 - t0, "optimize_s": t2 - t1}

    def flops(self) -> int:
        from torch.utils.flop_counter import FlopCounterMode

        saved = copy.deepcopy({"rng": (random.getstate(), np.random.get_state(), torch.get_rng_state())})
        with FlopCounterMode(display=False) as fc:
            self()
        random.setstate(saved["rng"][0])
        np.random.set_state(saved["rng"][1])
        torch.set_rng_state(saved["rng"][2])
        return int(fc.get_total_flops())

    def dataset_time(self, n: int) -> float | None:
        if self.target != "realesrgan":
            return None
        ts = []
        for _ in range(n):
            t0 = time.perf_counter()
            self.kernels.batch(self.shape["batch"])
            ts.append(time.perf_counter() - t0)
        return statistics.median(ts)


def _dist_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def reply(obj: dict[str, Any]) -> None:
    PROTO.write(json.dumps(obj) + "\n")
    PROTO.flush()


def main() -> int:
    steps: dict[str, PeerStep] = {}
    for line in sys.stdin:
        if not line.strip():
            continue
        msg = json.loads(line)
        op = msg.get("op")
        try:
            if op == "info":
                import basicsr
                import realesrgan
                import torchvision

                reply({"ok": True, "python": sys.version.split()[0], "torch": torch.__version__,
                       "torchvision": torchvision.__version__, "basicsr": basicsr.__version__,
                       "realesrgan": getattr(realesrgan, "__version__", None) or _dist_version("realesrgan"), "threads": torch.get_num_threads(),
                       "device": DEVICE.type})
            elif op == "build":
                steps[msg["name"]] = PeerStep(msg["target"], msg["shape"], msg.get("precision", "fp32"),
                                              bool(msg.get("channels_last", False)), int(msg.get("seed", 0)))
                reply({"ok": True, "parameters": steps[msg["name"]].params})
            elif op == "step":
                reply({"ok": True, **steps[msg["name"]]()})
            elif op == "flops":
                reply({"ok": True, "flops": steps[msg["name"]].flops()})
            elif op == "dataset_time":
                reply({"ok": True, "median_s": steps[msg["name"]].dataset_time(int(msg.get("n", 3)))})
            elif op == "drop":
                steps.pop(msg["name"], None)
                import gc

                gc.collect()
                reply({"ok": True})
            elif op == "quit":
                reply({"ok": True})
                return 0
            else:
                reply({"ok": False, "error": f"unknown op {op!r}"})
        except Exception as e:  # noqa: BLE001  (any failure goes back to the driver, which reports it and stops)
            import traceback

            traceback.print_exc()
            reply({"ok": False, "error": f"{type(e).__name__}: {e}"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
