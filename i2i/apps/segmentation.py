"""Semantic-segmentation front-end: ``tools/infer.py --task seg`` and ``tools/eval.py --task seg``.

Models: the segmentors trained by the ``seg_adversarial`` recipe (Luc et al. 2016,
``tasks/segmentation_adversarial.yaml`` and its cross-entropy baseline
``tasks/segmentation_baseline.yaml``). The export carries the class table:
``meta["class_names"]``, ``meta["palette"]`` (one RGB colour per class id),
``meta["ignore_index"]``; a bare checkpoint folder (no export meta) falls back to the
recipe's defaults (``class_<i>`` names, the VOC colour map).

Inference::

    python tools/infer.py --task seg --checkpoint RUN image.png -o mask.png
    python tools/infer.py --task seg --checkpoint RUN photos/ more.jpg -o masks/ --overlay
    python tools/infer.py --task seg --checkpoint RUN image.png -o view.png --overlay --no-mask

* INPUTs are files or folders (a folder's images, not its sub-folders), read by
  :func:`i2i.data.io.read_image` as RGB (EXIF orientation applied; transparency
  composited on white). Any size: the segmentors are fully convolutional and return
  logits at the input size (resampled bilinearly if a network does not); ``--resize N``
  runs the network with the short side scaled to N pixels (e.g. the training scale) and
  still writes the mask at the input's size.
* Mask: a palette (``P``) PNG whose pixel values are the class ids 0..C-1 and whose
  palette is the model's, so it opens coloured in any viewer and
  :func:`i2i.data.io.read_mask` (or ``np.asarray(PIL.Image.open(f))``) reads the ids back.
* ``--overlay``: also write ``<mask stem>_overlay.png``, the image α-blended with the
  colourised mask, ``(1 - α)·image + α·colour`` (``--alpha``, default 0.5), RGB.
  ``--overlay --no-mask``: the overlay only, written under the mask's name.
* Output: for a single input file ``-o`` may name the output file (``.png``); otherwise
  ``-o`` is a folder (default ``./seg``) receiving ``<stem>.png``.
* Errors: a file that cannot be read or written prints one ``error: <file>: <reason>``
  line on stderr; the other files are still processed and the exit code is 1.

Evaluation (``--json``: one JSON object on the last stdout line): pixel accuracy
``pixel_acc``, per-class accuracy ``class_acc`` (mean of the per-class recalls, Luc et
al.'s "per-class acc."), mean IoU ``miou``, and per class ``iou/<name>`` and
``acc/<name>`` (:mod:`i2i.metrics.segmentation`; ignored pixels are not counted).
``--data`` defaults to the run's own validation split (``data.val_split``); ``--data DIR``
rebuilds the run's dataset type with that root. Random augmentation is always off
(``augment=False``): images are scored whole, or centre-fitted to ``data.crop_size``
where the run set one, exactly as the trainer's own evaluation sees them.

Several processes (``accelerate launch --cpu --num_processes 2 tools/eval.py --task seg
...``, which the tools turn into two gloo workers, :mod:`i2i.distributed`): each process
scores its shard, per-image confusion counts are gathered with
``accelerator.gather_for_metrics`` (which drops the duplicates a sharded loader adds to
even out the last batch), so every process holds the full matrix and the metrics equal a
single process's (``labelled_pixels`` shows it). Only the main process prints them.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.io import read_image, save_image
from ..errors import ConfigError, I2IError
from ..inference import LoadedModel
from .common import is_single_file, collect_inputs, dataset_from_config, eval_loader, make_accelerator, output_paths, tile_panels

__all__ = ["class_table", "predict", "colourise", "overlay", "comparison_grid", "add_infer_args", "infer", "add_eval_args", "evaluate"]

DEFAULT_OUTPUT = "seg"


# --- model facts ------------------------------------------------------------------------
def class_table(model: LoadedModel) -> tuple[list[str], np.ndarray, int]:
    """(class names, (C, 3) uint8 palette, ignore_index) from the export's meta, else the recipe."""
    meta = model.meta or {}
    names, palette = meta.get("class_names"), meta.get("palette")
    if names is None or palette is None:
        recipe = model.build_recipe()  # checkpoint folder without export meta: recipe defaults
        names = names if names is not None else recipe.names()
        palette = palette if palette is not None else recipe.colours()
    ignore = int(meta.get("ignore_index", model.recipe.get("ignore_index", 255)))
    pal = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
    if len(pal) != len(names):
        raise ConfigError(f"the export has {len(names)} class names but {len(pal)} palette colours", "meta.palette")
    return list(names), pal, ignore


# --- prediction -------------------------------------------------------------------------
@torch.no_grad()
def predict(G: nn.Module, image: np.ndarray, resize: int | None = None) -> np.ndarray:
    """Class ids of one image.

    Args:
        G: a segmentor in eval mode: (1, 3, h, w) RGB in [0, 1] -> logits (1, C, h', w').
        image: (H, W, 3) uint8 RGB.
        resize: run the network with the short side scaled to this (bilinear); ``None`` =
            the image's own size.

    Returns:
        (H, W) int64 class ids in [0, C), at the input's size whatever ``resize``.
    """
    device = next(G.parameters()).device
    x = torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1)[None].to(device, torch.float32) / 255.0
    h, w = image.shape[:2]
    if resize is not None and min(h, w) != resize:
        s = resize / min(h, w)
        x = F.interpolate(x, size=(max(1, round(h * s)), max(1, round(w * s))), mode="bilinear",
                          align_corners=False, antialias=s < 1)
    logits = G(x).float()
    if tuple(logits.shape[-2:]) != (h, w):
        # resample logits, not labels: argmax after interpolation keeps boundaries smooth
        logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
    return logits.argmax(1)[0].cpu().numpy().astype(np.int64)


def colourise(labels: np.ndarray, palette: np.ndarray, void: tuple[int, int, int] = (224, 224, 192)) -> np.ndarray:
    """(H, W) ids -> (H, W, 3) uint8 through a (C, 3) palette; ids outside [0, C) (void) get ``void``."""
    pal = np.concatenate([palette.astype(np.uint8), np.asarray([void], np.uint8)])
    idx = np.where((labels >= 0) & (labels < len(palette)), labels, len(palette))
    return pal[idx]


def overlay(image: np.ndarray, labels: np.ndarray, palette: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """(1 - α)·image + α·colourise(labels): (H, W, 3) uint8 RGB."""
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"must be in [0, 1], got {alpha}", "--alpha")
    mixed = (1.0 - alpha) * image.astype(np.float32) + alpha * colourise(labels, palette).astype(np.float32)
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def comparison_grid(models: list[LoadedModel], indices: list[int], split: str | None = None,
                    root: str | None = None, scale: int = 3, gap: int = 4) -> np.ndarray:
    """One row per validation image: input | each model's mask | ground truth.

    The images come from the first model's dataset (``dataset_from_config``, no
    augmentation); colours from its class table (ignored pixels in VOC's void colour).
    Every panel is enlarged ``scale``× (nearest neighbour, so label edges stay exact).

    Returns:
        (rows·(h·scale + gap) - gap, cols·(w·scale + gap) - gap, 3) uint8 RGB, white gaps.
    """
    if not models:
        raise ConfigError("give at least one model", "models")
    cfg = models[0].config
    ds = dataset_from_config(cfg, split or cfg.get("data", {}).get("val_split", "val"), root, augment=False)
    _, palette, ignore = class_table(models[0])
    rows = []
    for i in indices:
        item = ds[i]
        image = (item["image"].permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)
        mask = item["mask"].numpy()
        panels = [image] + [colourise(predict(m.generator.eval(), image), palette) for m in models]
        panels.append(colourise(np.where(mask == ignore, -1, mask), palette))
        rows.append(panels)
    return tile_panels(rows, scale, gap)


# --- inference CLI ----------------------------------------------------------------------
def add_infer_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="images or folders of images")
    p.add_argument("-o", "--output", default=None,
                   help=f"output .png (one input file) or folder (default ./{DEFAULT_OUTPUT}/)")
    p.add_argument("--overlay", action="store_true",
                   help="also write <mask stem>_overlay.png: the image blended with the coloured mask")
    p.add_argument("--no-mask", action="store_true", help="with --overlay: write the overlay only, under the mask's name")
    p.add_argument("--alpha", type=float, default=0.5, help="overlay opacity of the mask colours (default 0.5)")
    p.add_argument("--resize", type=int, default=None, metavar="N",
                   help="run the network with each image's short side scaled to N (mask still at input size)")


def infer(model: LoadedModel, args: argparse.Namespace) -> int:
    if args.no_mask and not args.overlay:
        raise ConfigError("nothing to write: --no-mask needs --overlay", "--no-mask")
    if args.resize is not None and args.resize < 1:
        raise ConfigError(f"must be >= 1, got {args.resize}", "--resize")
    if not 0.0 <= args.alpha <= 1.0:
        raise ConfigError(f"must be in [0, 1], got {args.alpha}", "--alpha")
    names, palette, _ = class_table(model)
    files, errors = collect_inputs(args.inputs)
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    single = is_single_file(args.inputs, files)
    targets = output_paths(files, args.output, single, DEFAULT_OUTPUT, png_only=True)
    G = model.generator.eval()
    failed, written = len(errors), 0
    for src, dst in zip(files, targets):
        try:
            img = read_image(src, "RGB")
            labels = predict(G, img, args.resize)
            if not args.no_mask:
                if len(names) <= 256:
                    save_image(dst, labels.astype(np.uint8), palette=palette)
                else:  # more ids than a palette PNG holds: a 16-bit grey PNG of the ids
                    save_image(dst, labels)
            if args.overlay:
                view = dst if args.no_mask else dst.with_name(f"{dst.stem}_overlay.png")
                save_image(view, overlay(img, labels, palette, args.alpha))
        except I2IError as e:
            print(f"error: {e}", file=sys.stderr)
            failed += 1
            continue
        except (OSError, ValueError, RuntimeError) as e:  # unwritable output, odd array: still one line
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            print(f"error: {src}: {msg}", file=sys.stderr)
            failed += 1
            continue
        written += 1
        present = ", ".join(names[c] for c in np.unique(labels))
        print(f"{src} -> {dst} ({present})")
    if written and not single:
        print(f"wrote {written} mask(s) to {targets[0].parent}")
    return 1 if failed else 0


# --- evaluation CLI ---------------------------------------------------------------------
def add_eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--split", default=None, help="split to evaluate (default: the run's data.val_split)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="images per process and batch (default: the run's eval.batch_size)")


def _finite(v: Any) -> Any:
    """NaN (an undefined score: a class absent from the split) -> None, so --json is strict JSON."""
    return None if isinstance(v, float) and not math.isfinite(v) else v


def evaluate(model: LoadedModel, args: argparse.Namespace) -> dict[str, Any]:
    acc = make_accelerator(getattr(args, "device", None))
    cfg = model.config
    split = args.split or cfg.get("data", {}).get("val_split", "val")
    batch_size = args.batch_size or int(cfg.get("eval", {}).get("batch_size", 16))
    if batch_size < 1:
        raise ConfigError(f"must be >= 1, got {batch_size}", "--batch-size")
    ds = dataset_from_config(cfg, split, args.data, augment=False)  # no random scale/crop/flip
    names, palette, _ = class_table(model)
    recipe = model.build_recipe()
    recipe.class_names, recipe.palette = names, palette.tolist()
    if len(names) != recipe.num_classes:
        raise ConfigError(f"{len(names)} class names for a {recipe.num_classes}-class model", "meta.class_names")
    model.to(acc.device)
    G = model.generator.eval()
    with torch.no_grad():
        metrics = recipe.evaluate(G, eval_loader(acc, ds, batch_size), acc)
    if not metrics:
        raise I2IError(f"split {split!r} has no images")
    root = args.data if args.data is not None else cfg.get("data", {}).get("root")
    out: dict[str, Any] = {k: _finite(float(v)) for k, v in metrics.items()}
    if "labelled_pixels" in out:
        out["labelled_pixels"] = int(out["labelled_pixels"])  # a count: print it as one
    out.update({"data": root or f"embedded {cfg.get('data', {}).get('type', '?')}", "split": split,
                "num_images": len(ds), "num_classes": len(names), "processes": acc.num_processes})
    if not acc.is_main_process:
        # every process now holds the same gathered metrics; tools/eval.py prints on each,
        # so the others go quiet and the last stdout line stays one JSON object
        sys.stdout.flush()
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (for the rest of this process)
    return out
