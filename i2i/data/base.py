"""Dataset conventions shared by every task.

* A dataset is a ``torch.utils.data.Dataset`` registered in :data:`i2i.registry.DATASETS`.
  Its constructor is ``__init__(self, root: str | None, split: str, **kwargs)``; the
  kwargs are the YAML schema (checked against the signature).
* ``__getitem__`` returns a ``dict[str, Tensor]`` (e.g. ``{"image": (C,H,W) float,
  "label": int64}``); the recipe documents which keys and value ranges it expects.
* Randomness (crops, flips) comes only from the per-sample RNG given by
  :func:`split_index`. The engine's sampler passes ``(index, seed)`` pairs, with the seed
  derived from (run seed, epoch, position), so a sample's augmentation does not depend on
  the worker that loads it nor on whether the run was resumed: exact resume needs that.
  Called with a plain ``int`` (evaluation, notebooks) the sample is deterministic.
"""
from __future__ import annotations

import numpy as np


def split_index(index: int | tuple[int, int]) -> tuple[int, np.random.Generator]:
    """``(i, seed)`` or ``i`` -> ``(i, rng)``; plain ints get a fixed RNG seeded by ``i``."""
    if isinstance(index, tuple):
        i, seed = index
        return int(i), np.random.default_rng(int(seed))
    return int(index), np.random.default_rng(int(index))
