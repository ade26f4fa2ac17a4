"""Sketch-to-photo (pix2pix) pipeline: an image array in, the generator's image out.

    pipe = Pix2PixPipeline(load_model("runs/sketch2photo"))
    photo = pipe(sketch)                      # (H, W[, C]) uint8 -> (H, W, 3) uint8
    pipe = Pix2PixPipeline(model, from_photo=True)
    photo = pipe(cat_photo)                   # the run's sketch of the photo, then G

* Channels: the input is converted to the generator's input channels
  (the card's ``in_channels``: 1 = BT.601 gray, 3 = RGB). Sketches are expected as the model
  saw them: dark lines on white paper.
* ``from_photo``: the inputs are photos; the sketch is made first with the same function
  and parameters as the run's dataset (the card's ``sketch``, from the run's ``data`` config:
  ``sketch``, ``sketch_params``, ``sketch_channels``; :func:`make_sketch`). XDoG/Canny lines have a width in *pixels*:
  photos much larger than the training resolution give relatively thinner lines;
  ``resize=N`` scales the input's short side to N first.
* Any size: H and W are padded (reflection) to the U-Net's multiple (the card's ``multiple_of``)
  and the output is cropped back (:func:`i2i.tiling.pad_predict`), so the output
  has the input's size (or the ``resize``d size).

Test-time noise (``dropout``, ``batch_stats``): the paper (§3.3, "at inference time, we
run the generator net in exactly the same manner as during the training phase") keeps
dropout on as G's only noise source and normalises with the test batch's own statistics.
The default here is the usual ``eval()`` mode instead (no dropout, running BN
statistics): deterministic outputs that are repeatable and comparable between runs, and
what the trainer's own validation uses. ``dropout=True`` turns the decoder's dropout on
(seed ``torch.manual_seed`` for repeatable samples; the paper notes the outputs vary only
slightly); ``dropout=True, batch_stats=True`` is the paper's exact test mode.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from ..data.arrays import resize_bicubic, to_channels, to_tensor
from ..errors import ConfigError
from ..inference import LoadedModel
from ..tiling import pad_predict

__all__ = ["Pix2PixPipeline", "generator_mode", "make_sketch", "translate", "resize_short", "in_channels",
           "multiple_of"]


def in_channels(model: LoadedModel) -> int:
    """Channels G expects (the card's ``in_channels``)."""
    return int(model.card.in_channels or 3)


def multiple_of(model: LoadedModel) -> int:
    """The size multiple G needs (2^num_downs for a U-Net; the card's ``multiple_of``); 1 = any size."""
    return int(model.card.multiple_of or 1)


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
    sketch looks like the ones the model was trained on (at equal resolution). A model
    trained on other pairs raises :class:`~i2i.errors.ConfigError` (key ``from_photo``).
    """
    from ..data.edges import canny_sketch, xdog_sketch

    sketch = model.card.sketch
    data_type = sketch.data_type if sketch is not None else None
    if sketch is None or data_type != "photo_sketch":
        raise ConfigError(f"this model was trained on {data_type!r} pairs, not on sketches made from "
                          "photos (photo_sketch): give it its input images directly", "from_photo")
    if sketch.direction != "AtoB":
        raise ConfigError("this model maps photo -> sketch (direction BtoA): its inputs are the photos themselves",
                          "from_photo")
    fn = {"xdog": xdog_sketch, "canny": canny_sketch}[sketch.kind]
    return fn(photo, channels=sketch.channels, **dict(sketch.params))


@torch.no_grad()
def translate(model: LoadedModel, image: np.ndarray) -> np.ndarray:
    """Run G on one image of any size: (H, W[, C]) uint8 -> (H, W, C_out) uint8.

    The image is converted to G's input channels, padded to its multiple and cropped back.
    Dropout/BN modes are the caller's (see :func:`generator_mode`).
    """
    x = to_tensor(to_channels(image, in_channels(model)))[None]
    device = next(model.generator.parameters()).device
    y = pad_predict(model.generator, x.to(device), multiple_of(model))[0]
    return y.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def resize_short(img: np.ndarray, short: int) -> np.ndarray:
    """Bicubic resize of (H, W[, C]) uint8 so that the short side is ``short`` pixels."""
    if img.ndim == 2:
        img = img[..., None]
    h, w = img.shape[:2]
    s = short / min(h, w)
    return resize_bicubic(img, max(1, round(h * s)), max(1, round(w * s)))


class Pix2PixPipeline:
    """A pix2pix generator on whole images, any size.

    Args:
        model: the loaded run (its card's ``sketch`` gives the sketch style for ``from_photo``).
        from_photo: inputs are photos: make the run's sketch of each first.
        resize: scale each input's short side to this many pixels first (None = as is).
        dropout, batch_stats: the paper's test-time noise (module docstring).

    ``pipe(image)`` is the generator's output; :meth:`input_for` is what it was given
    (the sketch, for ``from_photo``).
    """

    def __init__(self, model: LoadedModel, from_photo: bool = False, resize: int | None = None,
                 dropout: bool = False, batch_stats: bool = False):
        if resize is not None and resize < 1:
            raise ConfigError(f"must be >= 1, got {resize}", "resize")
        if from_photo:
            make_sketch(model, np.full((8, 8, 3), 255, np.uint8))  # a config problem: one error, now
        self.model, self.from_photo, self.resize = model, from_photo, resize
        self.dropout, self.batch_stats = dropout, batch_stats

    def input_for(self, image: np.ndarray) -> np.ndarray:
        """What G is given for ``image``: resized, and sketched for ``from_photo``."""
        if self.resize:
            image = resize_short(image, self.resize)
        return make_sketch(self.model, to_channels(image, 3)) if self.from_photo else image

    def translate(self, x: np.ndarray) -> np.ndarray:
        """G's output for an input as :meth:`input_for` returns it: (H, W, C_out) uint8."""
        with generator_mode(self.model.generator, self.dropout, self.batch_stats):
            return translate(self.model, x)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """(H, W[, C]) uint8 sketch (a photo with ``from_photo``) -> (H, W, 3) uint8 photo."""
        return self.translate(self.input_for(image))
