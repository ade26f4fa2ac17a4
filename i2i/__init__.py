"""i2i: conditional image-to-image GANs from shared, tested building blocks.

Importing the package registers every network, loss, dataset and recipe, so
``i2i.registry.GENERATORS.list()`` (and ``tools/train.py --list``) is complete.
"""
from __future__ import annotations

__version__ = "0.1.0"

from . import data, engine, losses, nn, recipes  # noqa: F401,E402  (registration side effects)
from .hub import from_pretrained, save_pretrained  # noqa: E402
from .inference import load_model  # noqa: E402
from .registry import (  # noqa: E402
    DATASETS, DISCRIMINATORS, GAN_OBJECTIVES, GENERATORS, LOSSES, OPTIMIZERS, RECIPES, SCHEDULERS,
)

__all__ = ["load_model", "from_pretrained", "save_pretrained", "GENERATORS", "DISCRIMINATORS", "LOSSES", "GAN_OBJECTIVES", "DATASETS", "RECIPES",
           "OPTIMIZERS", "SCHEDULERS", "__version__"]
