"""The demo's page: one tab per task with a model, in the task table's order, and the command."""
from __future__ import annotations

import argparse
import importlib
import tempfile
from pathlib import Path
from typing import Any

from ...errors import ConfigError, I2IError
from .models import load_demo_models
from .shared import DEFAULT_MAX_PIXELS, MAX_FILE_SIZE, SHIPPED_MODEL, TABS, DemoModel


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
            for task in TABS:  # the task table's order; each tab is the module tab_<task> of this package
                if task in models:
                    importlib.import_module(f"{__package__}.tab_{task}").build(gr, models[task], max_pixels, out_dir)
    demo.i2i_tmp = tmp  # keeps the temporary folder alive as long as the page
    return demo


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
    p = argparse.ArgumentParser(
        prog="i2i-demo", description="Show i2i models in the browser (Gradio). The SR tab's shipped model is "
        f"{SHIPPED_MODEL}, which answers within a minute on a CPU; the tools' default, srresnet_x4 (the paper's size, "
        "about 6x the compute), is one --checkpoint srresnet_x4 away.")
    p.add_argument("--checkpoint", action="append", default=[], metavar="RUN",
                   help="a run, export, checkpoint, pretrained folder, weights file, shipped model's name or Hub repo id (repeatable)")
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
