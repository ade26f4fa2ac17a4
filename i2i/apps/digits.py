"""Digit generation front-end: ``tools/infer.py --task cgan`` and ``tools/eval.py --task cgan``."""
from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError
from ..inference import LoadedModel
from .common import dataset_from_config, eval_loader, make_accelerator


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
    import torchvision

    recipe = model.build_recipe()
    if args.num < 1:
        raise ConfigError("must be >= 1", "-n")
    conditional = bool(model.meta.get("conditional", recipe.label_to_g))
    if args.label and not conditional:
        raise ConfigError("this model is unconditional (a GAN/DCGAN): drop --label", "--label")
    labels = _labels(args.label, recipe.num_classes) if conditional else [0]
    g = torch.Generator().manual_seed(args.seed)
    device = next(model.generator.parameters()).device
    y = torch.tensor(labels).repeat_interleave(args.num).to(device)
    with torch.no_grad():
        if args.rank_by_discriminator:
            if model.discriminator is None:
                raise ConfigError("the checkpoint has no discriminator to rank with", "--rank-by-discriminator")
            from ..recipes.digits import rank_by_discriminator

            imgs = rank_by_discriminator(recipe, model.generator, model.discriminator, y, args.rank_by_discriminator, g)
        else:
            imgs = recipe.generate(model.generator, y, generator=g)
    imgs = imgs.add(1).div(2).clamp(0, 1).cpu()
    nrow = args.num if len(labels) > 1 and args.num <= 16 else max(1, int(math.ceil(math.sqrt(len(imgs)))))
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    torchvision.utils.save_image(imgs, out, nrow=nrow, padding=2, pad_value=1.0)
    print(f"wrote {len(imgs)} images ({'labels ' + ','.join(map(str, labels)) if conditional else 'unconditional'}) to {out}")
    return 0


def add_eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--samples-per-class", type=int, default=1000, help="generated images per class (default 1000)")
    p.add_argument("--batch-size", type=int, default=500)


def evaluate(model: LoadedModel, args: argparse.Namespace) -> dict[str, Any]:
    acc = make_accelerator(getattr(args, "device", None))
    recipe = model.build_recipe()
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
