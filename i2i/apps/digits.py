"""Digit generation front-end: ``tools/infer.py --task cgan`` and ``tools/eval.py --task cgan``.

Inference writes one grid PNG of ``-n`` images per ``--label`` (one row per label for up
to 16 images each); the images come from :class:`i2i.pipelines.digits.DigitsPipeline`.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import torch

from ..data.io import save_image
from ..errors import ConfigError
from ..inference import LoadedModel
from ..pipelines.digits import DigitsPipeline, image_grid
from .common import cli_flags, dataset_from_config, eval_loader, eval_recipe, make_accelerator


def _labels(text: list[str] | None, num_classes: int) -> list[int]:
    if not text:
        return list(range(num_classes))
    out = []
    for part in ",".join(text).split(","):
        part = part.strip()
        if not part.lstrip("-").isdigit() or not 0 <= int(part) < num_classes:
            raise ConfigError(f"expected class labels in 0..{num_classes - 1}, got {part!r}", "--label")
        out.append(int(part))
    return out


def add_infer_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--label", action="append", help="class label(s) to generate: --label 7 or --label 1,4,7 (default: all)")
    p.add_argument("-n", "--num", type=int, default=64, help="images per label (default 64)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rank-by-discriminator", type=int, nargs="?", const=8, default=0, metavar="K",
                   help="generate K candidates per image and keep the one the discriminator scores highest (default K=8)")
    p.add_argument("-o", "--output", default="samples.png", help="output grid PNG")


def infer(model: LoadedModel, args: argparse.Namespace) -> int:
    pipe = DigitsPipeline(model)
    if args.num < 1:
        raise ConfigError("must be >= 1", "-n")
    if args.label and not pipe.conditional:
        raise ConfigError("this model is unconditional (a GAN/DCGAN): drop --label", "--label")
    labels = _labels(args.label, pipe.num_classes) if pipe.conditional else None
    with cli_flags():
        imgs = pipe(labels, args.num, args.seed, args.rank_by_discriminator)
    groups = len(labels) if labels else 1
    nrow = args.num if groups > 1 and args.num <= 16 else max(1, int(math.ceil(math.sqrt(len(imgs)))))
    out = save_image(Path(args.output), image_grid(imgs, nrow))
    what = "labels " + ",".join(map(str, labels)) if labels else "unconditional"
    print(f"wrote {len(imgs)} images ({what}) to {out}")
    return 0


def add_eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--samples-per-class", type=int, default=1000, help="generated images per class (default 1000)")
    p.add_argument("--batch-size", type=int, default=500)


def evaluate(model: LoadedModel, args: argparse.Namespace) -> dict[str, Any]:
    acc = make_accelerator(getattr(args, "device", None))
    recipe = eval_recipe(model)
    recipe.eval_samples_per_class = args.samples_per_class
    val_split = model.config.get("data", {}).get("val_split", "test")
    train_ds = dataset_from_config(model.config, "train", args.data)
    test_ds = dataset_from_config(model.config, val_split, args.data)
    recipe.setup({"generator": model.generator}, train_ds)
    model.to(acc.device)
    with torch.no_grad():
        metrics = recipe.evaluate(model.generator, eval_loader(acc, test_ds, args.batch_size), acc)
    root = args.data if args.data is not None else model.config.get("data", {}).get("root")
    metrics.update({"data": root or "embedded digits (scikit-learn)", "split": val_split, "num_test": len(test_ds),
                    "samples_per_class": args.samples_per_class})
    return metrics
