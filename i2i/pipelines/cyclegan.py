"""CycleGAN pipeline: an image of one domain in, its translation into the other out.

    pipe = CycleGANPipeline(load_model("runs/horse2zebra"))
    zebra = pipe(horse)                        # (H, W[, C]) uint8 -> (H, W, C_B) uint8, G: A -> B
    horse = pipe(zebra, direction="BtoA")      # F: B -> A

Models: the two generators of the ``cyclegan`` recipe (Zhu et al. 2017). The model card says
which slot goes which way and each source domain's channels (:class:`i2i.card.Directions`:
``AtoB`` -> ``generator_ab``, ``BtoA`` -> ``generator_ba``) and the size multiple
(``multiple_of``); for a checkpoint folder without export meta the card reads them from the
networks, as the recipe's ``setup`` does.

* Channels: the input is converted to the source domain's channels (1 = BT.601 gray,
  3 = RGB; :func:`i2i.data.arrays.to_channels`); the output has the target domain's.
* Any size: H and W are padded (reflection) to the generators' multiple and the output is
  cropped back (:func:`i2i.tiling.pad_predict`, as the recipe's own evaluation and
  the pix2pix pipeline do), so the output has the input's size. The networks ran at
  ``data.crop_size`` in training: much larger inputs are translated at a smaller relative scale.
"""
from __future__ import annotations

import numpy as np
import torch

from ..data.arrays import to_channels, to_tensor
from ..errors import ConfigError
from ..inference import LoadedModel
from ..tiling import pad_predict

__all__ = ["CycleGANPipeline", "DIRECTIONS"]

DIRECTIONS = {"AtoB": "generator_ab", "BtoA": "generator_ba"}
"""The recipe's slots per direction (the default of a card's :class:`~i2i.card.Directions`)."""


def check_direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise ConfigError(f"expected AtoB or BtoA, got {direction!r}", "direction")
    return direction


class CycleGANPipeline:
    """Both generators of a CycleGAN run on whole images, any size.

    Args:
        model: the loaded run (``generator_ab`` and ``generator_ba`` in ``model.nets``).
        direction: the default of :meth:`__call__`: ``"AtoB"`` (G) or ``"BtoA"`` (F).
    """

    def __init__(self, model: LoadedModel, direction: str | None = "AtoB"):
        card = model.card
        dirs = card.directions
        # a card may hold one direction only (a junyanz latest_net_G_A.pth / _B.pth file)
        self.slots = dict(dirs.slots) if dirs is not None and dirs.slots else dict(DIRECTIONS)
        missing = sorted({s for s in self.slots.values() if s not in model.nets})
        if missing:
            raise ConfigError(f"{model.path}: no {' or '.join(missing)} network; is this a CycleGAN run?", "checkpoint")
        self.model = model
        self.direction = self._direction(next(d for d in DIRECTIONS if d in self.slots) if direction is None else direction)
        self.multiple = int(card.multiple_of or 1)
        # the source domain's channels, None = as given
        self.channels = dict(dirs.channels) if dirs is not None else {"AtoB": None, "BtoA": None}

    def _direction(self, direction: str) -> str:
        check_direction(direction)
        if direction not in self.slots:
            raise ConfigError(f"{self.model.path}: holds the {' and '.join(self.slots)} generator only, not {direction}",
                              "direction")
        return direction

    @torch.no_grad()
    def __call__(self, image: np.ndarray, direction: str | None = None) -> np.ndarray:
        """(H, W) or (H, W, 1|3) uint8 of the source domain -> (H, W, C_target) uint8.

        ``direction``: ``"AtoB"`` or ``"BtoA"`` (None: the pipeline's own). The networks run
        in the mode they are in (:func:`~i2i.inference.load_model` gives them in eval mode).
        """
        direction = self._direction(self.direction if direction is None else direction)
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3)):
            raise ValueError(f"expected an (H, W) or (H, W, 1|3) uint8 image, got {image.dtype} {image.shape}")
        G = self.model.nets[self.slots[direction]]
        c = self.channels[direction]
        x = to_tensor(to_channels(image, int(c)) if c else (image[..., None] if image.ndim == 2 else image))[None]
        y = pad_predict(G, x.to(next(G.parameters()).device), self.multiple)[0].float()
        return y.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
