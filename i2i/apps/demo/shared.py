"""What the demo's tabs share: limits, the model record, upload reading, errors in the page.

See :mod:`i2i.apps.demo` for the page itself; each tab is a module ``tab_<task>`` of this package.
"""
from __future__ import annotations

import functools
import math
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...data.io import image_size, read_image
from ...errors import DataError, I2IError, one_line
from ...inference import LoadedModel
from ...task_table import demo_tabs

DEFAULT_MAX_PIXELS = 1024 * 1024
"""Input pixels per upload: 1 MP. The SR tool's own limit (64 MP, :data:`i2i.data.io.DEFAULT_MAX_PIXELS`)
is for files on disk; a page must also show the ×4 result (1 MP in = 16 MP out, a 48 MB
RGB array) and answer within about a minute on a CPU: the shipped SRResNet took 57 s for a
1024² input on a shared 2-core CPU (:func:`i2i.pipelines.super_resolution.default_tile_batch`)
and 11.7 s for 512² (measured for this limit, same machine, busy)."""

MAX_FILE_SIZE = "25mb"
"""Gradio refuses larger uploads itself (a compressed 1 MP image is far below this)."""

TABS = demo_tabs()
"""The tasks with a tab, in page order, and their titles (from :data:`i2i.task_table.TASKS`)."""

SHIPPED_MODEL = "srresnet_x4_small"
"""The page's shipped SR model: the reduced one (32 channels × 8 blocks), so that a CPU answers
within the minute above; the paper-size ``srresnet_x4`` (the tools' default) needs about 6× the
compute. ``--checkpoint i2i/weights/srresnet_x4`` adds it to the dropdown."""
SHIPPED_NAME = "shipped SRResNet ×4 (small)"
RESULT_TTL_S = 600.0
"""Result files older than this are removed from the demo's folder (Gradio serves its own copies)."""


@dataclass
class DemoModel:
    """One loaded model of the page: its name in the tab's dropdown, the export, its pipeline."""

    name: str
    model: LoadedModel
    pipeline: Any


def _shown_name(path: str | Path, name: str | None) -> str:
    return name or Path(path).name


def read_upload(path: str | Path, max_pixels: int | None = DEFAULT_MAX_PIXELS, mode: str = "RGB",
                name: str | None = None) -> np.ndarray:
    """An uploaded file as uint8 pixels (:func:`i2i.data.io.read_image` ``mode``), or one DataError line.

    The message names the file as the user knows it (``name``, default the file's own name,
    not Gradio's temporary path) and says what was expected; the size is checked from the
    header before any pixel is decoded.
    """
    shown = _shown_name(path, name)
    try:
        h, w = image_size(path, max_pixels=None, verify=False)
        if max_pixels is not None and h * w > max_pixels:
            side = math.isqrt(max_pixels)
            raise DataError(f"{shown}: image too large ({w}x{h} = {w * h:,} pixels; this demo takes at most "
                            f"{max_pixels:,}, e.g. {side}x{side})")
        return read_image(path, mode=mode, max_pixels=None)  # type: ignore[arg-type]
    except DataError as e:
        raise DataError(str(e).replace(str(path), shown)) from None


def _shown(a: np.ndarray) -> np.ndarray:
    """(H, W, 1) -> (H, W): one-channel images as the page (Pillow) takes them."""
    return a[..., 0] if a.ndim == 3 and a.shape[2] == 1 else a


def _prune(folder: Path, ttl_s: float = RESULT_TTL_S) -> None:
    """Remove the result folders older than ``ttl_s`` (Gradio has copied them into its cache)."""
    now = time.time()
    for sub in folder.iterdir() if folder.is_dir() else ():
        try:
            if now - sub.stat().st_mtime > ttl_s:
                shutil.rmtree(sub, ignore_errors=True)
        except OSError:
            pass


def _in_page(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Errors as one line in the page (:class:`gradio.Error`), never a stack trace.

    User errors (:class:`~i2i.errors.I2IError`) show their message; anything else (a bug,
    a device out of memory) shows its type and first line, and the traceback goes to the
    server's stderr for whoever runs the demo.
    """
    import gradio as gr

    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except I2IError as e:
            raise gr.Error(one_line(str(e)), title="Cannot do that", print_exception=False) from None
        except Exception as e:  # noqa: BLE001  (a bug or the environment: still one line in the page)
            traceback.print_exc(file=sys.stderr)
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise gr.Error(one_line(f"{type(e).__name__}: {first} (details in the server's log)"),
                           title="Internal error") from None

    return wrapped


def _upload_name(path: str | None) -> str | None:
    """Gradio keeps an upload's own name as the last part of its temporary path."""
    return Path(path).name if path else None


def _pick(models: list[DemoModel], name: str | None) -> DemoModel:
    for m in models:
        if m.name == name:
            return m
    return models[0]


def _model_choice(gr: Any, models: list[DemoModel]) -> Any:
    """A dropdown of the tab's models (hidden when there is one)."""
    return gr.Dropdown([m.name for m in models], value=models[0].name, label="Model", visible=len(models) > 1)
