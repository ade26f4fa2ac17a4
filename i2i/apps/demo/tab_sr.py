"""The super-resolution tab: upload an image, get it ×scale on a before/after slider
(:class:`gradio.ImageSlider`), with the full-resolution PNG to download."""
from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from ...data.io import save_image
from .shared import (
    DEFAULT_MAX_PIXELS,
    TABS,
    DemoModel,
    _in_page,
    _model_choice,
    _pick,
    _prune,
    _shown_name,
    _upload_name,
    read_upload,
)


def super_resolve(pipe: Any, path: str | Path, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                  out_dir: str | Path | None = None, name: str | None = None) -> tuple[np.ndarray, np.ndarray, Path | None]:
    """(input, result, result PNG): the upload at its own layout (gray, RGB, with alpha) and
    ``pipe(input)`` (an :class:`~i2i.pipelines.super_resolution.SuperResolutionPipeline`).

    With ``out_dir`` the result is also written there as ``<name>_x<scale>.png`` (in a
    folder of its own, so concurrent users never share a file).
    """
    lr = read_upload(path, max_pixels, mode="keep", name=name)
    sr = pipe(lr)
    png = None
    if out_dir is not None:
        stem = Path(_shown_name(path, name)).stem or "image"
        folder = Path(out_dir) / uuid.uuid4().hex
        png = save_image(folder / f"{stem}_x{pipe.scale}.png", sr, png_compression=1)  # fast level, same pixels
    return lr, sr, png



def build(gr: Any, models: list[DemoModel], max_pixels: int | None, out_dir: Path) -> None:
    scale = models[0].pipeline.scale
    with gr.Tab(TABS["sr"], id="sr"):
        gr.Markdown(f"Upload an image: the model upscales it ×{scale}. Drag the slider to compare the input "
                    "(enlarged by the browser) with the result; the PNG below is the full-resolution result.")
        choice = _model_choice(gr, models)
        with gr.Row():
            with gr.Column(scale=1):
                upload = gr.File(label="Image to upscale", file_types=["image"], type="filepath", elem_id="sr-input")
                status = gr.Markdown(elem_id="sr-status")
            with gr.Column(scale=2):
                slider = gr.ImageSlider(label="Before / after", format="png", type="numpy", elem_id="sr-slider",
                                        buttons=["fullscreen"])
                download = gr.File(label="Download the result (PNG)", elem_id="sr-download", interactive=False)

        @_in_page
        def run(path: str | None, name: str | None) -> tuple[Any, Any, str]:
            if not path:
                return None, None, ""
            m = _pick(models, name)
            _prune(out_dir)
            t0 = time.perf_counter()
            lr, sr, png = super_resolve(m.pipeline, path, max_pixels, out_dir, name=_upload_name(path))
            h, w = lr.shape[:2]
            msg = (f"{w}×{h} → **{sr.shape[1]}×{sr.shape[0]}** (×{m.pipeline.scale}, {m.name}) "
                   f"in {time.perf_counter() - t0:.1f} s")
            return (lr, sr), str(png), msg

        upload.change(run, [upload, choice], [slider, download, status], concurrency_limit=1, concurrency_id="models")
        choice.change(run, [upload, choice], [slider, download, status], concurrency_limit=1, concurrency_id="models")
