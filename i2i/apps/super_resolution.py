"""Super-resolution front-end: ``tools/infer.py --task sr`` and ``tools/eval.py --task sr``.

    python tools/infer.py --task sr photo.jpg -o photo_x4.png          # shipped ×4 SRResNet
    python tools/infer.py --task sr --checkpoint runs/srgan-… photos/ more.png -o out/

Inference runs :class:`i2i.pipelines.super_resolution.SuperResolutionPipeline` over files and
folders through :class:`i2i.apps.common.FileLoop` (reader/writer threads, one ``error:`` line
per failed file, exit code 1 if any failed, never writing next to or over the inputs). Each
file keeps its layout and depth (16-bit in, 16-bit PNG out where OpenCV can write it), its ICC
profile and EXIF. Options: ``--tile``/``--tile-overlap`` (exact by default), ``--tile-batch``,
``--outscale``, ``--suffix``, ``--ext``/``--quality``/``--png-compression``, ``--backend
onnxruntime`` (the ONNX export through the same tiling).

Evaluation: PSNR/SSIM on RGB and BT.601 Y, ``crop_border = scale``, 8-bit quantised
(:mod:`i2i.metrics.image`), of the model and of MATLAB bicubic, per image and averaged, on
``--data`` (HR images, LR by MATLAB bicubic; or ``hr/`` + ``lr/``) or the model's own
validation split as whole images (``srresnet_x4``: the photo corpus's ``val/``;
``srresnet_x4_small``: scikit-image's chelsea, coffee, coins, brick).
"""
from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.io import image_metadata, read_image, save_image_keep_depth
from ..errors import ConfigError
from ..inference import LoadedModel
from ..pipelines.super_resolution import DEFAULT_TILE, SuperResolutionPipeline, probe_input
from .common import (FileLoop, LoopResult, TileBar, add_file_args, add_format_args, cli_flags, dataset_from_config,
                     output_ext)

__all__ = ["add_infer_args", "infer", "add_eval_args", "evaluate", "probe_input"]

def _pipeline(model: LoadedModel, args: argparse.Namespace) -> SuperResolutionPipeline:
    if args.backend == "onnxruntime":  # the same tiling code around an onnxruntime session
        from ..onnx_export import with_onnxruntime

        if args.fast or args.device.type != "cpu":
            raise ConfigError("the onnxruntime backend runs on the CPU in fp32: drop --fast and use --device cpu",
                              "--backend")
        model = with_onnxruntime(model, args.onnx_dir)
    with cli_flags():
        return SuperResolutionPipeline(model, args.tile, args.tile_overlap, getattr(args, "tile_batch", None),
                                       outscale=getattr(args, "outscale", None))


def _add_backend_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=["torch", "onnxruntime"], default="torch",
                   help="onnxruntime: run the network's ONNX export (i2i-export RUN --format onnx; made on the fly "
                        "if absent) through the same tiling code, on the CPU")
    p.add_argument("--onnx-dir", default=None, help="folder holding generator.onnx (default: <run>/onnx)")


def add_infer_args(p: argparse.ArgumentParser) -> None:
    _add_backend_args(p)
    add_file_args(p, "image files and/or folders of images", "sr_x<scale>",
                  "output file (one input) or folder (default ./sr_x<scale>/, files <stem>_x<scale>.<ext>)")
    p.add_argument("--tile", type=int, default=DEFAULT_TILE,
                   help=f"LR pixels per tile side (default {DEFAULT_TILE}); 0 = whole image at once")
    p.add_argument("--tile-overlap", type=int, default=None,
                   help="LR context pixels around each tile (default: the net's receptive-field radius + 2, "
                        "which makes tiling exact)")
    p.add_argument("--tile-batch", type=int, default=None,
                   help="tiles per network call (default 8 on CUDA, 1 on the CPU, where 4 was 1.5x "
                        "faster but tripled peak memory)")
    p.add_argument("--outscale", type=float, default=None,
                   help="output scale when not the network's: its ×scale, then MATLAB bicubic (e.g. 2 or 3.5)")
    p.add_argument("--suffix", default=None, help="output name suffix (default _x<outscale or scale>)")
    add_format_args(p)
    p.add_argument("--io-threads", type=int, default=2,
                   help="threads that decode the next file and encode finished ones while the network "
                        "runs (default 2; 0 = one step after another)")


def infer(model: LoadedModel, args: argparse.Namespace) -> int:
    """Upscale every INPUT; returns 0, or 1 if any file failed (each reported on stderr)."""
    pipe = _pipeline(model, args)
    pipe.progress = TileBar()  # a large photo's tiles, with the time left (files are counted by the loop's bar)
    ext, s = output_ext(args), f"{args.outscale:g}" if args.outscale else str(pipe.scale)

    def write(src: Path, dst: Path, sr: np.ndarray) -> str | None:  # the source's ICC profile and EXIF kept
        note = save_image_keep_depth(dst, sr, quality=args.quality, png_compression=args.png_compression,
                                     **image_metadata(src))
        return f"warning: {dst}: {note}" if note else None

    def summary(r: LoopResult) -> str:
        where = r.written[0] if len(r.written) == 1 else (r.written[0].parent if r.written else "-")
        return (f"wrote {len(r.written)} image(s) ×{s} to {where}" + (f"; {r.failed} failed" if r.failed else "")
                + (f"; ignored {r.ignored} non-image file(s)" if r.ignored else ""))

    loop = FileLoop(pipe, read=partial(read_image, mode="keep", dtype="auto"), write=write,
                    io_threads=args.io_threads, progress=f"SR ×{s}")
    suffix = f"_x{s}" if args.suffix is None else args.suffix
    return loop.run(args.inputs, args.output, f"sr_x{s}", suffix=suffix, ext=ext, summary=summary)


# --- evaluation -----------------------------------------------------------------------------
def add_eval_args(p: argparse.ArgumentParser) -> None:
    _add_backend_args(p)
    p.add_argument("--scale", type=int, default=None, help="upscaling factor (default: the model's; must match it)")
    p.add_argument("--tile", type=int, default=DEFAULT_TILE, help=f"LR tile side (default {DEFAULT_TILE}; 0 = none)")
    p.add_argument("--tile-overlap", type=int, default=None, help="LR tile context (default: exact)")


def _eval_dataset(model: LoadedModel, data: str | None, scale: int) -> tuple[Any, str]:
    from ..data.super_resolution import SRFolder, SRPaired

    if data is None:
        if model.config.get("data"):
            cfg = dict(model.config)
            cfg["data"] = {**cfg["data"], "scale": scale}
            val = cfg["data"].get("val_split", "val")
            ds = dataset_from_config(cfg, val, None, val_patch_size=None)  # whole images, not centre crops
            root = cfg["data"].get("val_root") or cfg["data"].get("root")
            return ds, (f"{root} ({val})" if root else f"embedded scikit-image photos ({val})")
        return SRFolder(None, split="val", scale=scale), "embedded scikit-image photos (val)"
    root = Path(data).expanduser()
    if not root.is_dir():
        raise ConfigError(f"not a folder: {data}", "--data")
    if any((root / d).is_dir() for d in ("hr", "HR")) and any((root / d).is_dir() for d in ("lr", "LR")):
        return SRPaired(str(root), split="val", scale=scale), f"{root} (hr/ + lr/ pairs)"
    return SRFolder(str(root), split="val", scale=scale), f"{root} (HR; LR by MATLAB bicubic)"


def evaluate(model: LoadedModel, args: argparse.Namespace) -> dict[str, Any]:
    """Per-image and mean PSNR/SSIM (RGB and Y, border = scale) of the model and of bicubic."""
    from ..metrics.image import psnr, ssim
    from ..recipes.super_resolution import bicubic_upscale

    pipe = _pipeline(model, args)
    scale = pipe.scale
    if args.scale is not None and args.scale != scale:
        raise ConfigError(f"the model upscales ×{scale}, not ×{args.scale}", "--scale")
    ds, what = _eval_dataset(model, args.data, scale)

    def scores(pred: torch.Tensor, hr: torch.Tensor) -> dict[str, float]:
        return {"psnr": psnr(pred, hr, scale).item(), "ssim": ssim(pred, hr, scale).item(),
                "psnr_y": psnr(pred, hr, scale, True).item(), "ssim_y": ssim(pred, hr, scale, True).item()}

    rows: list[dict[str, Any]] = []
    with torch.no_grad():
        for i in range(len(ds)):
            item = ds[i]
            lr, hr = item["lr"][None], item["hr"][None]
            row: dict[str, Any] = {"name": ds.names[int(item["index"])], "size": [int(hr.shape[-1]), int(hr.shape[-2])]}
            row.update(scores(pipe.tensor(lr), hr))
            row.update({f"bicubic/{k}": v for k, v in scores(bicubic_upscale(lr, scale), hr).items()})
            rows.append(row)
    keys = ["psnr_y", "ssim_y", "psnr", "ssim"]
    mean = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    mean.update({f"bicubic/{k}": float(np.mean([r[f"bicubic/{k}"] for r in rows])) for k in keys})
    mean["gain/psnr_y"] = mean["psnr_y"] - mean["bicubic/psnr_y"]
    if not args.json:
        print(f"{'image':<20} {'size':>11}  {'PSNR-Y':>7} {'SSIM-Y':>7}  {'bic PSNR-Y':>10} {'bic SSIM-Y':>10}")
        for r in rows:
            print(f"{r['name'][:20]:<20} {r['size'][0]:>5}x{r['size'][1]:<5}  {r['psnr_y']:7.2f} {r['ssim_y']:7.4f}"
                  f"  {r['bicubic/psnr_y']:10.2f} {r['bicubic/ssim_y']:10.4f}")
        print()
    return {**mean, "scale": scale, "crop_border": scale, "data": what, "num_images": len(rows), "per_image": rows}
