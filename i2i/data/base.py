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

import sys

import numpy as np
import torch


def split_index(index: int | tuple[int, int]) -> tuple[int, np.random.Generator]:
    """``(i, seed)`` or ``i`` -> ``(i, rng)``; plain ints get a fixed RNG seeded by ``i``."""
    if isinstance(index, tuple):
        i, seed = index
        return int(i), np.random.default_rng(int(seed))
    return int(index), np.random.default_rng(int(index))


class SkipUnreadable(torch.utils.data.Dataset):
    """``data.on_error: skip`` for datasets that read files lazily in ``__getitem__``.

    An item whose file raises :class:`~i2i.errors.DataError` is reported on stderr (file,
    reason, running count) and replaced by the next readable item, so one corrupt JPEG
    cannot stop a long run. Datasets that scan their files up front take ``on_error``
    themselves (the SR folders) and are not wrapped. Every other attribute is the wrapped
    dataset's.
    """

    def __init__(self, dataset: torch.utils.data.Dataset, max_consecutive: int = 50):
        self.dataset = dataset
        self.max_consecutive = max_consecutive
        self.skipped: set[int] = set()

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getattr__(self, name: str):  # noqa: ANN204
        if name in ("dataset", "__setstate__", "__getstate__"):  # unpickling in a worker: no recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, index: int | tuple[int, int]):  # noqa: ANN204
        from ..errors import DataError

        i, seed = index if isinstance(index, tuple) else (index, None)
        n = len(self)
        last: DataError | None = None
        for k in range(min(self.max_consecutive, n)):
            j = (int(i) + k) % n
            try:
                return self.dataset[(j, seed) if seed is not None else j]
            except DataError as e:
                last = e
                if j not in self.skipped:
                    self.skipped.add(j)
                    print(f"warning: skipped {e} ({len(self.skipped)} unreadable so far)", file=sys.stderr, flush=True)
        raise DataError(f"{min(self.max_consecutive, n)} unreadable items in a row; last: {last}")
