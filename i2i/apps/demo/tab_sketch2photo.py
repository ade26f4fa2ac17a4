"""The sketch → photo tab: draw on a canvas (or upload a sketch: dark lines on white), get the
pix2pix generator's photo. Models trained on sketches made from photos can also take a photo,
sketched first as in training."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ConfigError, DataError
from ...inference import LoadedModel
from .shared import TABS, DemoModel, _in_page, _model_choice, _pick, _shown, _upload_name, read_upload


def sketch_from_canvas(value: Any) -> np.ndarray | None:
    """A Gradio image-editor value (``{"composite": (H, W, 3|4) uint8, ...}`` or an array)
    -> (H, W, 3) uint8 on white paper; None when nothing is drawn (blank or absent)."""
    img = value.get("composite") if isinstance(value, dict) else value
    if img is None:
        return None
    a = np.asarray(img)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise DataError(f"canvas: expected an (H, W, 3|4) image, got shape {a.shape}")
    if a.shape[2] == 4:  # transparent canvas = white paper
        alpha = a[..., 3:4].astype(np.float32) / 255.0
        a = np.rint(a[..., :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    a = np.ascontiguousarray(a[..., :3], dtype=np.uint8)
    return None if (a == 255).all() else a


def sketch_to_photo(pipe: Any, sketch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(what the generator was given, its photo) for a :class:`~i2i.pipelines.pix2pix.Pix2PixPipeline`
    (for a ``from_photo`` pipeline ``sketch`` is a photo, and the first result is its sketch)."""
    x = pipe.input_for(sketch)
    return _shown(x), _shown(pipe.translate(x))


def _canvas_size(model: LoadedModel) -> int:
    """The sketch canvas side: the training crop (the card's ``train_size``) within 256..512 (room to draw), else 256."""
    crop = model.card.train_size
    return int(min(512, max(256, crop))) if isinstance(crop, int) else 256


def _from_photo_pipeline(model: LoadedModel) -> Any | None:
    """A ``from_photo`` pipeline for a model trained on sketches made from photos, else None."""
    from ...pipelines.pix2pix import Pix2PixPipeline

    try:
        return Pix2PixPipeline(model, from_photo=True)
    except ConfigError:
        return None



def build(gr: Any, models: list[DemoModel], max_pixels: int | None, out_dir: Path) -> None:
    photo_pipes = {m.name: _from_photo_pipeline(m.model) for m in models}
    side = _canvas_size(models[0].model)
    with gr.Tab(TABS["sketch2photo"], id="sketch2photo"):
        gr.Markdown("Draw dark lines on the white canvas (or upload a sketch), then **Translate**: "
                    "the pix2pix generator paints the photo." +
                    (" A model trained on sketches made from photos also takes a photo: tick *the upload is "
                     "a photo* and it is sketched first, as in training." if any(photo_pipes.values()) else ""))
        choice = _model_choice(gr, models)
        with gr.Row():
            with gr.Column():
                canvas = gr.Sketchpad(label="Sketch", type="numpy", image_mode="RGB", canvas_size=(side, side),
                                      value={"background": np.full((side, side, 3), 255, np.uint8), "layers": [],
                                             "composite": None},
                                      brush=gr.Brush(colors=["#000000"], default_color="#000000", default_size=2,
                                                     color_mode="fixed"), elem_id="sketch-canvas")
                upload = gr.File(label="… or upload a sketch", file_types=["image"], type="filepath",
                                 elem_id="sketch-input")
                is_photo = gr.Checkbox(label="the upload is a photo (sketch it first)", value=False,
                                       visible=any(photo_pipes.values()))
                go = gr.Button("Translate", variant="primary")
            with gr.Column():
                seen = gr.Image(label="What the generator was given", format="png", interactive=False)
                photo = gr.Image(label="Photo", format="png", interactive=False, elem_id="sketch-output")

        @_in_page
        def run(drawn: Any, path: str | None, photo_mode: bool, name: str | None) -> tuple[np.ndarray, np.ndarray]:
            m = _pick(models, name)
            pipe = m.pipeline
            if path:
                image = read_upload(path, max_pixels, mode="RGB", name=_upload_name(path))
                if photo_mode:
                    pipe = photo_pipes.get(m.name)
                    if pipe is None:
                        raise ConfigError(f"{m.name} was not trained on sketches made from photos: "
                                          "upload a sketch, or untick the box", "photo")
            else:
                image = sketch_from_canvas(drawn)
                if image is None:
                    raise DataError("the canvas is empty: draw a sketch, or upload one")
            return sketch_to_photo(pipe, image)

        go.click(run, [canvas, upload, is_photo, choice], [seen, photo], concurrency_limit=1, concurrency_id="models")
