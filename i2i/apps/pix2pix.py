"""Sketch-to-photo (pix2pix) front-end: ``tools/infer.py --task sketch2photo`` and
``tools/eval.py --task sketch2photo``.

Inference::

    python tools/infer.py --task sketch2photo --checkpoint RUN sketch.png -o photo.png
    python tools/infer.py --task sketch2photo --checkpoint RUN sketches/ more.png -o photos/
    python tools/infer.py --task sketch2photo --checkpoint RUN --from-photo cat.jpg -o cat.png --save-sketch

* INPUTs are files or folders (a folder's images, not its sub-folders). Files are read by
  :func:`i2i.data.io.read_image` (EXIF, palette, 16-bit; transparency composited on
  white, which is right for a sketch drawn on a transparent layer) and converted to the
  generator's input channels (``meta["in_channels"]``: 1 = BT.601 gray, 3 = RGB).
  Sketches are expected as the model saw them: dark lines on white paper.
* ``--from-photo``: the inputs are photos; the sketch is made first with the same
  function and parameters as the run's dataset (``config["data"]``: ``sketch``,
  ``sketch_params``, ``sketch_channels``), so a model can be tried on any photo.
  ``--save-sketch`` also writes that sketch (``<output stem>_sketch.png``). XDoG/Canny
  lines have a width in *pixels*: photos much larger than the training resolution
  (short side ``data.crop_size``) give relatively thinner lines; ``--resize N`` scales
  the input's short side to N first.
* Any size: H and W are padded (reflection) to the U-Net's multiple ``meta["multiple"]``
  and the output is cropped back (:func:`i2i.recipes.pix2pix.pad_predict`), so the
  output has the input's size (or the ``--resize``d size).
* Output: for a single input file, ``-o`` may name the output file; otherwise ``-o`` is
  a folder (default ``./sketch2photo``) receiving ``<stem>.png``.
* Errors: a file that cannot be read or written prints one ``error: <file>: <reason>``
  line on stderr; the other files are still processed and the exit code is 1.

Test-time noise (``--dropout``, ``--batch-stats``): the paper (§3.3, "at inference
time, we run the generator net in exactly the same manner as during the training phase")
keeps dropout on as G's only noise source and normalises with the test batch's own
statistics. The default here is the usual ``eval()`` mode instead (no dropout, running
BN statistics): deterministic outputs that are repeatable and comparable between runs,
and what the trainer's own validation uses. ``--dropout`` turns the decoder's dropout on
(different ``--seed`` = different samples; the paper notes the outputs vary only
slightly); ``--dropout --batch-stats`` is the paper's exact test mode.

Evaluation: per held-out image and averaged, L1 (in [-1, 1] units), PSNR and SSIM
against the real photo on 8-bit-quantised images, and the sharpness ratio, mean squared
Laplacian of the output over that of the photo (1 = as sharp as the photo, < 1 =
blurrier); see :func:`i2i.recipes.pix2pix.image_metrics`. ``--data`` defaults to the
run's own held-out split (``data.val_split``, the embedded photos' ``val`` unless
``data.root`` was set); ``--data DIR`` rebuilds the run's dataset type (same sketch style,
crop size, direction) with that root, reading ``DIR/<split>``.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..data.io import read_image, save_image
from ..data.paired import _resize, _to_channels, to_tensor
from ..errors import ConfigError, I2IError
from ..inference import LoadedModel
from ..recipes.pix2pix import image_metrics, pad_predict
from .common import is_single_file, collect_inputs, dataset_from_config, eval_loader, make_accelerator, output_paths, tile_panels

__all__ = ["generator_mode", "make_sketch", "translate", "comparison_grid", "add_infer_args", "infer", "add_eval_args", "evaluate"]

DEFAULT_OUTPUT = "sketch2photo"


# --- model facts ------------------------------------------------------------------------
def _in_channels(model: LoadedModel) -> int:
    """Channels G expects: the export's meta, else G's first convolution."""
    c = model.meta.get("in_channels")
    if c is None:
        conv = next(m for m in model.generator.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)))
        c = conv.in_channels
    return int(c)


def _multiple(model: LoadedModel) -> int:
    return int(model.meta.get("multiple") or getattr(model.generator, "multiple", 1))


@contextlib.contextmanager
def generator_mode(G: nn.Module, dropout: bool = False, batch_stats: bool = False) -> Iterator[nn.Module]:
    """Eval mode, optionally with the paper's test-time noise (see module docstring).

    ``dropout`` puts the ``nn.Dropout`` layers in training mode; ``batch_stats`` makes the
    batch norms normalise with the current batch's statistics. Their running statistics
    are left untouched (momentum 0 for the duration), and every module's mode is restored.
    """
    modes = {m: m.training for m in G.modules()}
    momenta: dict[nn.Module, float | None] = {}
    G.eval()
    try:
        for m in G.modules():
            if dropout and isinstance(m, nn.Dropout):
                m.train()
            if batch_stats and isinstance(m, nn.modules.batchnorm._BatchNorm):
                momenta[m] = m.momentum
                m.momentum = 0.0  # running = (1 - 0)·running + 0·batch: unchanged
                m.train()
        yield G
    finally:
        for m, was in modes.items():
            m.train(was)
        for m, mom in momenta.items():
            m.momentum = mom


def make_sketch(model: LoadedModel, photo: np.ndarray) -> np.ndarray:
    """The run's sketch of a photo: (H, W, 3) uint8 -> (H, W, sketch_channels) uint8.

    Uses the sketch function and parameters of the run's ``photo_sketch`` dataset, so the
    sketch looks like the ones the model was trained on (at equal resolution).
    """
    from ..data.edges import canny_sketch, xdog_sketch

    data = model.config.get("data") or {}
    if data.get("type") != "photo_sketch":
        raise ConfigError(f"this model was trained on {data.get('type')!r} pairs, not on sketches made from "
                          "photos (photo_sketch): give it its input images directly", "--from-photo")
    if data.get("direction", "AtoB") != "AtoB":
        raise ConfigError("this model maps photo -> sketch (direction BtoA): give it photos without --from-photo",
                          "--from-photo")
    fn = {"xdog": xdog_sketch, "canny": canny_sketch}[data.get("sketch", "xdog")]
    return fn(photo, channels=int(data.get("sketch_channels", 1)), **dict(data.get("sketch_params") or {}))


def translate(model: LoadedModel, image: np.ndarray) -> np.ndarray:
    """Run G on one image of any size: (H, W, C) uint8 -> (H, W, C_out) uint8.

    The image is converted to G's input channels, padded to its multiple and cropped back.
    Dropout/BN modes are the caller's (see :func:`generator_mode`).
    """
    x = to_tensor(_to_channels(image, _in_channels(model)))[None]
    device = next(model.generator.parameters()).device
    y = pad_predict(model.generator, x.to(device), _multiple(model))[0]
    return y.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def _resize_short(img: np.ndarray, short: int) -> np.ndarray:
    h, w = img.shape[:2]
    s = short / min(h, w)
    return _resize(img, max(1, round(h * s)), max(1, round(w * s)))


def comparison_grid(models: list[LoadedModel], split: str | None = None, root: str | None = None,
                    zoom: int = 3, gap: int = 2) -> np.ndarray:
    """Side-by-side outputs of several models on the held-out photos of the first one's run.

    One row per photo of ``split`` (default ``data.val_split``) of the first model's
    ``photo_sketch`` dataset (``root`` replaces ``data.root``), whole frames at evaluation
    resolution (short side ``crop_size``, not cropped): sketch | model 1 | model 2 | ... |
    photo. Models run in eval mode. Each cell is enlarged ``zoom``× (nearest neighbour) and
    separated by ``gap`` white pixels.

    Returns:
        (H, W, 3) uint8 grid, ready for :func:`i2i.data.io.save_image`.
    """
    if not models:
        raise ValueError("comparison_grid needs at least one model")
    data = models[0].config.get("data") or {}
    if data.get("type") != "photo_sketch":
        raise ConfigError(f"needs a photo_sketch run, got data.type {data.get('type')!r}", "data.type")
    ds = dataset_from_config(models[0].config, split or data.get("val_split", "val"), root)
    rows = []
    for k in range(len(ds.loaders)):
        photo, sketch = ds.photo_and_sketch(k)
        cells = [_to_channels(sketch, 3)]
        for m in models:
            with generator_mode(m.generator), torch.no_grad():
                cells.append(translate(m, sketch))
        cells.append(photo)
        rows.append(cells)
    return tile_panels(rows, zoom, gap)


# --- inference CLI ----------------------------------------------------------------------
def add_infer_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="sketch images or folders of them (photos with --from-photo)")
    p.add_argument("-o", "--output", default=None,
                   help=f"output file (one input file) or folder (default ./{DEFAULT_OUTPUT}/)")
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
    if args.resize is not None and args.resize < 1:
        raise ConfigError(f"must be >= 1, got {args.resize}", "--resize")
    if args.from_photo:
        make_sketch(model, np.full((8, 8, 3), 255, np.uint8))  # config problems: one error, before any file
    files, errors = collect_inputs(args.inputs)
    single = is_single_file(args.inputs, files)
    targets = output_paths(files, args.output, single, DEFAULT_OUTPUT)  # a bad -o stops everything, before any per-file line
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    torch.manual_seed(args.seed)
    failed = len(errors)
    written = 0
    with generator_mode(model.generator, args.dropout, args.batch_stats), torch.no_grad():
        for src, dst in zip(files, targets):
            try:
                img = read_image(src, "RGB")
                if args.resize:
                    img = _resize_short(img, args.resize)
                sketch = make_sketch(model, img) if args.from_photo else img
                photo = translate(model, sketch)
                save_image(dst, photo)
                if args.save_sketch:
                    save_image(dst.with_name(f"{dst.stem}_sketch.png"), sketch)
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
            print(f"{src} -> {dst}")
    if written and (written > 1 or not single):
        print(f"wrote {written} image(s) to {targets[0].parent}")
    return 1 if failed else 0


# --- evaluation CLI ---------------------------------------------------------------------
def add_eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--split", default=None, help="split to evaluate (default: the run's data.val_split)")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--dropout", action="store_true", help="keep the generator's dropout on (the paper's test-time noise)")
    p.add_argument("--batch-stats", action="store_true", help="batch norm with each batch's own statistics")
    p.add_argument("--seed", type=int, default=0, help="seed of the dropout noise")


def _item_names(ds: Any) -> list[str]:
    """A short name per item, in dataset order (photo name, A|B file, or B file)."""
    if hasattr(ds, "names"):
        names = [Path(n).name for n in ds.names]
    elif hasattr(ds, "files"):
        names = [Path(f).name for f in ds.files]
    elif hasattr(ds, "pairs"):
        names = [Path(b).name for _, b in ds.pairs]
    else:
        return [str(i) for i in range(len(ds))]
    reps = len(ds) // max(1, len(names))
    return [n if reps == 1 else f"{n}#{r}" for r in range(reps) for n in names]


def evaluate(model: LoadedModel, args: argparse.Namespace) -> dict[str, Any]:
    if args.batch_size < 1:
        raise ConfigError(f"must be >= 1, got {args.batch_size}", "--batch-size")
    acc = make_accelerator(getattr(args, "device", None))
    data_cfg = model.config.get("data") or {}
    split = args.split or data_cfg.get("val_split", "val")
    ds = dataset_from_config(model.config, split, args.data)
    model.to(acc.device)
    G, multiple = model.generator, _multiple(model)
    torch.manual_seed(args.seed + acc.process_index)
    per_image: dict[str, list[Tensor]] = {"l1": [], "psnr": [], "ssim": [], "sharpness": []}
    with generator_mode(G, args.dropout, args.batch_stats), torch.no_grad():
        for batch in eval_loader(acc, ds, args.batch_size):
            fake = pad_predict(G, batch["A"], multiple)
            for k, v in image_metrics(fake, batch["B"]).items():
                per_image[k].append(acc.gather_for_metrics(v.contiguous()))
    if not per_image["l1"]:
        raise ConfigError(f"no images in split {split!r}", "--data")
    values = {k: torch.cat(v).cpu() for k, v in per_image.items()}
    names = _item_names(ds)
    root = args.data if args.data is not None else data_cfg.get("root")
    out: dict[str, Any] = {k: v.mean().item() for k, v in values.items()}
    out.update({
        "data": root or "embedded scikit-image photos", "split": split, "num_images": len(values["l1"]),
        "dropout": bool(args.dropout), "batch_stats": bool(args.batch_stats),
        "per_image": [{"name": names[i] if i < len(names) else str(i), **{k: v[i].item() for k, v in values.items()}}
                      for i in range(len(values["l1"]))],
    })
    return out
