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
  names and colours from the model card, with each present class's share of the pixels).
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

Layout: the tabs come from the task table (:data:`i2i.task_table.TASKS`, ``demo_tab``); each is one
module ``tab_<task>`` with a ``build(gr, models, max_pixels, out_dir)``; :mod:`.shared` holds what they
share, :mod:`.models` loads the models, :mod:`.page` builds and serves the page.
"""
from __future__ import annotations

from .models import load_demo_models
from .page import build_demo, main, serve
from .shared import (
    DEFAULT_MAX_PIXELS,
    MAX_FILE_SIZE,
    RESULT_TTL_S,
    SHIPPED_MODEL,
    SHIPPED_NAME,
    TABS,
    DemoModel,
    _in_page,
    _prune,
    read_upload,
)
from .tab_cyclegan import DIRECTIONS, translate_unpaired
from .tab_digits import EVERY_CLASS, MAX_DIGITS, digit_grid
from .tab_seg import legend_html, segment
from .tab_sketch2photo import _canvas_size, _from_photo_pipeline, sketch_from_canvas, sketch_to_photo
from .tab_sr import super_resolve

__all__ = ["DEFAULT_MAX_PIXELS", "MAX_FILE_SIZE", "TABS", "DemoModel", "load_demo_models", "read_upload",
           "super_resolve", "sketch_from_canvas", "sketch_to_photo", "segment", "legend_html", "digit_grid",
           "translate_unpaired", "build_demo", "serve", "main", "SHIPPED_MODEL", "SHIPPED_NAME", "RESULT_TTL_S",
           "MAX_DIGITS", "EVERY_CLASS", "DIRECTIONS", "_in_page", "_prune", "_canvas_size", "_from_photo_pipeline"]
