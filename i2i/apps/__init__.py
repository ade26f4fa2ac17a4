"""Task front-ends for ``tools/infer.py`` and ``tools/eval.py``.

Each module exposes ``add_infer_args(parser)``, ``infer(model, args) -> int``,
``add_eval_args(parser)`` and ``evaluate(model, args) -> dict`` for one task family.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import I2IError

APPS = {"digits": "digits", "sr": "super_resolution", "sketch2photo": "pix2pix", "seg": "segmentation"}


def get_app(task: str) -> ModuleType:
    if task not in APPS:
        raise I2IError(f"no front-end for task {task!r}; available: {', '.join(APPS)}")
    try:
        return importlib.import_module(f"{__name__}.{APPS[task]}")
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith(__name__):
            raise I2IError(f"task {task!r} is not available in this version") from None
        raise
