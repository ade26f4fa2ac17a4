#!/usr/bin/env python
"""i2i against Real-ESRGAN's own inference code (``RealESRGANer``): parity, speed, peak memory; JSON out.

Issue 24, points 6 and 9. The peer runs in a separate venv (``--peer-python``, made by
tools/peers/make_bench_venv.sh) through tools/peers/realesrgan_peer.py, as subprocesses: Real-ESRGAN
and BasicSR are never i2i dependencies and nothing of i2i imports them.

Weights: peer-format files with random weights (fixed seed), made here with i2i's own networks, whose
state-dict keys are the peers' (i2i/nn/rrdbnet.py, i2i/nn/srvgg.py):

* ``rrdbnet``: RealESRGAN_x4plus's layout — ``{"params_ema": RRDBNet(×4, 64 ch, 23 blocks, growth 32)}``;
* ``srvgg``: realesr-general-x4v3's layout — ``{"params": SRVGGNetCompact(×4, 64 ch, 32 convs, PReLU)}``.

A random network's output is mostly outside [0, 1] (so clamped: black or white), where any two
implementations agree. So the last convolution is rescaled, exactly, from the network's output on the
photo: RRDBNet's output gets mean 0.5 and standard deviation 0.2 per channel, SRVGGNetCompact's
residual (over the nearest-upsampled input) mean 0 and std 0.05. The outputs then span the 8-bit
range with few clipped pixels (``clipped_fraction`` in the JSON).

Input: a real photo, a centre crop of scikit-image's ``coffee`` (tools/bench.py ``real_photo``); for
the 1024² memory run, ``astronaut`` resized to 1024² (``tool_photo``).

Targets (``--targets``; all by default):

* ``parity``: ``i2i-infer --checkpoint FILE img.png`` (a fresh process, tools/infer.py) against the
  peer's ``inference_realesrgan.py`` procedure on the same file and PNG: mean absolute difference and
  99.9th percentile, in 8-bit levels (goal ≤ 0.5 and ≤ 2), whole image (i2i ``--tile 0``, peer
  ``tile 0``) and tiled at the same tile (peer ``tile_pad 10``; i2i its default, exact context, and
  ``--tile-overlap 10``, the peer's context). Also the peer's tiled output against its own whole one.
* ``speed``: the same weights, photo and tile, each configuration once per round, rounds alternating
  their order (``interleaved`` of tools/bench.py). Both sides are timed the same way: a warm process
  upscaling an already decoded uint8 array to a uint8 array (i2i: ``SuperResolutionPipeline`` in this
  process; the peer: ``RealESRGANer.enhance`` in a persistent subprocess — start-up, model load and
  PNG decode/encode are not counted on either side; the pipe's round trip, < 1 ms, is). Configurations:
  ``peer_fp32``; ``i2i_fp32`` (the default: exact tile context); ``i2i_fp32_pad10`` (``--tile-overlap 10``,
  the peer's work); ``i2i_fast`` / ``i2i_fast_pad10`` (``--fast``); and the whole image (tile 0):
  ``peer_fp32_whole``, ``i2i_fp32_whole``, ``i2i_fast_whole``. Ratios: peer time / i2i time, each
  against the peer at the same tile.
  Threads: both ``--threads`` (default: torch's). This process runs ``i2i.perf.tune_allocator`` as
  ``i2i-infer`` does; the peer runs with glibc's defaults, as it does.
* ``rss``: peak RSS (``VmHWM``) of fresh processes, each a whole command — ``i2i-infer`` (read, upscale,
  write) and the peer's script — on the speed photo and tile.
* ``big``: RRDBNet ×4 from a 1024² photo to 4096² with tiles (``--full``; smaller otherwise), each a
  fresh process: ``i2i-infer`` with its default (exact) tiling, with ``--tile-overlap 10``, and the
  peer's script at the same tile; peak RSS (goal < 1.5 GB), whole-process wall time, and the default's
  difference from the peer's output.

Examples::

    python tools/bench_peers.py --peer-python /work/benchvenv/bin/python --quick --json peers_quick.json
    python tools/bench_peers.py --peer-python /work/benchvenv/bin/python --full --json peers_full.json
    python tools/bench_peers.py --peer-python /work/benchvenv/bin/python --full --targets big --json big.json
"""
from __future__ import annotations

import argparse
import copy
import datetime
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

import numpy as np
import torch
from torch import nn

PEER_SCRIPT = ROOT / "tools" / "peers" / "realesrgan_peer.py"
ARCHS = ("rrdbnet", "srvgg")
TARGETS = ("parity", "speed", "rss", "big")
SCHEMA_VERSION = 1
GOALS = {"parity_mean_levels": 0.5, "parity_p999_levels": 2.0, "speed_fp32_ratio": 1.0, "speed_fast_ratio": 2.0,
         "big_rss_mib": 1.5 * 1000**3 / 2**20}
"""Issue 24: parity ≤ 0.5 mean, ≤ 2 at the 99.9th percentile (8-bit levels); fp32 ≥ 1.0× the peer, --fast ≥ 2×
the peer's fp32; RSS ≤ the peer's; RRDBNet ×4 1024² -> 4096² under 1.5 GB (decimal, = 1430.5 MiB)."""

SHAPES: dict[str, dict[str, Any]] = {
    "parity": {"lr": 64, "tile": 32},
    "speed": {"lr": 64, "tile": 32, "warmup": 1, "iters": 3},
    "rss": {"lr": 64, "tile": 32},
    "big": {"lr": 256, "tile": 64, "overlap": 10},
}
FULL: dict[str, dict[str, Any]] = {
    "parity": {"lr": 128, "tile": 64},
    "speed": {"lr": 128, "tile": 64, "warmup": 1, "iters": 2},
    "rss": {"lr": 128, "tile": 64},
    "big": {"lr": 1024, "tile": 192, "overlap": 10},
}
QUICK: dict[str, dict[str, Any]] = {
    "parity": {"lr": 24, "tile": 12},
    "speed": {"lr": 24, "tile": 12, "warmup": 1, "iters": 1},
    "rss": None,  # not in --quick (four more processes per network)
    "big": None,
}
RRDB_BLOCKS = {"default": 23, "quick": 6}
"""RealESRGAN_x4plus has 23 blocks; ``--quick`` uses 6 (RealESRGAN_x4plus_anime_6B's count) to stay under a minute."""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- weights and photo
def make_network(arch: str, seed: int, blocks: int = 23) -> nn.Module:
    """i2i's network with the peer's keys, random weights drawn under ``torch.manual_seed(seed)``.

    Every convolution Kaiming-normal for its activation's slope (LeakyReLU 0.2; PReLU 0.25), biases
    N(0, 0.01²): unlike the libraries' initialisations (ESRGAN's ×0.1 dense blocks, PyTorch's default
    uniform), which leave a random deep network's output depending on a few pixels around each
    output, this keeps the deep path's contribution, so tiling with too little context shows up, as it
    does with trained weights."""
    from i2i.nn.rrdbnet import RRDBNet
    from i2i.nn.srvgg import SRVGGNetCompact

    torch.manual_seed(seed)
    if arch == "rrdbnet":
        net: nn.Module = RRDBNet(scale=4, width=64, num_blocks=blocks, growth=32).eval()
        slope = 0.2  # LeakyReLU
    elif arch == "srvgg":
        net = SRVGGNetCompact(scale=4, width=64, num_conv=32, act="prelu").eval()
        slope = 0.25  # PReLU's initial slope
    else:
        raise ValueError(f"arch: expected one of {ARCHS}, got {arch!r}")
    with torch.no_grad():  # signal-preserving: far pixels keep mattering, as in a trained network
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=slope, nonlinearity="leaky_relu")
                nn.init.normal_(m.bias, std=0.01)
    return net


@torch.no_grad()
def calibrate(net: nn.Module, arch: str, photo: torch.Tensor) -> dict[str, list[float]]:
    """Rescale the last convolution so the output on ``photo`` (1, 3, h, w) in [0, 1] spans the image range.

    RRDBNet: output mean 0.5, std 0.2 per channel. SRVGGNetCompact: the residual over the
    nearest-upsampled input (its last conv's channel ``c·s² + k`` feeds output channel c) gets mean 0
    and std 0.05. Exact: the last layer is affine. Returns the per-channel (mean, std) before."""
    y = net(photo)
    if arch == "rrdbnet":
        last, groups, target = net.conv_last, 1, (0.5, 0.2)
    else:
        y = y - torch.nn.functional.interpolate(photo, scale_factor=net.scale, mode="nearest")
        last, groups, target = net.body[-1], net.scale**2, (0.0, 0.05)
    mean, std = y.mean(dim=(0, 2, 3)), y.std(dim=(0, 2, 3)).clamp_min(1e-8)
    k = target[1] / std
    for c in range(y.shape[1]):
        rows = slice(c * groups, (c + 1) * groups)
        last.weight[rows] *= k[c]
        last.bias[rows] = (last.bias[rows] - mean[c]) * k[c] + target[0]
    return {"mean": mean.tolist(), "std": std.tolist()}


def peer_layout(arch: str, net: nn.Module) -> dict[str, dict[str, torch.Tensor]]:
    """The on-disk dict of the peer's release files: ``params_ema`` (RealESRGAN_x4plus), ``params`` (realesr-general-x4v3)."""
    key = "params_ema" if arch == "rrdbnet" else "params"
    return {key: {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}}


def make_peer_weights(arch: str, path: Path, photo: torch.Tensor, seed: int = 0, blocks: int = 23) -> dict[str, Any]:
    """Write a peer-format weights file (random weights, ``seed``, calibrated on ``photo``); what was written."""
    net = make_network(arch, seed, blocks)
    before = calibrate(net, arch, photo)
    blob = peer_layout(arch, net)
    torch.save(blob, path)
    (wrapper, sd), = blob.items()
    return {"file": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "wrapper": wrapper,
            "tensors": len(sd), "parameters": int(sum(v.numel() for v in sd.values())), "seed": seed,
            "layout": "RealESRGAN_x4plus (RRDBNet)" if arch == "rrdbnet" else "realesr-general-x4v3 (SRVGGNetCompact)",
            "blocks" if arch == "rrdbnet" else "convs": blocks if arch == "rrdbnet" else 32,
            "calibration_output_before": before}


def photo_u8(side: int) -> np.ndarray:
    """(side, side, 3) uint8 RGB: a crop of ``coffee`` (side ≤ 400), else ``astronaut`` resized (tools/bench.py)."""
    from bench import real_photo, tool_photo

    if side <= 400:
        return (real_photo(side)[0].permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
    return np.ascontiguousarray(tool_photo(side))


def save_png(a: np.ndarray, path: Path) -> Path:
    from PIL import Image

    Image.fromarray(a).save(path)
    return path


def read_png(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


# ----------------------------------------------------------------------------- comparing
def diff_levels(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """|a - b| of two uint8 images in 8-bit levels: mean, 99.9th percentile (linear interpolation), max."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return {"mean": float(d.mean()), "p999": float(np.percentile(d, 99.9)), "max": int(d.max()),
            "fraction_differing": float((d > 0).mean())}


def within(d: dict[str, float]) -> bool:
    return d["mean"] <= GOALS["parity_mean_levels"] and d["p999"] <= GOALS["parity_p999_levels"]


def image_stats(a: np.ndarray) -> dict[str, float]:
    return {"mean": float(a.mean()), "std": float(a.std()), "clipped_fraction": float(((a == 0) | (a == 255)).mean())}


# ----------------------------------------------------------------------------- processes
I2I_CHILD = r"""
import json, sys, time
from pathlib import Path
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[1])
from i2i.cli import run
from i2i.commands import infer_main
seconds = []
for argv in json.loads(sys.argv[3]):
    t = time.perf_counter()
    rc = run(infer_main, argv)
    seconds.append(time.perf_counter() - t)
    if rc:
        sys.exit(rc)
hwm = [int(l.split()[1]) / 1024 for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM:")]
Path(sys.argv[2]).write_text(json.dumps({"seconds": {"runs": seconds, "total": time.perf_counter() - t0},
                                          "rss_peak_mib": hwm[0] if hwm else None}))
"""
"""What ``i2i-infer ARGS`` runs (i2i.cli.run around infer_main: tune_allocator, one-line errors), for one or
more ARGS in turn in one process, then the process's peak RSS (over all of them)."""


def i2i_args(weights: Path, image: Path, out: Path, tile: int, overlap: int | None = None, fast: bool = False) -> list[str]:
    """``i2i-infer``'s arguments: ``--checkpoint W IMG -o OUT --tile T [--tile-overlap O] [--fast]``."""
    args = ["--checkpoint", str(weights), str(image), "-o", str(out), "--tile", str(tile), "--device", "cpu"]
    return args + (["--tile-overlap", str(overlap)] if overlap is not None else []) + (["--fast"] if fast else [])


def run_i2i(runs: list[list[str]], threads: int | None = None) -> dict[str, Any]:
    """``i2i-infer`` with each of ``runs`` (argument lists) in turn, in one fresh process."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        report = Path(f.name)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", I2I_CHILD, str(ROOT), str(report), json.dumps(runs)], capture_output=True,
                       check=False, text=True, env=env)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise RuntimeError(f"i2i-infer {runs}: exit {p.returncode}: {p.stderr.strip()[-800:]}")
    r = json.loads(report.read_text())
    report.unlink()
    return {"commands": ["i2i-infer " + " ".join(a) for a in runs], "wall_s": wall, **r}


def run_peer(peer_python: str, weights: Path, image: Path, outs: list[Path], tiles: list[int],
             threads: int | None = None) -> dict[str, Any]:
    """The peer's ``inference_realesrgan.py`` procedure in a fresh process of the bench venv, once per tile."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        report = Path(f.name)
    cmd = [peer_python, str(PEER_SCRIPT), str(weights), str(image), "--tile", *map(str, tiles), "--output",
           *map(str, outs), "--json", str(report)] + (["--threads", str(threads)] if threads else [])
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, check=False, text=True, cwd=tempfile.gettempdir(), env=_peer_env())
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise RuntimeError(f"peer {' '.join(cmd[1:])}: exit {p.returncode}: {p.stderr.strip()[-800:]}")
    r = json.loads(report.read_text())
    report.unlink()
    return {"command": " ".join(cmd), "wall_s": wall, **r}


def _peer_env() -> dict[str, str]:
    """The environment minus i2i's venv and path (the peer runs in its own venv, from a neutral folder)."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}


class PeerServer:
    """The peer script in ``--serve`` mode: model built and image decoded once; ``run()`` = one ``enhance``."""

    def __init__(self, peer_python: str, weights: Path, image: Path, tile: int, threads: int | None):
        cmd = [peer_python, str(PEER_SCRIPT), str(weights), str(image), "--tile", str(tile), "--serve"]
        cmd += ["--threads", str(threads)] if threads else []
        self.err = tempfile.TemporaryFile()  # noqa: SIM115  (open while the server lives; closed in close())
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, text=True,
                                  cwd=tempfile.gettempdir(), env=_peer_env())
        self.info = self._reply()
        self.seconds: list[float] = []

    def _reply(self) -> dict[str, Any]:
        line = self.p.stdout.readline()  # type: ignore[union-attr]
        if not line:
            self.err.seek(0)
            raise RuntimeError(f"peer server exited: {self.err.read().decode(errors='replace')[-800:]}")
        return json.loads(line)

    def run(self) -> None:
        self.p.stdin.write("run\n")  # type: ignore[union-attr]
        self.p.stdin.flush()  # type: ignore[union-attr]
        r = self._reply()
        if "seconds" not in r:
            raise RuntimeError(f"peer server: {r}")
        self.seconds.append(r["seconds"])

    def close(self) -> None:
        try:
            self.p.stdin.write("quit\n")  # type: ignore[union-attr]
            self.p.stdin.flush()  # type: ignore[union-attr]
            self.p.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.p.kill()
        self.err.close()


# ----------------------------------------------------------------------------- targets
def run_parity(arch: str, weights: Path, work: Path, shape: dict[str, Any], peer_python: str,
               threads: int | None) -> dict[str, Any]:
    """Each side's outputs from one process (i2i-infer three times, the peer's procedure twice)."""
    lr, tile = shape["lr"], shape["tile"]
    img = save_png(photo_u8(lr), work / f"photo_{lr}.png")
    o = {k: work / f"{arch}_{k}.png" for k in ("i2i_whole", "i2i_tiled", "i2i_tiled_pad10", "peer_whole", "peer_tiled")}
    log(f"  parity {arch}: i2i-infer --tile 0 / --tile {tile} / --tile {tile} --tile-overlap 10")
    mine = run_i2i([i2i_args(weights, img, o["i2i_whole"], 0), i2i_args(weights, img, o["i2i_tiled"], tile),
                    i2i_args(weights, img, o["i2i_tiled_pad10"], tile, overlap=10)], threads)
    log(f"  parity {arch}: peer tile 0 / tile {tile} (tile_pad 10)")
    theirs = run_peer(peer_python, weights, img, [o["peer_whole"], o["peer_tiled"]], [0, tile], threads)
    outs = {k: read_png(v) for k, v in o.items()}
    pairs = {"whole: i2i vs peer": ("i2i_whole", "peer_whole"),
             "tiled: i2i (default, exact) vs peer tiled": ("i2i_tiled", "peer_tiled"),
             "tiled: i2i (default, exact) vs peer whole": ("i2i_tiled", "peer_whole"),
             "tiled: i2i --tile-overlap 10 vs peer tiled": ("i2i_tiled_pad10", "peer_tiled"),
             "peer tiled vs peer whole (the peer's seams)": ("peer_tiled", "peer_whole"),
             "i2i tiled vs i2i whole": ("i2i_tiled", "i2i_whole")}
    comparisons = {}
    for label, (a, b) in pairs.items():
        d = diff_levels(outs[a], outs[b])
        comparisons[label] = {**d, "within_goal": within(d)}
    return {"shape": shape, "input": [lr, lr, 3], "output": list(outs["peer_whole"].shape),
            "peer_output_stats": image_stats(outs["peer_whole"]), "comparisons": comparisons,
            "processes": {"i2i": {"commands": mine["commands"], "seconds": mine["seconds"]},
                          "peer": {"command": theirs["command"], "seconds": theirs["seconds"]}}}


def run_speed(arch: str, weights: Path, work: Path, shape: dict[str, Any], peer_python: str,
              threads: int | None) -> dict[str, Any]:
    from bench import interleaved

    from i2i.inference import load_model
    from i2i.pipelines.super_resolution import SuperResolutionPipeline

    lr, tile = shape["lr"], shape["tile"]
    arr = photo_u8(lr)
    img = save_png(arr, work / f"photo_{lr}.png")
    pipes = {
        "i2i_fp32": SuperResolutionPipeline(load_model(weights, device="cpu"), tile=tile),
        "i2i_fp32_pad10": SuperResolutionPipeline(load_model(weights, device="cpu"), tile=tile, overlap=10),
        "i2i_fast": SuperResolutionPipeline(load_model(weights, device="cpu"), tile=tile, fast=True),
        "i2i_fast_pad10": SuperResolutionPipeline(load_model(weights, device="cpu"), tile=tile, overlap=10, fast=True),
        "i2i_fp32_whole": SuperResolutionPipeline(load_model(weights, device="cpu"), tile=0),
        "i2i_fast_whole": SuperResolutionPipeline(load_model(weights, device="cpu"), tile=0, fast=True),
    }
    peers = {"peer_fp32": PeerServer(peer_python, weights, img, tile, threads),
             "peer_fp32_whole": PeerServer(peer_python, weights, img, 0, threads)}
    try:
        fns: dict[str, Callable[[], Any]] = {k: s.run for k, s in peers.items()}
        fns.update({k: (lambda p=p: p(arr)) for k, p in pipes.items()})
        times = interleaved(fns, shape["warmup"], shape["iters"], torch.device("cpu"), log)
    finally:
        for s in peers.values():
            s.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    ratios = {k: med["peer_fp32_whole" if k.endswith("_whole") else "peer_fp32"] / med[k] for k in pipes}
    return {"shape": shape, "input": [lr, lr, 3], "overlap": {k: p.overlap for k, p in pipes.items()},
            "peer": {k: v for k, v in peers["peer_fp32"].info.items() if k != "ready"},
            "peer_self_timed_s": {k: s.seconds[shape["warmup"]:] for k, s in peers.items()},
            "median_s": med, "times_s": times, "ratio_peer_over_i2i": ratios}


def run_rss(arch: str, weights: Path, work: Path, shape: dict[str, Any], peer_python: str,
            threads: int | None) -> dict[str, Any]:
    lr, tile = shape["lr"], shape["tile"]
    img = save_png(photo_u8(lr), work / f"photo_{lr}.png")
    runs = {
        "peer_fp32": lambda o: run_peer(peer_python, weights, img, [o], [tile], threads),
        "i2i_fp32": lambda o: run_i2i([i2i_args(weights, img, o, tile)], threads),
        "i2i_fp32_pad10": lambda o: run_i2i([i2i_args(weights, img, o, tile, overlap=10)], threads),
        "i2i_fast_pad10": lambda o: run_i2i([i2i_args(weights, img, o, tile, overlap=10, fast=True)], threads),
    }
    out = {}
    for name, fn in runs.items():
        log(f"  rss {arch}: {name}")
        r = fn(work / f"{arch}_rss_{name}.png")
        out[name] = {"rss_peak_mib": r.get("rss_peak_mib"), "wall_s": r["wall_s"],
                     "command": r.get("command") or r["commands"][0]}
    peer = out["peer_fp32"]["rss_peak_mib"]
    return {"shape": shape, "processes": out,
            "ratio_i2i_over_peer": {k: v["rss_peak_mib"] / peer for k, v in out.items() if k != "peer_fp32"}}


def run_big(weights: Path, work: Path, shape: dict[str, Any], threads: int | None,
            peer_python: str | None = None) -> dict[str, Any]:
    """RRDBNet ×4 on a big photo, each configuration a fresh process: ``i2i-infer`` with its default (exact:
    staged) tiling, with the peer's context (``--tile-overlap``), and the peer at the same tile; peak RSS."""
    lr, tile = shape["lr"], shape["tile"]
    img = save_png(photo_u8(lr), work / f"photo_{lr}.png")
    runs: dict[str, Callable[[Path], dict[str, Any]]] = {
        "i2i_default": lambda o: run_i2i([i2i_args(weights, img, o, tile)], threads),
        "i2i_pad": lambda o: run_i2i([i2i_args(weights, img, o, tile, overlap=shape["overlap"])], threads),
    }
    if peer_python:
        runs["peer_fp32"] = lambda o: run_peer(peer_python, weights, img, [o], [tile], threads)
    out: dict[str, Any] = {}
    for name, fn in runs.items():
        log(f"  big: rrdbnet ×4 {lr}² -> {4 * lr}², tile {tile}: {name}")
        r = fn(work / f"big_{name}.png")
        png = read_png(work / f"big_{name}.png")
        out[name] = {"rss_peak_mib": r["rss_peak_mib"], "wall_s": r["wall_s"], "output": list(png.shape),
                     "command": r.get("command") or r["commands"][0],
                     "under_goal": r["rss_peak_mib"] < GOALS["big_rss_mib"]}
    default = out["i2i_default"]
    res: dict[str, Any] = {"shape": shape, "input": [lr, lr, 3], "output": default["output"], "processes": out,
                           "rss_peak_mib": default["rss_peak_mib"], "wall_s": default["wall_s"],
                           "command": default["command"], "under_goal": default["under_goal"]}
    if "peer_fp32" in out:
        a, b = read_png(work / "big_i2i_default.png"), read_png(work / "big_peer_fp32.png")
        res["i2i_default_vs_peer_levels"] = diff_levels(a, b)
        res["ratio_i2i_over_peer"] = {k: v["rss_peak_mib"] / out["peer_fp32"]["rss_peak_mib"] for k, v in out.items()
                                      if k != "peer_fp32"}
        res["speed_peer_over_i2i"] = {k: out["peer_fp32"]["wall_s"] / v["wall_s"] for k, v in out.items()
                                      if k != "peer_fp32"}
    return res


# ----------------------------------------------------------------------------- the report
def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The issue's goals, each read off the measurements."""
    s: dict[str, Any] = {}
    for arch, p in report.get("parity", {}).items():
        c = p["comparisons"]
        s[f"parity_{arch}_whole"] = c["whole: i2i vs peer"]["within_goal"]
        s[f"parity_{arch}_tiled_same_context"] = c["tiled: i2i --tile-overlap 10 vs peer tiled"]["within_goal"]
        s[f"parity_{arch}_tiled_exact_vs_peer_whole"] = c["tiled: i2i (default, exact) vs peer whole"]["within_goal"]
        s[f"peer_{arch}_seams_mean_p999"] = [c["peer tiled vs peer whole (the peer's seams)"][k] for k in ("mean", "p999")]
    for arch, sp in report.get("speed", {}).items():
        r = sp["ratio_peer_over_i2i"]
        s[f"speed_{arch}_fp32_default"] = r["i2i_fp32"]
        s[f"speed_{arch}_fp32_pad10"] = r["i2i_fp32_pad10"]
        s[f"speed_{arch}_fast_default"] = r["i2i_fast"]
        s[f"speed_{arch}_fast_pad10"] = r["i2i_fast_pad10"]
        s[f"speed_{arch}_fp32_whole"] = r["i2i_fp32_whole"]
        s[f"speed_{arch}_fast_whole"] = r["i2i_fast_whole"]
    for arch, rs in report.get("rss", {}).items():
        s[f"rss_{arch}_i2i_over_peer"] = rs["ratio_i2i_over_peer"]
    if "big" in report:
        s["big_rss_mib"] = report["big"]["rss_peak_mib"]
        s["big_under_1.5GB"] = report["big"]["under_goal"]
    return s


REQUIRED_KEYS = {"schema": int, "meta": dict, "weights": dict, "shapes": dict, "summary": dict}


def check_report(report: dict[str, Any]) -> list[str]:
    """What is wrong with a report's layout (empty: fine)."""
    bad = [f"{k}: expected {t.__name__}" for k, t in REQUIRED_KEYS.items() if not isinstance(report.get(k), t)]
    for arch, p in report.get("parity", {}).items():
        for label, c in p.get("comparisons", {}).items():
            for k in ("mean", "p999", "max", "within_goal"):
                if k not in c:
                    bad.append(f"parity.{arch}.{label}: no {k}")
    for arch, sp in report.get("speed", {}).items():
        for k in ("median_s", "ratio_peer_over_i2i", "times_s"):
            if k not in sp:
                bad.append(f"speed.{arch}: no {k}")
    return bad


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--peer-python", required=True, help="the bench venv's python (tools/peers/make_bench_venv.sh)")
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="tiny shapes (RRDBNet with 6 blocks), under a minute")
    size.add_argument("--full", action="store_true", help="the issue's sizes (1024² -> 4096² for the memory run)")
    ap.add_argument("--targets", nargs="+", default=list(TARGETS), choices=TARGETS)
    ap.add_argument("--archs", nargs="+", default=list(ARCHS), choices=ARCHS)
    ap.add_argument("--threads", type=int, default=None, help="torch threads on both sides (default: torch's)")
    ap.add_argument("--set", action="append", default=[], metavar="TARGET.KEY=N",
                    help="change one shape, e.g. speed.lr=32 speed.tile=16 speed.iters=3")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default=None, help="folder for the weights, photos and outputs (default: a temporary one)")
    ap.add_argument("--json", default=None, help="write the report here")
    args = ap.parse_args(argv)
    if not Path(args.peer_python).exists():
        raise SystemExit(f"bench_peers: --peer-python {args.peer_python}: not found (tools/peers/make_bench_venv.sh makes it)")

    from i2i.perf import tune_allocator

    if args.threads:
        torch.set_num_threads(args.threads)
    malloc_tuned = tune_allocator()  # as i2i-infer does
    mode = "quick" if args.quick else "full" if args.full else "default"
    shapes = copy.deepcopy(QUICK if args.quick else FULL if args.full else SHAPES)
    for s in args.set:
        key, _, val = s.partition("=")
        target, _, k = key.partition(".")
        if shapes.get(target) is None or not k or not val.lstrip("-").isdigit():
            raise SystemExit(f"bench_peers: --set {s!r}: expected TARGET.KEY=INTEGER, TARGET one of "
                             f"{', '.join(t for t in shapes if shapes[t] is not None)}")
        shapes[target][k] = int(val)
    blocks = RRDB_BLOCKS["quick" if args.quick else "default"]
    tmp = tempfile.TemporaryDirectory(prefix="bench_peers_") if args.work is None else None
    work = Path(args.work or tmp.name)  # type: ignore[union-attr]
    work.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    report: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "meta": {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                 "command": " ".join(["tools/bench_peers.py", *(argv if argv is not None else sys.argv[1:])]),
                 "mode": mode, "torch": torch.__version__, "python": platform.python_version(),
                 "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
                 "threads": torch.get_num_threads(), "malloc_tuned_i2i": malloc_tuned,
                 "loadavg_start": os.getloadavg(), "peer_python": args.peer_python},
        "goals": GOALS, "shapes": shapes, "weights": {},
    }
    weights: dict[str, Path] = {}
    calib = torch.from_numpy(photo_u8(32)).permute(2, 0, 1)[None].float().div(255.0)
    for arch in args.archs if set(args.targets) != {"big"} else ["rrdbnet"]:
        weights[arch] = work / ("RealESRGAN_x4plus_random.pth" if arch == "rrdbnet" else "realesr-general-x4v3_random.pth")
        report["weights"][arch] = make_peer_weights(arch, weights[arch], calib, args.seed, blocks)
        log(f"weights: {arch} -> {weights[arch]}")
    threads = args.threads or torch.get_num_threads()
    try:
        for target in args.targets:
            if target == "big" and shapes["big"] is not None:
                report["big"] = run_big(weights["rrdbnet"], work, shapes["big"], threads, args.peer_python)
                continue
            if shapes.get(target) is None:
                continue
            fn = {"parity": run_parity, "speed": run_speed, "rss": run_rss}[target]
            report[target] = {}
            for arch in args.archs:
                log(f"{target}: {arch}")
                report[target][arch] = fn(arch, weights[arch], work, shapes[target], args.peer_python, threads)
    finally:
        if tmp is not None:
            tmp.cleanup()
    report["meta"]["loadavg_end"] = os.getloadavg()
    report["meta"]["seconds"] = time.perf_counter() - t_start
    report["summary"] = summary(report)
    problems = check_report(report)
    if problems:
        raise RuntimeError("bench_peers: report layout: " + "; ".join(problems))
    text = json.dumps(report, indent=1)
    if args.json:
        Path(args.json).write_text(text)
    print(json.dumps(report["summary"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
