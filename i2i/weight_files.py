"""One weights file made by another project, read without running code (issue 24, part B).

``read_state_dict(path)``: safetensors, or ``torch.load(weights_only=True)`` for pickles (a file that
would run code is refused and nothing runs), size and tensor count capped, the state dict unwrapped
the way the field's files come (``params_ema``, ``params``, ``state_dict``, a ``module.`` prefix:
:func:`spandrel.canonicalize_state_dict`). Used by the readers (:mod:`i2i.foreign`) and by training's
``train.init`` (a run started from such a file), so it sits below both.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor

from .errors import CheckpointError

__all__ = ["MAX_FILE_BYTES", "MAX_TENSORS", "WEIGHT_SUFFIXES", "is_weights_file", "read_state_dict"]

WEIGHT_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin", ".safetensors")
MAX_FILE_BYTES = 4 * 2**30
"""4 GiB: HAT-L, the largest image-restoration file of the field, is ~170 MB; a bigger file is not a model for this door."""
MAX_TENSORS = 20_000
"""SwinIR-L / HAT-L hold a few thousand tensors; more is a damaged or hostile file."""


def _is_tensor_dict(x: Any) -> bool:
    return isinstance(x, dict) and bool(x) and all(isinstance(v, Tensor) for v in x.values())


def read_state_dict(path: Path) -> dict[str, Tensor]:
    """The tensors of a weights file, read without running code; one line naming the file otherwise."""
    from .runs import load_tensors, safe_torch_load

    try:
        size = path.stat().st_size
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({e.strerror or e})") from None
    if size > MAX_FILE_BYTES:
        raise CheckpointError(f"{path}: {size:,} bytes is more than a weights file may hold here ({MAX_FILE_BYTES:,})")
    if path.suffix.lower() == ".safetensors":
        obj: Any = load_tensors(path)
    else:
        obj = safe_torch_load(path)  # weights_only=True: a pickle that would run code is refused
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a state dict (a mapping of names to tensors), got {type(obj).__name__}")
    from spandrel import canonicalize_state_dict

    sd = canonicalize_state_dict(obj)
    if not _is_tensor_dict(sd):
        keys = ", ".join(map(str, list(obj)[:6]))
        raise CheckpointError(f"{path}: no state dict of tensors found (top-level keys: {keys})")
    if len(sd) > MAX_TENSORS:
        raise CheckpointError(f"{path}: {len(sd):,} tensors is more than a model file may hold here ({MAX_TENSORS:,})")
    return sd


def is_weights_file(path: Path) -> bool:
    """A single weights file (by its suffix), not an i2i folder."""
    return path.is_file() and path.suffix.lower() in WEIGHT_SUFFIXES
