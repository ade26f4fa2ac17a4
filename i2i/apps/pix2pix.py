"""Sketch-to-photo (pix2pix) front-end: ``tools/infer.py --task sketch2photo`` and
``tools/eval.py --task sketch2photo``.

Inference (the arrays: :class:`i2i.pipelines.pix2pix.Pix2PixPipeline`, which documents
channels, sizes, ``--from-photo`` sketches and the test-time noise of ``--dropout``/``--batch-stats``)::

    python tools/infer.py --task sketch2photo --checkpoint RUN sketch.png -o photo.png
    python tools/infer.py --task sketch2photo --checkpoint RUN sketches/ more.png -o photos/
    python tools/infer.py --task sketch2photo --checkpoint RUN --from-photo cat.jpg -o cat.png --save-sketch

* INPUTs are files or folders (a folder's images, not its sub-folders), read as RGB
  (:func:`i2i.data.io.read_image`: transparency on white, right for a sketch drawn on a
  transparent layer).
* ``--from-photo``: the inputs are photos, sketched in the run's style first;
  ``--save-sketch`` also writes that sketch (``<output stem>_sketch.png``); ``--resize N``
  scales each input's short side to N first.
* Output: for a single input file, ``-o`` may name the output file; otherwise ``-o`` is
  a folder (default ``./sketch2photo``) receiving ``<stem>.png``.
* Errors: a file that cannot be read or written prints one ``error: <file>: <reason>``
  line on stderr; the other files are still processed and the exit code is 1.

Evaluation: per held-out image and averaged, L1 (in [-1, 1] units), PSNR, SSIM and the
sharpness ratio against the real photo (:func:`i2i.recipes.pix2pix.image_metrics`); over the
whole set, ``fd_sift``: the Fréchet distance between the dense SIFT statistics of the outputs
and of the real photos (:mod:`i2i.metrics.texture`; ``fd_sift_patches`` patches per side;
absent when the images are smaller than its 32-px patch). ``--data`` defaults to the
run's own held-out split (``data.val_split``, the embedded photos' ``val`` unless
``data.root`` was set); ``--data DIR`` rebuilds the run's dataset type (same sketch style,
crop size, direction) with that root, reading ``DIR/<split>``.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..data.io import save_image
from ..errors import ConfigError
from ..inference import LoadedModel
from ..metrics.texture import PATCH, frechet_from_moments, texture_moments
from ..pipelines.pix2pix import Pix2PixPipeline, generator_mode, multiple_of
from ..recipes.pix2pix import image_metrics, pad_predict
from .common import FileLoop, add_file_args, cli_flags, dataset_from_config, eval_loader, item_names, make_accelerator
from .compare import pix2pix_grid as comparison_grid

__all__ = ["comparison_grid", "add_infer_args", "infer", "add_eval_args", "evaluate"]

DEFAULT_OUTPUT = "sketch2photo"


# --- inference CLI ----------------------------------------------------------------------
def add_infer_args(p: argparse.ArgumentParser) -> None:
    add_file_args(p, "sketch images or folders of them (photos with --from-photo)", DEFAULT_OUTPUT)
    p.add_argument("--from-photo", action="store_true",
                   help="inputs are photos: make the sketch first, in the run's sketch style")
    p.add_argument("--save-sketch", action="store_true", help="with --from-photo: also write <output stem>_sketch.png")
    p.add_argument("--resize", type=int, default=None, metavar="N", help="scale each input's short side to N pixels first")
    p.add_argument("--dropout", action="store_true", help="keep the generator's dropout on (the paper's test-time noise)")
    p.add_argument("--batch-stats", action="store_true",
                   help="batch norm with the image's own statistics (the paper's test mode, with --dropout)")
    p.add_argument("--seed", type=int, default=0, help="seed of the dropout noise")


def infer(model: LoadedModel, args: argparse.Namespace) -> int:
    if args.save_sketch and not args.from_photo:
        raise ConfigError("only a sketch made from a photo can be saved: add --from-photo", "--save-sketch")
    with cli_flags():
        pipe = Pix2PixPipeline(model, args.from_photo, args.resize, args.dropout, args.batch_stats)
    torch.manual_seed(args.seed)

    def process(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = pipe.input_for(image)
        return x, pipe.translate(x)

    def sketch_of(dst: Path) -> list[Path]:
        return [dst.with_name(f"{dst.stem}_sketch.png")] if args.save_sketch else []

    def write(src: Path, dst: Path, out: tuple[np.ndarray, np.ndarray]) -> str:
        save_image(dst, out[1])
        for path in sketch_of(dst):
            save_image(path, out[0])
        return f"{src} -> {dst}"

    return FileLoop(process, write=write, extra_outputs=sketch_of).run(args.inputs, args.output, DEFAULT_OUTPUT)


# --- evaluation CLI ---------------------------------------------------------------------
def add_eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--split", default=None, help="split to evaluate (default: the run's data.val_split)")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--dropout", action="store_true", help="keep the generator's dropout on (the paper's test-time noise)")
    p.add_argument("--batch-stats", action="store_true", help="batch norm with each batch's own statistics")
    p.add_argument("--seed", type=int, default=0, help="seed of the dropout noise")


def evaluate(model: LoadedModel, args: argparse.Namespace) -> dict[str, Any]:
    if args.batch_size < 1:
        raise ConfigError(f"must be >= 1, got {args.batch_size}", "--batch-size")
    acc = make_accelerator(getattr(args, "device", None))
    data_cfg = model.config.get("data") or {}
    split = args.split or data_cfg.get("val_split", "val")
    ds = dataset_from_config(model.config, split, args.data)
    model.to(acc.device)
    G, multiple = model.generator, multiple_of(model)
    torch.manual_seed(args.seed + acc.process_index)
    per_image: dict[str, list[Tensor]] = {"l1": [], "psnr": [], "ssim": [], "sharpness": []}
    moments: dict[str, list[Tensor]] = {"fake": [], "real": []}  # FD_SIFT's per-image sums
    with generator_mode(G, args.dropout, args.batch_stats), torch.no_grad():
        for batch in eval_loader(acc, ds, args.batch_size):
            fake = pad_predict(G, batch["A"], multiple)
            for k, v in image_metrics(fake, batch["B"]).items():
                per_image[k].append(acc.gather_for_metrics(v.contiguous()))
            if min(fake.shape[-2:]) >= PATCH:
                for k, img in (("fake", fake), ("real", batch["B"])):
                    moments[k].append(acc.gather_for_metrics(texture_moments(img.float().add(1).div(2))))
    if not per_image["l1"]:
        raise ConfigError(f"no images in split {split!r}", "--data")
    values = {k: torch.cat(v).cpu() for k, v in per_image.items()}
    names = item_names(ds)
    root = args.data if args.data is not None else data_cfg.get("root")
    out: dict[str, Any] = {k: v.mean().item() for k, v in values.items()}
    if moments["fake"] and len(moments["fake"]) == len(per_image["l1"]):
        fake_m, real_m = torch.cat(moments["fake"]), torch.cat(moments["real"])
        out["fd_sift"] = frechet_from_moments(fake_m, real_m)
        out["fd_sift_patches"] = int(fake_m[:, 0].sum().item())
    out.update({
        "data": root or "embedded scikit-image photos", "split": split, "num_images": len(values["l1"]),
        "dropout": bool(args.dropout), "batch_stats": bool(args.batch_stats),
        "per_image": [{"name": names[i] if i < len(names) else str(i), **{k: v[i].item() for k, v in values.items()}}
                      for i in range(len(values["l1"]))],
    })
    return out
