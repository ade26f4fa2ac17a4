"""Browser demo (``i2i-demo``): a Gradio page with one tab per task.

    i2i-demo                                   # the shipped reduced ×4 SRResNet: the super-resolution tab
    i2i-demo --checkpoint runs/seg --checkpoint runs/acgan --port 7860
    i2i-demo --task sr --checkpoint runs/srgan # only the SR tab: the shipped model and the run

Tabs (each shown when a model for it is loaded; a dropdown picks between several):

* **Super-resolution** — upload an image, get it ×scale, shown on a before/after slider
  (:class:`gradio.ImageSlider`), with the full-resolution PNG to download.
* **Sketch → photo** — draw on a canvas (or upload a sketch: dark lines on white), get the
  pix2pix generator's photo. Models trained on sketches made from photos can also take a
  photo, sketched first as in training.
* **Segmentation** — upload a photo, get the class colours over it and a legend (class
  names and colours from the export's meta, with each present class's share of the pixels).
* **Digits** — pick a class (or every class) and a count, get a grid of generated digits.
* **CycleGAN** — upload an image of either domain, pick A → B or B → A, get the translation
  on a before/after slider.

Bad input never shows a stack trace: a file that is not an image, or one with more than
``--max-pixels`` pixels (default :data:`DEFAULT_MAX_PIXELS`, checked from the header before
any pixel is decoded), gets one line in the page (:class:`gradio.Error`) naming the file
and the reason. Uploads above :data:`MAX_FILE_SIZE` are refused by Gradio before they
reach the models.

Gradio is imported here only, when the demo is built (``import i2i`` does not need it).
The pure functions (:func:`read_upload`, :func:`super_resolve`, :func:`sketch_to_photo`,
:func:`segment`, :func:`digit_grid`, :func:`legend_html`, :func:`translate_unpaired`) hold the logic and are tested
without a browser; ``tests/e2e/test_demo_browser.py`` drives the page in Chromium.
"""
from __future__ import annotations

import argparse
import functools
import html
import math
import shutil
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.io import image_size, read_image, save_image
from ..errors import ConfigError, DataError, I2IError, one_line
from ..inference import LoadedModel, load_model, shipped_model

__all__ = ["DEFAULT_MAX_PIXELS", "MAX_FILE_SIZE", "TABS", "DemoModel", "load_demo_models", "read_upload",
           "super_resolve", "sketch_from_canvas", "sketch_to_photo", "segment", "legend_html", "digit_grid",
           "translate_unpaired", "build_demo", "serve", "main"]

DEFAULT_MAX_PIXELS = 1024 * 1024
"""Input pixels per upload: 1 MP. The SR tool's own limit (64 MP, :data:`i2i.data.io.DEFAULT_MAX_PIXELS`)
is for files on disk; a page must also show the ×4 result (1 MP in = 16 MP out, a 48 MB
RGB array) and answer within about a minute on a CPU: the shipped SRResNet took 57 s for a
1024² input on a shared 2-core CPU (:func:`i2i.pipelines.super_resolution.default_tile_batch`)
and 11.7 s for 512² (measured for this limit, same machine, busy)."""

MAX_FILE_SIZE = "25mb"
"""Gradio refuses larger uploads itself (a compressed 1 MP image is far below this)."""

TABS = {"sr": "Super-resolution", "sketch2photo": "Sketch → photo", "seg": "Segmentation", "digits": "Digits",
        "cyclegan": "CycleGAN"}
"""The tasks with a tab, in page order (task name as :mod:`i2i.inference` resolves it)."""

SHIPPED_MODEL = "srresnet_x4_small"
"""The page's shipped SR model: the reduced one (32 channels × 8 blocks), so that a CPU answers
within the minute above; the paper-size ``srresnet_x4`` (the tools' default) needs about 6× the
compute. ``--checkpoint i2i/weights/srresnet_x4`` adds it to the dropdown."""
SHIPPED_NAME = "shipped SRResNet ×4 (small)"
MAX_DIGITS = 64
RESULT_TTL_S = 600.0
"""Result files older than this are removed from the demo's folder (Gradio serves its own copies)."""


# ----------------------------------------------------------------------------- models
@dataclass
class DemoModel:
    """One loaded model of the page: its name in the tab's dropdown, the export, its pipeline."""

    name: str
    model: LoadedModel
    pipeline: Any


def load_demo_models(checkpoints: Sequence[str] = (), tasks: Sequence[str] = (), device: str | None = None,
                     shipped_sr: bool | None = None) -> dict[str, list[DemoModel]]:
    """The models of the page, by task (in :data:`TABS` order).

    ``checkpoints``: runs, exports, checkpoints, pretrained folders or Hub repo ids
    (:func:`i2i.hub.resolve_pretrained`). ``tasks``: only these tabs (aliases such as
    ``srgan`` are accepted); a task other than SR needs a checkpoint. ``shipped_sr``: add
    the shipped ×4 SRResNet (default: when the SR tab is shown, i.e. no ``tasks`` or ``sr``
    among them, and always with no checkpoint at all).
    """
    from ..hub import resolve_pretrained
    from ..inference import TASK_ALIASES
    from ..pipelines import pipeline_for

    wanted = []
    for t in tasks:
        if t not in TASK_ALIASES:
            raise ConfigError(f"unknown task {t!r}; expected one of {', '.join(sorted(TASK_ALIASES))}", "--task")
        wanted.append(TASK_ALIASES[t])
    for t in wanted:
        if t not in TABS:
            raise ConfigError(f"the demo has no tab for task {t!r} (tabs: {', '.join(TABS)})", "--task")
    if shipped_sr is None:
        shipped_sr = not wanted or "sr" in wanted
    out: dict[str, list[DemoModel]] = {t: [] for t in TABS}
    if shipped_sr:
        model = load_model(shipped_model(SHIPPED_MODEL), task="sr", device=device)
        out["sr"].append(DemoModel(SHIPPED_NAME, model, pipeline_for(model)))
    for ckpt in checkpoints:
        model = load_model(resolve_pretrained(ckpt), device=device)
        if model.task not in TABS:
            raise ConfigError(f"{ckpt}: the demo has no tab for task {model.task!r} (tabs: {', '.join(TABS)})",
                              "--checkpoint")
        if wanted and model.task not in wanted:
            raise ConfigError(f"{ckpt}: a {model.task!r} model, but --task asks for {', '.join(wanted)}", "--checkpoint")
        out[model.task].append(DemoModel(str(ckpt), model, pipeline_for(model)))
    for t in wanted:
        if not out[t]:
            raise ConfigError(f"task {t!r} has no shipped model: give its --checkpoint", "--task")
    return {t: ms for t, ms in out.items() if ms}


# ----------------------------------------------------------------------------- the logic (no Gradio)
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


def _shown(a: np.ndarray) -> np.ndarray:
    """(H, W, 1) -> (H, W): one-channel images as the page (Pillow) takes them."""
    return a[..., 0] if a.ndim == 3 and a.shape[2] == 1 else a


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


def digit_grid(pipe: Any, label: int | None, count: int, seed: int = 0, min_width: int = 448) -> np.ndarray:
    """A grid of ``count`` generated digits of class ``label`` (None: ``count`` of every class,
    one row per class; unconditional models take None only), as (H, W, 3) uint8.

    Small grids are enlarged by an integer factor (nearest neighbour: the pixels stay
    sharp) to at least ``min_width`` pixels, so the page does not blur them.
    """
    from ..pipelines.digits import image_grid

    if not 1 <= count <= MAX_DIGITS:
        raise ConfigError(f"expected 1..{MAX_DIGITS} images, got {count}", "count")
    imgs = pipe(label, num=count, seed=seed) if pipe.conditional else pipe(None, num=count, seed=seed)
    groups = pipe.num_classes if pipe.conditional and label is None else 1
    nrow = count if groups > 1 and count <= 16 else max(1, math.ceil(math.sqrt(len(imgs))))
    grid = image_grid(imgs, nrow)
    zoom = max(1, math.ceil(min_width / grid.shape[1]))
    return np.repeat(np.repeat(grid, zoom, axis=0), zoom, axis=1) if zoom > 1 else grid


def translate_unpaired(pipe: Any, path: str | Path, direction: str, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                       name: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(input, translation) of an uploaded image with a :class:`~i2i.pipelines.cyclegan.CycleGANPipeline`,
    ``direction`` ``"AtoB"`` or ``"BtoA"``; the input is converted to the source domain's channels
    by the pipeline, the result has the target domain's (one-channel results as (H, W))."""
    image = read_upload(path, max_pixels, mode="RGB", name=name)
    return image, _shown(pipe(image, direction=direction))


def _prune(folder: Path, ttl_s: float = RESULT_TTL_S) -> None:
    """Remove the result folders older than ``ttl_s`` (Gradio has copied them into its cache)."""
    now = time.time()
    for sub in folder.iterdir() if folder.is_dir() else ():
        try:
            if now - sub.stat().st_mtime > ttl_s:
                shutil.rmtree(sub, ignore_errors=True)
        except OSError:
            pass


# ----------------------------------------------------------------------------- the page
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


def _canvas_size(model: LoadedModel) -> int:
    """The sketch canvas side: the training crop (``data.crop_size``) within 256..512 (room to draw), else 256."""
    crop = (model.config.get("data") or {}).get("crop_size")
    return int(min(512, max(256, crop))) if isinstance(crop, int) else 256


def _from_photo_pipeline(model: LoadedModel) -> Any | None:
    """A ``from_photo`` pipeline for a model trained on sketches made from photos, else None."""
    from ..pipelines.pix2pix import Pix2PixPipeline

    try:
        return Pix2PixPipeline(model, from_photo=True)
    except ConfigError:
        return None


def build_demo(models: dict[str, list[DemoModel]], max_pixels: int | None = DEFAULT_MAX_PIXELS,
               out_dir: str | Path | None = None) -> Any:
    """The :class:`gradio.Blocks` page for ``models`` (:func:`load_demo_models`): one tab per task.

    ``out_dir``: where SR results are written for download (default: a temporary folder
    removed when the process exits).
    """
    try:
        import gradio as gr
    except ModuleNotFoundError:
        raise I2IError("the demo needs Gradio: pip install gradio") from None
    if not models:
        raise ConfigError("no model to show", "--checkpoint")
    if out_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="i2i-demo-")
        out_dir = tmp.name
    else:
        tmp = None
    out_dir = Path(out_dir)
    limit = f"at most {max_pixels:,} pixels" if max_pixels else "any size"
    with gr.Blocks(title="i2i demo", analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        gr.Markdown("# i2i demo\nConditional image-to-image GANs: pick a tab. "
                    f"Uploads: PNG, JPEG, WebP, BMP, TIFF or GIF, {limit}.")
        with gr.Tabs():
            if "sr" in models:
                _sr_tab(gr, models["sr"], max_pixels, out_dir)
            if "sketch2photo" in models:
                _sketch_tab(gr, models["sketch2photo"], max_pixels)
            if "seg" in models:
                _seg_tab(gr, models["seg"], max_pixels)
            if "digits" in models:
                _digits_tab(gr, models["digits"])
            if "cyclegan" in models:
                _cyclegan_tab(gr, models["cyclegan"], max_pixels)
    demo.i2i_tmp = tmp  # keeps the temporary folder alive as long as the page
    return demo


def _sr_tab(gr: Any, models: list[DemoModel], max_pixels: int | None, out_dir: Path) -> None:
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


def _sketch_tab(gr: Any, models: list[DemoModel], max_pixels: int | None) -> None:
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


def _seg_tab(gr: Any, models: list[DemoModel], max_pixels: int | None) -> None:
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


EVERY_CLASS = "every class"


def _digits_tab(gr: Any, models: list[DemoModel]) -> None:
    first = models[0].pipeline
    classes = [EVERY_CLASS] + [str(c) for c in range(first.num_classes)]
    with gr.Tab(TABS["digits"], id="digits"):
        gr.Markdown("Pick a class and how many: the generator draws them from seeded noise "
                    "(the same seed gives the same digits).")
        choice = _model_choice(gr, models)
        with gr.Row():
            with gr.Column():
                label = gr.Dropdown(classes, value="7" if first.num_classes > 7 else EVERY_CLASS, label="Class",
                                    visible=first.conditional)
                count = gr.Slider(1, MAX_DIGITS, value=16, step=1, label="How many (per class)")
                seed = gr.Number(0, label="Seed", precision=0)
                go = gr.Button("Generate", variant="primary")
            grid = gr.Image(label="Generated digits", format="png", interactive=False, elem_id="digits-output")

        @_in_page
        def run(cls: str | None, n: float, s: float | None, name: str | None) -> np.ndarray:
            pipe = _pick(models, name).pipeline
            c = None if (cls in (None, EVERY_CLASS) or not pipe.conditional) else int(cls)
            return digit_grid(pipe, c, int(n), int(s or 0))

        go.click(run, [label, count, seed, choice], grid, concurrency_limit=1, concurrency_id="models")


DIRECTIONS = {"A → B": "AtoB", "B → A": "BtoA"}


def _cyclegan_tab(gr: Any, models: list[DemoModel], max_pixels: int | None) -> None:
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


# ----------------------------------------------------------------------------- command
def serve(demo: Any, host: str = "127.0.0.1", port: int = 7860, block: bool = True) -> Any:
    """Serve the page: one model call at a time for the whole page (every event is in the
    concurrency group ``"models"`` with limit 1: the models share one device).

    Nothing is shared through Gradio's tunnel, and the page loads nothing from other hosts
    (checked by the browser test): it works offline. ``block=False`` returns at once
    (tests); close with ``demo.close()``.
    """
    return demo.queue(default_concurrency_limit=1).launch(
        server_name=host, server_port=port, share=False, max_file_size=MAX_FILE_SIZE, show_error=True,
        prevent_thread_lock=not block, quiet=not block)


def main(argv: list[str]) -> int:
    """``i2i-demo``: parse the flags, load the models, serve the page until interrupted."""
    p = argparse.ArgumentParser(prog="i2i-demo", description="Show i2i models in the browser (Gradio).")
    p.add_argument("--checkpoint", action="append", default=[], metavar="RUN",
                   help="a run, export, checkpoint, pretrained folder or Hub repo id (repeatable)")
    p.add_argument("--task", action="append", default=[],
                   help="show only this task's tab (repeatable); --task sr alone: the shipped ×4 model")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                   help=f"largest upload in pixels (default {DEFAULT_MAX_PIXELS} = 1024x1024); 0 = no limit")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: CUDA when present)")
    p.add_argument("--debug", action="store_true")
    args = p.parse_args(argv)
    if args.max_pixels < 0:
        raise ConfigError(f"must be >= 0, got {args.max_pixels}", "--max-pixels")
    if not 0 < args.port < 65536:
        raise ConfigError(f"expected a port in 1..65535, got {args.port}", "--port")
    models = load_demo_models(args.checkpoint, args.task, args.device)
    demo = build_demo(models, args.max_pixels or None)
    tabs = ", ".join(f"{TABS[t]} ({len(ms)} model{'s' * (len(ms) > 1)})" for t, ms in models.items())
    print(f"i2i demo: {tabs}", flush=True)
    serve(demo, args.host, args.port)
    return 0
