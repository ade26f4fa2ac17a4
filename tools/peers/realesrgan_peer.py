#!/usr/bin/env python
"""Real-ESRGAN's own inference on one weights file and one image: the peer side of tools/bench_peers.py.

Run ONLY with the bench venv's python (tools/peers/make_bench_venv.sh): it imports ``realesrgan`` and
``basicsr`` (Wang et al., "Real-ESRGAN: Training Real-World Blind Super-Resolution with Pure Synthetic
Data", ICCVW 2021; https://github.com/xinntao/Real-ESRGAN, BSD-3-Clause), which are never i2i
dependencies and are never imported by i2i. It does not import i2i either.

The procedure is that of Real-ESRGAN's ``inference_realesrgan.py`` for one image:

* the network its ``--model_name`` builds — ``RRDBNet(num_in_ch=3, num_out_ch=3, num_feat=64, num_block=23,
  num_grow_ch=32, scale=4)`` for RealESRGAN_x4plus, ``SRVGGNetCompact(num_in_ch=3, num_out_ch=3, num_feat=64,
  num_conv=32, upscale=4, act_type='prelu')`` for realesr-general-x4v3 — with its sizes read from the file's
  tensors here (so the x2plus / anime_6B / animevideov3 layouts work too);
* ``RealESRGANer(scale, model_path, model=..., tile=T, tile_pad=10, pre_pad=0, half=False)`` (``--fp32``;
  ``pre_pad`` 0 as the script's default), which loads ``params_ema`` (else ``params``) with strict keys;
* ``cv2.imread(path, cv2.IMREAD_UNCHANGED)``, ``upsampler.enhance(img, outscale=netscale)``,
  ``cv2.imwrite(out, output)``. A single file, no denoise-strength blend (``--denoise_strength 1``).

Modes::

    python realesrgan_peer.py W.pth IMG.png --tile 0 --output OUT.png --json OUT.json   # one run, like the script
    python realesrgan_peer.py W.pth IMG.png --tile 0 32 --output A.png B.png          # one upsampler per tile, in turn
    python realesrgan_peer.py W.pth IMG.png --tile 0 --serve                            # persistent, for timing

``--json``: seconds (process start to exit, import, model load, enhance), peak RSS of the process
(``VmHWM``, MiB) and its RSS before ``enhance`` (with several tiles: the enhance seconds of each, the
process's peak over all). ``--serve``: builds the upsampler and reads the image
once, prints ``{"ready": ...}``, then for each line ``run`` on stdin runs ``enhance`` on the decoded array
(BGR uint8 -> BGR uint8, what RealESRGANer takes and gives) and prints ``{"seconds": s}``; ``quit`` ends.
The peer's per-tile ``print`` goes to a buffer, so stdout carries only the JSON lines.
"""
from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse
import contextlib
import io
import json
import sys
from pathlib import Path

import cv2
import torch
from basicsr.archs.rrdbnet_arch import RRDBNet
from realesrgan import RealESRGANer
from realesrgan.archs.srvgg_arch import SRVGGNetCompact

T_IMPORTED = time.perf_counter()


def status_mib(key: str) -> float | None:
    """A memory figure of this process from /proc/self/status (``VmHWM`` peak RSS, ``VmRSS``) in MiB, None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def build_model(path: str) -> tuple[torch.nn.Module, int, dict]:
    """The peer's network for the file's layout, its scale (``netscale``) and what was read."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)  # only to read the sizes; RealESRGANer loads it again
    sd = ckpt["params_ema"] if "params_ema" in ckpt else ckpt["params"]
    if "conv_first.weight" in sd:  # RRDBNet (basicsr/archs/rrdbnet_arch.py)
        feat, c_first = sd["conv_first.weight"].shape[:2]
        blocks = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("body."))
        grow = sd["body.0.rdb1.conv1.weight"].shape[0]
        out_ch = sd["conv_last.weight"].shape[0]
        scale = {3: 4, 12: 2, 48: 1}[int(c_first)]  # x2 / x1 pixel-unshuffle their 3-channel input by 2 / 4
        info = {"arch": "RRDBNet", "num_feat": int(feat), "num_block": blocks, "num_grow_ch": int(grow), "scale": scale}
        return RRDBNet(num_in_ch=3, num_out_ch=int(out_ch), num_feat=int(feat), num_block=blocks,
                       num_grow_ch=int(grow), scale=scale), scale, info
    convs = sorted(int(k.split(".")[1]) for k in sd if k.startswith("body.") and sd[k].dim() == 4)
    feat, in_ch = sd["body.0.weight"].shape[:2]
    last = sd[f"body.{convs[-1]}.weight"].shape[0]
    scale = round((last / in_ch) ** 0.5)
    act = "prelu" if "body.1.weight" in sd else "relu"
    info = {"arch": "SRVGGNetCompact", "num_feat": int(feat), "num_conv": len(convs) - 2, "upscale": scale, "act_type": act}
    return SRVGGNetCompact(num_in_ch=int(in_ch), num_out_ch=int(in_ch), num_feat=int(feat), num_conv=len(convs) - 2,
                           upscale=scale, act_type=act), scale, info


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("weights")
    p.add_argument("image")
    p.add_argument("--tile", type=int, nargs="+", default=[0], help="RealESRGANer tile (0 = whole image); several: one run each")
    p.add_argument("--tile-pad", type=int, default=10)
    p.add_argument("--pre-pad", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--output", nargs="+", default=[], help="PNG to write, one per --tile (one-run mode)")
    p.add_argument("--json", help="timings and peak RSS of this run (one-run mode)")
    p.add_argument("--serve", action="store_true", help="persistent mode: 'run' / 'quit' on stdin")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.output and len(args.output) != len(args.tile):
        p.error(f"--output: one file per --tile ({len(args.tile)}), got {len(args.output)}")
    if args.serve and len(args.tile) != 1:
        p.error("--serve takes one --tile")
    t0 = time.perf_counter()
    model, netscale, info = build_model(args.weights)
    upsamplers = [RealESRGANer(scale=netscale, model_path=args.weights, model=model, tile=tile, tile_pad=args.tile_pad,
                               pre_pad=args.pre_pad, half=False, device=torch.device("cpu")) for tile in args.tile]
    t_loaded = time.perf_counter()
    img = cv2.imread(args.image, cv2.IMREAD_UNCHANGED)
    if img is None:
        print(f"error: {args.image}: not an image cv2 can read", file=sys.stderr)
        return 2
    common = {"model": info, "tile": args.tile, "tile_pad": args.tile_pad, "pre_pad": args.pre_pad, "half": False,
              "threads": torch.get_num_threads(), "torch": torch.__version__}
    if args.serve:
        upsampler = upsamplers[0]
        print(json.dumps({"ready": True, **common}), flush=True)
        for line in sys.stdin:
            cmd = line.strip()
            if cmd == "quit":
                break
            if cmd != "run":
                print(json.dumps({"error": f"unknown command {cmd!r}"}), flush=True)
                continue
            with contextlib.redirect_stdout(io.StringIO()):  # its "Tile i/n" lines
                t = time.perf_counter()
                out, _ = upsampler.enhance(img, outscale=netscale)
                dt = time.perf_counter() - t
            print(json.dumps({"seconds": dt, "shape": list(out.shape)}), flush=True)
        return 0
    rss_before = status_mib("VmRSS")
    enhance = []
    for i, upsampler in enumerate(upsamplers):
        with contextlib.redirect_stdout(io.StringIO()):
            t = time.perf_counter()
            out, _ = upsampler.enhance(img, outscale=netscale)
            enhance.append(time.perf_counter() - t)
        if args.output:
            cv2.imwrite(args.output[i], out)
    t_end = time.perf_counter()
    result = {**common, "input_shape": list(img.shape), "output_shape": list(out.shape),
              "seconds": {"import": T_IMPORTED - T_START, "load": t_loaded - t0, "enhance": enhance,
                          "total": t_end - T_START},
              "rss_before_enhance_mib": rss_before, "rss_peak_mib": status_mib("VmHWM")}
    text = json.dumps(result)
    if args.json:
        Path(args.json).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
