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
``srresnet_x4_small``: scikit-image's chelsea, coffee, coins, brick). ``--degrade``: the LR images are
made from ``--data``'s HR photos by Real-ESRGAN's degradation, as ``tools/degrade.py`` makes them (same
``--seed``, same pairs, same numbers); ``--perceptual`` (implied) adds NIQE (:mod:`i2i.metrics.niqe`) of
the model, bicubic and the HR, and LPIPS/DISTS (:mod:`i2i.metrics.learned`) where their backbones are cached.
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
                   help="LR context pixels around each tile (default: exact — the net's receptive-field radius + 2, "
                        "or for RRDBNet/SRVGGNetCompact stage by stage over one feature map of the image, at about "
                        "an untiled pass's work); N: one pass per tile with N pixels of context, as Real-ESRGAN's "
                        "--tile_pad")
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
    p.add_argument("--degrade", action="store_true",
                   help="--data is a folder of HR photos: make each LR with Real-ESRGAN's degradation, as tools/degrade.py "
                        "does (same --seed, same pairs); implies --perceptual")
    p.add_argument("--seed", type=int, default=0, help="with --degrade: seed of the degradations (default 0)")
    p.add_argument("--degrade-config", default=None, metavar="YAML",
                   help="with --degrade: degradation keys (Real-ESRGAN's names; default: the paper's)")
    p.add_argument("--perceptual", action="store_true",
                   help="also NIQE (no reference) and LPIPS/DISTS (when their torchvision backbones are cached locally) "
                        "of the model, of bicubic and (NIQE) of the HR")


class DegradedFolder:
    """The HR photos of a folder, each degraded on the fly exactly as ``tools/degrade.py`` degrades it.

    Item ``i``: ``{"lr": (3, h, w), "hr": (3, h·s, w·s)}`` float32 in [0, 1] (8-bit values, as read
    back from the PNGs that ``tools/degrade.py ROOT -o lr/ --hr hr/ --seed SEED`` writes) and its
    ``index``; ``names[i]`` is the file's path relative to ``root``. Images are degraded when read.
    """

    def __init__(self, root: Path, seed: int, cfg: Any):
        from ..data.io import list_images

        self.root, self.seed, self.cfg = root, seed, cfg
        self.paths = list_images(root)
        self.names = [p.relative_to(root).as_posix() for p in self.paths]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> dict[str, Any]:
        from ..errors import DataError, I2IError
        from .degrade import degrade_file

        path = self.paths[i]
        try:
            hr, lr = degrade_file(path, path.relative_to(self.root), self.seed, self.cfg)
        except I2IError as e:  # one line that names the file
            if str(path) in str(e):
                raise
            raise DataError(f"{path}: {e}") from None

        def as_8bit(a: np.ndarray) -> torch.Tensor:  # the pairs as saved to and read back from 8-bit PNGs
            u8 = np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8)
            return torch.from_numpy(u8.astype(np.float32) / 255.0).permute(2, 0, 1).contiguous()

        return {"lr": as_8bit(lr), "hr": as_8bit(hr), "index": torch.tensor(i)}


def _degraded_dataset(data: str | None, scale: int, seed: int, config: str | None) -> tuple[DegradedFolder, str]:
    from .degrade import load_config

    if data is None:
        raise ConfigError("needs --data: a folder of HR photos to degrade", "--degrade")
    root = Path(data).expanduser()
    if not root.is_dir():
        raise ConfigError(f"not a folder: {data}", "--data")
    if any((root / d).is_dir() for d in ("hr", "HR")) and any((root / d).is_dir() for d in ("lr", "LR")):
        raise ConfigError(f"{root} holds hr/ + lr/ pairs already: evaluate them without --degrade, or give the HR folder",
                          "--degrade")
    cfg = load_config(config, scale)  # the model's scale, whatever the YAML says
    return DegradedFolder(root, seed, cfg), f"{root} (HR; LR by Real-ESRGAN's degradation, seed {seed})"


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
    """Per-image and mean PSNR/SSIM (RGB and Y, border = scale) of the model and of bicubic; with
    ``--perceptual`` (or ``--degrade``) also NIQE of both and of the HR, and LPIPS/DISTS where available."""
    from ..metrics.image import psnr, ssim
    from ..recipes.super_resolution import bicubic_upscale

    pipe = _pipeline(model, args)
    scale = pipe.scale
    if args.scale is not None and args.scale != scale:
        raise ConfigError(f"the model upscales ×{scale}, not ×{args.scale}", "--scale")
    if args.degrade:
        ds, what = _degraded_dataset(args.data, scale, args.seed, args.degrade_config)
    else:
        if args.degrade_config is not None:
            raise ConfigError("only with --degrade", "--degrade-config")
        ds, what = _eval_dataset(model, args.data, scale)
    extra = _PerceptualScores(scale, args.device) if (args.perceptual or args.degrade) else None

    def scores(pred: torch.Tensor, hr: torch.Tensor) -> dict[str, Any]:
        out: dict[str, Any] = {"psnr": psnr(pred, hr, scale).item(), "ssim": ssim(pred, hr, scale).item(),
                               "psnr_y": psnr(pred, hr, scale, True).item(), "ssim_y": ssim(pred, hr, scale, True).item()}
        if extra is not None:
            out.update(extra(pred, hr))
        return out

    rows: list[dict[str, Any]] = []
    with torch.no_grad():
        for i in range(len(ds)):
            item = ds[i]
            lr, hr = item["lr"][None], item["hr"][None]
            row: dict[str, Any] = {"name": ds.names[int(item["index"])], "size": [int(hr.shape[-1]), int(hr.shape[-2])]}
            row.update(scores(pipe.tensor(lr), hr))
            row.update({f"bicubic/{k}": v for k, v in scores(bicubic_upscale(lr, scale), hr).items()})
            if extra is not None:
                row["hr/niqe"] = extra.niqe(hr)
            rows.append(row)
    keys = ["psnr_y", "ssim_y", "psnr", "ssim"] + (extra.keys if extra is not None else [])
    mean = {k: _mean([r[k] for r in rows]) for k in keys}
    mean.update({f"bicubic/{k}": _mean([r[f"bicubic/{k}"] for r in rows]) for k in keys})
    if extra is not None:
        mean["hr/niqe"] = _mean([r["hr/niqe"] for r in rows])
    mean["gain/psnr_y"] = mean["psnr_y"] - mean["bicubic/psnr_y"]
    if extra is not None:
        import sys

        for line in extra.notes:  # stderr: with --json the last stdout line stays the JSON object
            print(line, file=sys.stderr)
    if not args.json:
        cols = [("PSNR-Y", "psnr_y", 7, ".2f"), ("SSIM-Y", "ssim_y", 7, ".4f")]
        cols += [(k.upper(), k, 7, ".4f" if k != "niqe" else ".3f") for k in (extra.keys if extra is not None else [])]
        cells = [(t, k, w, f) for t, k, w, f in cols] + [(f"bic {t}", f"bicubic/{k}", w + 4, f) for t, k, w, f in cols]
        if extra is not None:
            cells.append(("HR NIQE", "hr/niqe", 7, ".3f"))

        def cell(v: Any, w: int, f: str) -> str:
            return f"{'-':>{w}}" if v is None else f"{v:{w}{f}}"

        print(f"{'image':<20} {'size':>11}  " + " ".join(f"{t:>{w}}" for t, _, w, _ in cells))
        for r in rows:
            print(f"{r['name'][:20]:<20} {r['size'][0]:>5}x{r['size'][1]:<5}  " + " ".join(cell(r[k], w, f) for _, k, w, f in cells))
        print()
    out = {**mean, "scale": scale, "crop_border": scale, "data": what, "num_images": len(rows), "per_image": rows}
    if args.degrade:
        out["degradation"] = {"seed": args.seed, "config": args.degrade_config}
    if extra is not None:
        out["skipped"] = extra.notes
    return out


def _mean(values: list[float | None]) -> float | None:
    """Mean over the images that have the value (None where NIQE refused a too-small image); None if none."""
    have = [v for v in values if v is not None]
    return float(np.mean(have)) if have else None


class _PerceptualScores:
    """NIQE (:mod:`i2i.metrics.niqe`, border = scale) and LPIPS/DISTS (:mod:`i2i.metrics.learned`) of one image."""

    def __init__(self, scale: int, device: torch.device | None):
        from ..metrics.learned import LearnedMetrics

        self.scale = scale
        self.learned = LearnedMetrics(device=device or "cpu")
        self.keys = ["niqe", *self.learned.names]
        self.notes = list(self.learned.notes)

    def niqe(self, image: torch.Tensor) -> float | None:
        from ..errors import MetricError
        from ..metrics.niqe import niqe

        try:
            return niqe(image, crop_border=self.scale).item()
        except MetricError as e:  # too small: one line, the other metrics still count
            note = f"NIQE skipped for a {image.shape[-1]}x{image.shape[-2]} image: {e}"
            if note not in self.notes:
                self.notes.append(note)
            return None

    def __call__(self, pred: torch.Tensor, hr: torch.Tensor) -> dict[str, float | None]:
        return {"niqe": self.niqe(pred), **self.learned(pred.clamp(0, 1), hr)}
