"""Semantic-segmentation front-end: ``tools/infer.py --task seg`` and ``tools/eval.py --task seg``.

Models: the segmentors of the ``seg_adversarial`` recipe (Luc et al. 2016; adversarial and
cross-entropy baseline), with the class table their export carries (:func:`i2i.pipelines.segmentation.class_table`).

Inference (the arrays: :class:`i2i.pipelines.segmentation.SegmentationPipeline`)::

    python tools/infer.py --task seg --checkpoint RUN image.png -o mask.png
    python tools/infer.py --task seg --checkpoint RUN photos/ more.jpg -o masks/ --overlay
    python tools/infer.py --task seg --checkpoint RUN image.png -o view.png --overlay --no-mask

* INPUTs are files or folders (a folder's images, not its sub-folders), read as RGB
  (:func:`i2i.data.io.read_image`), any size; ``--resize N`` runs the network with the short side scaled to N pixels (e.g. the
  training scale) and still writes the mask at the input's size.
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
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.io import save_image
from ..errors import ConfigError, I2IError
from ..inference import LoadedModel
from ..pipelines.segmentation import SegmentationPipeline, class_table
from .common import FileLoop, add_file_args, cli_flags, dataset_from_config, eval_loader, eval_recipe, make_accelerator
from .compare import segmentation_grid as comparison_grid

__all__ = ["comparison_grid", "add_infer_args", "infer", "add_eval_args", "evaluate"]

DEFAULT_OUTPUT = "seg"


# --- inference CLI ----------------------------------------------------------------------
def add_infer_args(p: argparse.ArgumentParser) -> None:
    add_file_args(p, "images or folders of images", DEFAULT_OUTPUT,
                  f"output .png (one input file) or folder (default ./{DEFAULT_OUTPUT}/)")
    p.add_argument("--overlay", action="store_true",
                   help="also write <mask stem>_overlay.png: the image blended with the coloured mask")
    p.add_argument("--no-mask", action="store_true", help="with --overlay: write the overlay only, under the mask's name")
    p.add_argument("--alpha", type=float, default=0.5, help="overlay opacity of the mask colours (default 0.5)")
    p.add_argument("--resize", type=int, default=None, metavar="N",
                   help="run the network with each image's short side scaled to N (mask still at input size)")


def infer(model: LoadedModel, args: argparse.Namespace) -> int:
    if args.no_mask and not args.overlay:
        raise ConfigError("nothing to write: --no-mask needs --overlay", "--no-mask")
    with cli_flags():
        pipe = SegmentationPipeline(model, args.resize, args.alpha)

    def overlay_of(dst: Path) -> list[Path]:
        return [dst.with_name(f"{dst.stem}_overlay.png")] if args.overlay and not args.no_mask else []

    def write(src: Path, dst: Path, out: tuple[np.ndarray, np.ndarray]) -> str:
        image, labels = out
        if not args.no_mask:
            if len(pipe.names) <= 256:
                save_image(dst, labels.astype(np.uint8), palette=pipe.palette)
            else:  # more ids than a palette PNG holds: a 16-bit grey PNG of the ids
                save_image(dst, labels)
        if args.overlay:
            save_image((overlay_of(dst) or [dst])[0], pipe.overlay(image, labels))
        return f"{src} -> {dst} ({', '.join(pipe.names[c] for c in np.unique(labels))})"

    loop = FileLoop(lambda image: (image, pipe(image)), write=write, noun="mask(s)", extra_outputs=overlay_of)
    return loop.run(args.inputs, args.output, DEFAULT_OUTPUT, png_only=True)


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
    recipe = eval_recipe(model)
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
