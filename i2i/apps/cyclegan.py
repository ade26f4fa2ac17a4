"""Unpaired-translation (CycleGAN) front-end: ``tools/infer.py --task cyclegan`` and ``tools/eval.py --task cyclegan``.

Inference (the arrays: :class:`i2i.pipelines.cyclegan.CycleGANPipeline`, which documents
channels and sizes)::

    python tools/infer.py --task cyclegan --checkpoint RUN horse.jpg -o zebra.png           # A -> B (G)
    python tools/infer.py --task cyclegan --checkpoint RUN --direction BtoA zebras/ -o horses/  # B -> A (F)

* INPUTs are files or folders (a folder's images, not its sub-folders), read as RGB
  (transparency on white) and converted to the source domain's channels.
* Output: for a single input file, ``-o`` may name the output file; otherwise ``-o`` is a
  folder (default ``./cyclegan_AtoB`` or ``./cyclegan_BtoA``) receiving ``<stem>.png``
  (``--ext png|jpg|webp|auto``, ``--quality``, ``--png-compression``).
* Errors: a file that cannot be read or written prints one ``error: <file>: <reason>``
  line on stderr; the other files are still processed and the exit code is 1.

Evaluation: the recipe's own :meth:`~i2i.recipes.cyclegan.CycleGAN.run_evaluation`, the code
the trainer logs as ``eval/…``: ``cycle_a`` = mean |F(G(a)) - a|, ``cycle_b`` = mean
|G(F(b)) - b| ([-1, 1] units), ``sharpness_ab``/``sharpness_ba``, and for paired test images
``l1_ab``, ``psnr_ab``, ``ssim_ab``, ``l1_ba``, … against the true counterpart. ``--data``
defaults to the run's own ``data.val_split`` (test) as the trainer saw it; ``--data ROOT``
reads ``ROOT/testA`` + ``ROOT/testB`` (the released layout, at the run's crop size and
channels) where ROOT has them, else rebuilds the run's own dataset type with that root.
``--paired``: ``testA/x`` corresponds to ``testB/x`` (maps, facades). ``--limit N``: the first
N items (the trainer's ``eval.max_batches × eval.batch_size``). Several processes
(``accelerate launch --cpu --num_processes 2 tools/eval.py …``) shard the items and gather
per-image values (:func:`~i2i.apps.common.eval_loader`): the same numbers as one process.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Subset

from ..data.io import save_image
from ..errors import ConfigError
from ..inference import LoadedModel
from ..pipelines.cyclegan import CycleGANPipeline
from .common import (
    FileLoop,
    add_file_args,
    add_format_args,
    cli_flags,
    dataset_from_config,
    eval_loader,
    eval_recipe,
    make_accelerator,
    output_ext,
)

__all__ = ["add_infer_args", "infer", "add_eval_args", "evaluate"]


# --- inference CLI ----------------------------------------------------------------------
def add_infer_args(p: argparse.ArgumentParser) -> None:
    add_file_args(p, "images of the source domain, or folders of them", "cyclegan_<direction>")
    p.add_argument("--direction", default=None,
                   help="AtoB (generator_ab, G) or BtoA (generator_ba, F); default AtoB, or the one direction a file holds")
    add_format_args(p)


def infer(model: LoadedModel, args: argparse.Namespace) -> int:
    with cli_flags():  # a bad --direction, named as the flag
        pipe = CycleGANPipeline(model, direction=args.direction)
    ext = output_ext(args)

    def write(src: Path, dst: Path, out: np.ndarray) -> str:
        save_image(dst, out, quality=args.quality, png_compression=args.png_compression)
        return f"{src} -> {dst}"

    return FileLoop(pipe, write=write).run(args.inputs, args.output, f"cyclegan_{pipe.direction}", ext=ext)


# --- evaluation CLI ---------------------------------------------------------------------
def add_eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--split", default=None, help="split to evaluate (default: the run's data.val_split)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="items per process and batch (default: the run's eval.batch_size)")
    p.add_argument("--paired", action="store_true",
                   help="with --data ROOT: <split>A/x and <split>B/x are counterparts (adds L1/PSNR/SSIM)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="evaluate the first N items only")


def eval_dataset(model: LoadedModel, split: str, root: str | None, paired: bool) -> Any:
    """The run's dataset for ``split`` (module docstring: ``--data``, ``--paired``)."""
    data = dict(model.config.get("data") or {})
    folders = root is not None and all((Path(root).expanduser() / f"{split}{d}").is_dir() for d in "AB")
    if folders and data.get("type") != "unpaired_folders":  # e.g. a Fashion-MNIST run on folders of images
        dirs = model.card.directions
        channels = {"a_channels": dirs.channels.get("AtoB"), "b_channels": dirs.channels.get("BtoA")} if dirs else {}
        data = {"type": "unpaired_folders", "val_split": split,
                **{k: data[k] for k in ("crop_size", "load_size", "on_error") if k in data},
                **{k: int(v) for k, v in channels.items() if v is not None}}
    if paired:
        if data.get("type") != "unpaired_folders":
            raise ConfigError(f"needs test images paired by file name: --data ROOT with {split}A/ and {split}B/",
                              "--paired")
        data["paired_eval"] = True
    return dataset_from_config({"data": data}, split, root)


def evaluate(model: LoadedModel, args: argparse.Namespace) -> dict[str, Any]:
    cfg = model.config
    split = args.split or (cfg.get("data") or {}).get("val_split", "test")
    batch_size = args.batch_size or int((cfg.get("eval") or {}).get("batch_size", 1))
    for flag, v in (("--batch-size", batch_size), ("--limit", args.limit)):
        if v is not None and v < 1:
            raise ConfigError(f"must be >= 1, got {v}", flag)
    acc = make_accelerator(getattr(args, "device", None))
    ds = eval_dataset(model, split, args.data, args.paired)
    root = getattr(ds, "root", None)  # where the images came from (root: null resolved)
    if args.limit is not None and args.limit < len(ds):
        ds = Subset(ds, range(args.limit))
    recipe = eval_recipe(model)
    model.to(acc.device)
    nets = {s: model.nets[s].eval() for s in ("generator_ab", "generator_ba")}
    with torch.no_grad():
        metrics = recipe.run_evaluation(nets, eval_loader(acc, ds, batch_size), acc)
    if not metrics:
        raise ConfigError(f"no images in split {split!r}", "--data")
    out: dict[str, Any] = {k: float(v) for k, v in metrics.items()}
    out.update({"data": str(root if root is not None else args.data), "split": split,
                "num_items": len(ds), "paired": "l1_ab" in metrics, "processes": acc.num_processes})
    return out
