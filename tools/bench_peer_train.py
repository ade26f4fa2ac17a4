#!/usr/bin/env python
"""i2i's training steps against the peers' own training code from PyPI, timed in one run; JSON out.

The peers run in a separate *bench venv* (``--peer-python``, default ``/work/benchvenv/bin/python``
or ``$I2I_BENCH_PYTHON``: torch, torchvision, ``basicsr`` and ``realesrgan`` from PyPI with
``--no-deps``; never an i2i dependency), driven by ``tools/peers/train_step.py`` in one persistent
subprocess; i2i runs in this process through ``tools/bench.py``'s own step
(:func:`bench.make_train_step`: the engine's ``TrainStep``, what ``Trainer.fit`` calls, with
plain PyTorch in place of Accelerate) plus the EMA update the trainer does (timm ``ModelEmaV3``).

Targets:

* ``srresnet`` — BasicSR's ``SRModel`` + ``MSRResNet`` (``train_MSRResNet_x4.yml``: no BN, L1,
  Adam 2e-4 β (0.9, 0.99), EMA 0.999) vs ``tasks/srresnet.yaml`` given the same settings
  (``batch_norm: false``, L1, Adam 2e-4 β (0.9, 0.99), EMA 0.999; ``--srresnet-shipped``: the
  YAML as shipped, BN + MSE + Adam (0.9, 0.999), no EMA). Batch 16 of 96² HR, ×4, 64 channels,
  16 blocks on both sides. What still differs is the network itself: SRGAN's SRResNet has 9×9
  head and tail convolutions and PReLU; MSRResNet 3×3 ones, ReLU/LeakyReLU, a 3×3 conv at HR
  before the last and a bilinear skip — the JSON gives each step's FLOPs.
* ``realesrgan`` — Real-ESRGAN's ``RealESRGANModel`` (``feed_data``: USM + the second-order
  degradation + paired crop + training-pair pool on the device; ``optimize_parameters``: G with
  L1 + perceptual + GAN 0.1, D, EMA 0.999) vs ``tasks/realesrgan_x4.yaml``'s step (the ``realesr``
  recipe's ``prepare_batch`` does the same synthesis on the device inside the step). Same batch,
  HR pad and crop, RRDBNet and UNetDiscriminatorSN sizes, losses, optimizers, EMA. The perceptual
  loss's VGG19 has **random weights on both sides** (nothing downloads; the cost does not depend
  on the values). Defaults are small but real for a 2-core CPU (batch 4, HR pad 200, gt 128,
  RRDBNet 6 blocks); ``--full`` gives the paper's (batch 12, pad 400, gt 256, 23 blocks). The
  peer draws its blur/sinc kernels in its data-loader workers (``RealESRGANDataset``), outside
  the step — reported as ``peer_kernels_per_batch_s`` — while i2i draws them inside its step.
  ``i2i_degradation`` times ``prepare_batch`` alone in the same rounds: its share of i2i's step
  (issue 25 goal ≤ 20 %).

Configurations: i2i ``plain`` (fp32, contiguous, PyTorch's default Adam: the peers' way) and
``fast`` (exactly ``train.fast: true`` on this device); the peer in ``fp32`` and at its best,
``bf16_cl`` (``optimize_parameters`` under ``torch.autocast(device, bfloat16)``, networks and fed
tensors channels_last). More with ``--i2i-configs`` / ``--peer-configs`` (i2i: any ``bench.py``
configuration, plus ``fast+vgglp``; peer: ``fp32``, ``bf16``, ``fp32_cl``, ``bf16_cl``).

Every configuration of a target is built once and timed once per round, ``--warmup`` + ``--iters``
rounds, the order reversed every round (peer and i2i alternate); medians of the timed rounds.
The peer's time is measured inside its process (``perf_counter`` around ``feed_data`` +
``optimize_parameters``), so the pipe is not in it. Ratios are peer time / i2i time (> 1: i2i
is faster).

Examples::

    python tools/bench_peer_train.py --quick --json /tmp/peer_train_quick.json
    python tools/bench_peer_train.py --json bench_peer_train.json
    python tools/bench_peer_train.py --targets realesrgan --full --iters 3 --json realesrgan_full.json
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

import bench  # tools/bench.py: the engine's training step, the configurations
import torch

PEER_SCRIPT = ROOT / "tools" / "peers" / "train_step.py"
DEFAULT_PEER_PYTHON = "/work/benchvenv/bin/python"
TARGETS = ("srresnet", "realesrgan")
SHAPES: dict[str, dict[str, dict[str, Any]]] = {
    "srresnet": {
        "default": {"batch": 16, "hr": 96, "width": 64, "blocks": 16},
        "full": {"batch": 16, "hr": 96, "width": 64, "blocks": 16},
        "quick": {"batch": 2, "hr": 48, "width": 16, "blocks": 2},
    },
    "realesrgan": {
        "default": {"batch": 4, "pad": 200, "gt": 128, "width": 64, "blocks": 6, "growth": 32, "d_width": 64,
                    "queue": 180},
        "full": {"batch": 12, "pad": 400, "gt": 256, "width": 64, "blocks": 23, "growth": 32, "d_width": 64,
                 "queue": 180},
        "quick": {"batch": 2, "pad": 96, "gt": 64, "width": 16, "blocks": 1, "growth": 8, "d_width": 16,
                  "queue": 180},
    },
}
PEER_CONFIGS = {"fp32": ("fp32", False), "bf16": ("bf16", False), "fp32_cl": ("fp32", True), "bf16_cl": ("bf16", True)}
EMA_DECAY = 0.999  # both peers' YAMLs (train.ema_decay)


# ----------------------------------------------------------------------------- arguments
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--targets", default=",".join(TARGETS), help=f"comma-separated, from {', '.join(TARGETS)}")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="tiny shapes, 1 warm-up + 2 timed rounds (< 1 minute)")
    size.add_argument("--full", action="store_true", help="the papers' sizes (realesrgan: batch 12, gt 256, 23 blocks)")
    p.add_argument("--set", action="append", default=[], metavar="TARGET.KEY=INT",
                   help="change one shape value, e.g. realesrgan.blocks=23 (repeatable)")
    p.add_argument("--warmup", type=int, default=None, help="untimed rounds (default 2; --quick 1)")
    p.add_argument("--iters", type=int, default=None, help="timed rounds (default 5; --quick 2)")
    p.add_argument("--i2i-configs", default="plain,fast", help="bench.py configurations, plus fast+vgglp")
    p.add_argument("--peer-configs", default="fp32,bf16_cl", help=f"from {', '.join(PEER_CONFIGS)}")
    p.add_argument("--srresnet-shipped", action="store_true",
                   help="time tasks/srresnet.yaml as shipped (BN, MSE, no EMA) instead of BasicSR's settings")
    p.add_argument("--peer-python", default=os.environ.get("I2I_BENCH_PYTHON", DEFAULT_PEER_PYTHON),
                   help="the bench venv's python (basicsr, realesrgan installed)")
    p.add_argument("--threads", type=int, default=None, help="torch threads on both sides (default: torch's)")
    p.add_argument("--json", default=None, metavar="PATH", help="write the results here")
    args = p.parse_args(argv)
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    for t in args.targets:
        if t not in TARGETS:
            p.error(f"unknown target {t!r}; choose from {', '.join(TARGETS)}")
    args.i2i_configs = [c.strip() for c in args.i2i_configs.split(",") if c.strip()]
    for c in args.i2i_configs:
        i2i_options(c)  # fails early on an unknown flag
    args.peer_configs = [c.strip() for c in args.peer_configs.split(",") if c.strip()]
    for c in args.peer_configs:
        if c not in PEER_CONFIGS:
            p.error(f"unknown peer configuration {c!r}; choose from {', '.join(PEER_CONFIGS)}")
    if not args.i2i_configs or not args.peer_configs:
        p.error("give at least one i2i and one peer configuration")
    args.mode = "quick" if args.quick else "full" if args.full else "default"
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    args.iters = args.iters if args.iters is not None else (2 if args.quick else 5)
    if args.warmup < 0 or args.iters < 1:
        p.error("--warmup must be >= 0 and --iters >= 1")
    args.shapes = {t: dict(SHAPES[t][args.mode]) for t in args.targets}
    for item in args.set:
        key, sep, value = item.partition("=")
        target, dot, name = key.partition(".")
        if not (sep and dot) or target not in SHAPES or name not in SHAPES[target]["default"]:
            p.error(f"--set {item!r}: expected TARGET.KEY=INT with TARGET in {', '.join(TARGETS)} and KEY one of "
                    f"the target's shape keys")
        try:
            v = int(value)
        except ValueError:
            p.error(f"--set {item!r}: {value!r} is not an integer")
        if target in args.shapes:
            args.shapes[target][name] = v
    return args


def i2i_options(name: str) -> bench.Options:
    """A bench.py configuration; ``fast+FLAG`` is ``fast`` with one more bench.py flag (e.g. vgglp)."""
    if name.startswith("fast+"):
        extra = bench.parse_options(name[len("fast+"):])
        base = bench.parse_options("fast")
        return dataclasses.replace(base, name=name, vgglp=extra.vgglp or base.vgglp, vgg32=extra.vgg32 or base.vgg32)
    return bench.parse_options(name)


# ----------------------------------------------------------------------------- the i2i side
def srresnet_overrides(shape: dict[str, Any], shipped: bool) -> list[str]:
    """tasks/srresnet.yaml at ``shape``; unless ``shipped``, with BasicSR's MSRResNet settings."""
    bn = "true" if shipped else "false"
    ov = [(f"models.generator={{type: srresnet, scale: 4, width: {shape['width']}, num_blocks: {shape['blocks']}, "
          f"batch_norm: {bn}}}"), f"data.batch_size={shape['batch']}", f"data.patch_size={shape['hr']}"]
    if not shipped:
        ov += ["losses.pixel={type: l1, weight: 1.0}",
               "optim.generator={type: adam, lr: 2.0e-4, betas: [0.9, 0.99]}", f"train.ema_decay={EMA_DECAY}"]
    return ov


def realesrgan_overrides(shape: dict[str, Any]) -> list[str]:
    """tasks/realesrgan_x4.yaml at ``shape``, VGG19 with random weights (nothing downloads)."""
    return [(f"models.generator={{type: rrdbnet, scale: 4, width: {shape['width']}, num_blocks: {shape['blocks']}, "
            f"growth: {shape['growth']}}}"),
            f"models.discriminator={{type: unet_sn, in_channels: 3, width: {shape['d_width']}, skip_connection: true}}",
            f"data.batch_size={shape['batch']}", f"data.patch_size={shape['pad']}", f"recipe.gt_size={shape['gt']}",
            f"recipe.queue_size={shape['queue']}", "losses.content.weights=null", f"train.ema_decay={EMA_DECAY}"]


def hr_batch(target: str, shape: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The batch the data loader would give: the same tensors the peer script makes (seed 1)."""
    g = torch.Generator().manual_seed(1)
    b = shape["batch"]
    if target == "srresnet":
        lr = torch.rand(b, 3, shape["hr"] // 4, shape["hr"] // 4, generator=g)
        return {"lr": lr, "hr": torch.rand(b, 3, shape["hr"], shape["hr"], generator=g)}
    return {"hr": torch.rand(b, 3, shape["pad"], shape["pad"], generator=g)}


def i2i_workload(target: str, shape: dict[str, Any], shipped: bool = False) -> tuple[bench.TrainWorkload, Any]:
    """(workload, config) of ``target``'s i2i step at ``shape``."""
    if target == "srresnet":
        cfg = bench.load_cfg("srresnet.yaml", srresnet_overrides(shape, shipped))
    elif target == "realesrgan":
        cfg = bench.load_cfg("realesrgan_x4.yaml", realesrgan_overrides(shape))
    else:
        raise KeyError(target)
    return bench.build_train(cfg, hr_batch(target, shape), with_dataset=False), cfg


def i2i_step(w: bench.TrainWorkload, cfg: Any, opts: bench.Options, device: torch.device) -> Callable[[], Any]:
    """bench.make_train_step + the trainer's EMA update of the recipe's EMA slots (``train.ema_decay``)."""
    step = bench.make_train_step(w, opts, device)
    emas: dict[str, Any] = {}
    if cfg.train.ema_decay is not None:
        from timm.utils import ModelEmaV3

        for s in w.recipe.ema_slots:
            if s in step.models:  # type: ignore[attr-defined]
                emas[s] = ModelEmaV3(step.models[s], decay=cfg.train.ema_decay)  # type: ignore[attr-defined]
                emas[s].module.eval()
    count = [0]

    def run() -> Any:
        out = step()
        count[0] += 1
        for s, ema in emas.items():
            ema.update(step.models[s], step=count[0])  # type: ignore[attr-defined]
        return out

    run.plan = step.plan  # type: ignore[attr-defined]
    run.models = step.models  # type: ignore[attr-defined]
    run.ema_slots = sorted(emas)  # type: ignore[attr-defined]
    return run


def i2i_degradation(w: bench.TrainWorkload, device: torch.device) -> Callable[[], Any] | None:
    """``recipe.prepare_batch`` alone, as the step runs it (fp32, no grad), on its own recipe copy."""
    from i2i.engine.trainer import batch_to_device
    from i2i.recipes.base import Recipe

    if type(w.recipe).prepare_batch is Recipe.prepare_batch:
        return None
    recipe = copy.deepcopy(w.recipe).to(device)
    batch = batch_to_device(w.batch, device, False)

    def run() -> Any:
        with torch.no_grad(), torch.autocast(device.type, enabled=False):
            return recipe.prepare_batch(batch)

    return run


# ----------------------------------------------------------------------------- the peer side
class Peer:
    """The peer script in the bench venv, one JSON line per request and per reply."""

    def __init__(self, python: str, threads: int | None):
        if not Path(python).exists():
            raise SystemExit(f"bench_peer_train: no bench venv python at {python}; create it "
                             "(docs/performance.md, 'Training steps vs BasicSR / Real-ESRGAN') or pass --peer-python")
        env = dict(os.environ, PYTHONPATH="", PYTHONUNBUFFERED="1")
        if threads:
            env["OMP_NUM_THREADS"] = str(threads)
        self.proc = subprocess.Popen([python, str(PEER_SCRIPT)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL if not os.environ.get("I2I_PEER_STDERR") else None,
                                     text=True, cwd=str(ROOT), env=env)

    def ask(self, **msg: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"bench_peer_train: the peer process ended (exit {self.proc.wait()}) on {msg.get('op')!r}; "
                             "rerun with I2I_PEER_STDERR=1 to see its traceback")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise SystemExit(f"bench_peer_train: the peer failed on {msg}: {reply.get('error')} "
                             "(I2I_PEER_STDERR=1 shows its traceback)")
        return reply

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.ask(op="quit")
            except SystemExit:
                pass
            self.proc.wait(timeout=30)


# ----------------------------------------------------------------------------- timing
def rounds(fns: dict[str, Callable[[], float]], warmup: int, iters: int,
           log: Callable[[str], None]) -> dict[str, list[float]]:
    """Each fn once per round (it returns its own seconds), order reversed every round."""
    names = list(fns)
    times: dict[str, list[float]] = {k: [] for k in names}
    for r in range(warmup + iters):
        order = names if r % 2 == 0 else names[::-1]
        got = {}
        for k in order:
            got[k] = fns[k]()
            time.sleep(0.02)  # let the other process's / this one's worker threads go idle
            if r >= warmup:
                times[k].append(got[k])
        log(f"  round {r + 1}/{warmup + iters} ({'timed' if r >= warmup else 'warm-up'}): "
            + ", ".join(f"{k} {got[k]:.3f}s" for k in names))
    return times


def timed(fn: Callable[[], Any]) -> Callable[[], float]:
    def run() -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    return run


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def run_target(target: str, shape: dict[str, Any], args: argparse.Namespace, peer: Peer, device: torch.device,
               log: Callable[[str], None]) -> dict[str, Any]:
    log(f"{target}: {shape}")
    w, cfg = i2i_workload(target, shape, shipped=args.srresnet_shipped)
    fns: dict[str, Callable[[], float]] = {}
    i2i_steps = {}
    for c in args.i2i_configs:
        i2i_steps[c] = i2i_step(w, cfg, i2i_options(c), device)
        fns[f"i2i_{c}"] = timed(i2i_steps[c])
    with bench.literal_layers(*w.models.values()):
        i2i_flops = bench.perf.count_flops(i2i_step(w, cfg, i2i_options(args.i2i_configs[0]), device))
    deg = i2i_degradation(w, device)
    if deg is not None:
        fns["i2i_degradation"] = timed(deg)
    peer_info: dict[str, Any] = {}
    feed: dict[str, list[float]] = {}
    for c in args.peer_configs:
        precision, cl = PEER_CONFIGS[c]
        name = f"{target}_{c}"
        peer_info[c] = peer.ask(op="build", name=name, target=target, shape=shape, precision=precision,
                                channels_last=cl, seed=0)
        feed[c] = []

        def peer_step(name: str = name, c: str = c) -> float:
            r = peer.ask(op="step", name=name)
            feed[c].append(r["feed_s"])
            return float(r["step_s"])

        fns[f"peer_{c}"] = peer_step
    peer_flops = peer.ask(op="flops", name=f"{target}_{args.peer_configs[0]}")["flops"]
    times = rounds(fns, args.warmup, args.iters, log)
    res: dict[str, Any] = {
        "shape": shape, "i2i": {}, "peer": {}, "ratios": {},
        "i2i_parameters": w.info["parameters"], "peer_parameters": peer_info[args.peer_configs[0]]["parameters"],
        "i2i_flops_per_step": i2i_flops, "peer_flops_per_step": peer_flops,
        "i2i_ema_slots": i2i_steps[args.i2i_configs[0]].ema_slots,  # type: ignore[attr-defined]
    }
    for c in args.i2i_configs:
        t = times[f"i2i_{c}"]
        res["i2i"][c] = {"median_s": med(t), "min_s": min(t), "times_s": t, "images_per_s": shape["batch"] / med(t)}
        if i2i_steps[c].plan:  # type: ignore[attr-defined]
            res["i2i"][c]["train_fast_plan"] = i2i_steps[c].plan  # type: ignore[attr-defined]
    for c in args.peer_configs:
        t = times[f"peer_{c}"]
        fd = feed[c][args.warmup:]
        res["peer"][c] = {"median_s": med(t), "min_s": min(t), "times_s": t, "images_per_s": shape["batch"] / med(t),
                          "feed_data_median_s": med(fd), "feed_data_s": fd, "feed_data_share": med(fd) / med(t)}
    for pc in args.peer_configs:
        for ic in args.i2i_configs:
            res["ratios"][f"peer_{pc}/i2i_{ic}"] = res["peer"][pc]["median_s"] / res["i2i"][ic]["median_s"]
    if deg is not None:
        d = med(times["i2i_degradation"])
        res["i2i_degradation"] = {"median_s": d, "times_s": times["i2i_degradation"],
                                  "share_of_step": {c: d / res["i2i"][c]["median_s"] for c in args.i2i_configs}}
        n = max(3, args.iters)
        res["peer_kernels_per_batch_s"] = peer.ask(op="dataset_time", name=f"{target}_{args.peer_configs[0]}",
                                                   n=n)["median_s"]
    for pc in args.peer_configs:  # free the peer's memory before the next target
        peer.ask(op="drop", name=f"{target}_{pc}")
    return res


def summary_lines(results: dict[str, Any]) -> list[str]:
    lines = []
    for target, r in results.items():
        lines.append(f"{target} {r['shape']}")
        for side in ("i2i", "peer"):
            for c, v in r[side].items():
                extra = f"  (feed_data {v['feed_data_median_s']:.3f}s)" if "feed_data_median_s" in v else ""
                lines.append(f"  {side} {c:<12} {v['median_s']:.3f} s/step  {v['images_per_s']:.2f} img/s{extra}")
        if "i2i_degradation" in r:
            shares = ", ".join(f"{c} {s:.0%}" for c, s in r["i2i_degradation"]["share_of_step"].items())
            lines.append(f"  i2i degradation {r['i2i_degradation']['median_s']:.3f} s = {shares} of the step")
        lines.append("  ratios (peer s / i2i s): " + ", ".join(f"{k} {v:.2f}x" for k, v in r["ratios"].items()))
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    t_start = time.perf_counter()
    load_start = list(os.getloadavg()) if hasattr(os, "getloadavg") else None

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t_start:6.1f}s] {msg}", flush=True)

    peer = Peer(args.peer_python, args.threads)
    try:
        info = peer.ask(op="info")
        log(f"peer: {info}")
        results = {t: run_target(t, args.shapes[t], args, peer, device, log) for t in args.targets}
    finally:
        peer.close()
    out = {
        "tool": "tools/bench_peer_train.py", "argv": sys.argv[1:] if argv is None else argv,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "mode": args.mode, "warmup": args.warmup, "iters": args.iters,
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                    "load_avg_at_start": load_start, "load_avg_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None},
        "i2i_side": {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
                     "srresnet": "shipped" if args.srresnet_shipped else "basicsr_settings"},
        "peer_side": info,
        "results": results,
        "seconds": time.perf_counter() - t_start,
    }
    for line in summary_lines(results):
        print(line)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2))
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
