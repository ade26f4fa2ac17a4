"""The segmentation tab: upload a photo, get the class colours over it and a legend (class
names and colours from the model card, with each present class's share of the pixels)."""
from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .shared import DEFAULT_MAX_PIXELS, TABS, DemoModel, _in_page, _model_choice, _pick, _upload_name, read_upload


def segment(pipe: Any, path: str | Path, max_pixels: int | None = DEFAULT_MAX_PIXELS,
            name: str | None = None) -> tuple[np.ndarray, str]:
    """(overlay, legend HTML) of an uploaded photo, with a
    :class:`~i2i.pipelines.segmentation.SegmentationPipeline`."""
    image = read_upload(path, max_pixels, mode="RGB", name=name)
    ids = pipe(image)
    return pipe.overlay(image, ids), legend_html(pipe.names, pipe.palette, ids)


def legend_html(names: Sequence[str], palette: np.ndarray, ids: np.ndarray | None = None) -> str:
    """An HTML legend: a colour swatch and the name of each class; with ``ids`` (the
    prediction), the classes present first, each with its share of the pixels, then the rest."""
    counts = np.bincount(ids[(ids >= 0) & (ids < len(names))].ravel(), minlength=len(names)) if ids is not None else None
    order = list(range(len(names)))
    if counts is not None:
        order.sort(key=lambda c: (-int(counts[c]), c))

    def row(c: int) -> str:
        r, g, b = (int(v) for v in palette[c])
        share = "" if counts is None or not counts[c] else f" <small>{100.0 * counts[c] / counts.sum():.1f} %</small>"
        return (f'<li data-class="{c}"><span style="display:inline-block;width:1em;height:1em;vertical-align:middle;'
                f'border:1px solid #888;background:rgb({r},{g},{b})"></span> {html.escape(str(names[c]))}{share}</li>')

    present = [c for c in order if counts is None or counts[c]]
    absent = [c for c in order if counts is not None and not counts[c]]
    out = '<ul class="i2i-legend" style="list-style:none;padding-left:0">' + "".join(map(row, present)) + "</ul>"
    if absent:
        out += (f"<details><summary>{len(absent)} classes not in this image</summary>"
                '<ul style="list-style:none;padding-left:0">' + "".join(map(row, absent)) + "</ul></details>")
    return out



def build(gr: Any, models: list[DemoModel], max_pixels: int | None, out_dir: Path) -> None:
    with gr.Tab(TABS["seg"], id="seg"):
        gr.Markdown("Upload a photo: each pixel gets the colour of its predicted class, over the photo.")
        choice = _model_choice(gr, models)
        with gr.Row():
            with gr.Column(scale=1):
                upload = gr.File(label="Photo to segment", file_types=["image"], type="filepath", elem_id="seg-input")
                legend = gr.HTML(elem_id="seg-legend")
            with gr.Column(scale=2):
                view = gr.Image(label="Classes over the photo", format="png", interactive=False, elem_id="seg-output")

        @_in_page
        def run(path: str | None, name: str | None) -> tuple[Any, str]:
            if not path:
                return None, ""
            return segment(_pick(models, name).pipeline, path, max_pixels, name=_upload_name(path))

        upload.change(run, [upload, choice], [view, legend], concurrency_limit=1, concurrency_id="models")
        choice.change(run, [upload, choice], [view, legend], concurrency_limit=1, concurrency_id="models")
