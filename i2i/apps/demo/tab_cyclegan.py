"""The CycleGAN tab: upload an image of either domain, pick A → B or B → A, get the translation
on a before/after slider."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .shared import DEFAULT_MAX_PIXELS, TABS, DemoModel, _in_page, _model_choice, _pick, _shown, _upload_name, read_upload


def translate_unpaired(pipe: Any, path: str | Path, direction: str, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                       name: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(input, translation) of an uploaded image with a :class:`~i2i.pipelines.cyclegan.CycleGANPipeline`,
    ``direction`` ``"AtoB"`` or ``"BtoA"``; the input is converted to the source domain's channels
    by the pipeline, the result has the target domain's (one-channel results as (H, W))."""
    image = read_upload(path, max_pixels, mode="RGB", name=name)
    return image, _shown(pipe(image, direction=direction))


DIRECTIONS = {"A → B": "AtoB", "B → A": "BtoA"}


def build(gr: Any, models: list[DemoModel], max_pixels: int | None, out_dir: Path) -> None:
    with gr.Tab(TABS["cyclegan"], id="cyclegan"):
        gr.Markdown("Upload an image of either domain and pick the direction: generator G maps A → B, F maps "
                    "B → A (domains as the run's data defined them). The networks ran at the training crop "
                    "size: much larger images are translated at a smaller relative scale.")
        choice = _model_choice(gr, models)
        with gr.Row():
            with gr.Column(scale=1):
                upload = gr.File(label="Image to translate", file_types=["image"], type="filepath",
                                 elem_id="cyclegan-input")
                direction = gr.Radio(list(DIRECTIONS), value="A → B", label="Direction")
            with gr.Column(scale=2):
                slider = gr.ImageSlider(label="Before / after", format="png", type="numpy", elem_id="cyclegan-slider",
                                        buttons=["download", "fullscreen"])

        @_in_page
        def run(path: str | None, way: str, name: str | None) -> Any:
            if not path:
                return None
            return translate_unpaired(_pick(models, name).pipeline, path, DIRECTIONS.get(way, "AtoB"), max_pixels,
                                      name=_upload_name(path))

        for event in (upload.change, direction.change, choice.change):
            event(run, [upload, direction, choice], slider, concurrency_limit=1, concurrency_id="models")
