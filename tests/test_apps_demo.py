"""i2i.apps.demo without a browser: the per-tab logic on tiny models, the page's structure,
the one-line errors, and the command line. The page in Chromium: tests/e2e/test_demo_browser.py."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from i2i.apps import demo as D
from i2i.data.io import read_image, save_image
from i2i.errors import ConfigError, DataError, I2IError
from i2i.inference import LoadedModel
from i2i.nn.dcgan import DCGANGenerator
from i2i.nn.resnet_generator import ResnetGenerator
from i2i.nn.unet import UNet
from i2i.pipelines.cyclegan import CycleGANPipeline
from i2i.pipelines.digits import DigitsPipeline, image_grid
from i2i.pipelines.pix2pix import Pix2PixPipeline
from i2i.pipelines.segmentation import SegmentationPipeline

NAMES = ["red", "green", "<blue>"]  # '<' must come out escaped in the legend
PALETTE = [[200, 0, 0], [0, 200, 0], [0, 0, 200]]
LOSSES = {"adversarial": {"type": "adversarial", "objective": "non_saturating", "weight": 1.0}}
SKETCH_DATA = {"type": "photo_sketch", "sketch": "canny", "sketch_params": {"sigma": 1.5}, "sketch_channels": 1,
               "crop_size": 64}


def seg_model() -> LoadedModel:
    """A 1×1 identity convolution: a pixel's class is the index of its largest RGB channel."""
    G = torch.nn.Conv2d(3, 3, 1)
    with torch.no_grad():
        G.weight.copy_(torch.eye(3)[..., None, None])
        G.bias.zero_()
    return LoadedModel(nets={"generator": G}, task="seg", recipe={"type": "seg_adversarial", "num_classes": 3},
                       meta={"class_names": NAMES, "palette": PALETTE, "ignore_index": 255}, config={}, path=Path("."))


def sketch_model(data: dict | None = None) -> LoadedModel:
    torch.manual_seed(0)
    G = UNet(in_channels=1, out_channels=3, num_downs=3, base_channels=4, max_channels=8).eval()
    return LoadedModel(nets={"generator": G}, task="sketch2photo", recipe={"type": "pix2pix"},
                       meta={"in_channels": 1, "multiple": 8}, config={"data": data or SKETCH_DATA}, path=Path("."))


def digits_model(conditional: bool = True) -> LoadedModel:
    torch.manual_seed(0)
    G = DCGANGenerator(z_dim=8, base_channels=4, num_classes=10 if conditional else 0).eval()
    return LoadedModel(nets={"generator": G}, task="digits", recipe={"type": "cgan" if conditional else "gan",
                                                                      "num_classes": 10},
                       meta={}, config={"losses": LOSSES}, path=Path("."))


def cyclegan_model() -> LoadedModel:
    """A: gray, B: RGB; G maps 1 -> 3 channels, F maps 3 -> 1 (both need H, W % 4 == 0: padded)."""
    torch.manual_seed(0)
    G = ResnetGenerator(in_channels=1, out_channels=3, base_channels=4, n_blocks=1).eval()
    Fn = ResnetGenerator(in_channels=3, out_channels=1, base_channels=4, n_blocks=1).eval()
    meta = {"value_range": [-1, 1], "multiple": 4, "a_channels": 1, "b_channels": 3,
            "directions": {"AtoB": "generator_ab", "BtoA": "generator_ba"}}
    losses = {"adversarial": {"type": "adversarial", "objective": "lsgan"}, "cycle": {"type": "l1", "weight": 10.0}}
    return LoadedModel(nets={"generator_ab": G, "generator_ba": Fn}, task="cyclegan", recipe={"type": "cyclegan"},
                       meta=meta, config={"losses": losses}, path=Path("."))


class Doubler:
    """A stand-in SR pipeline: nearest-neighbour ×2 (what the demo does around it is under test)."""

    scale = 2

    def __call__(self, a: np.ndarray) -> np.ndarray:
        return np.repeat(np.repeat(a, 2, axis=0), 2, axis=1)


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# ----------------------------------------------------------------------------- uploads
def test_read_upload_names_the_users_file_not_the_temporary_path(tmp_path: Path) -> None:
    tmpdir = tmp_path / "gradio" / "0123abcd"
    bad = tmpdir / "notes.png"
    bad.parent.mkdir(parents=True)
    bad.write_text("not an image\n")
    with pytest.raises(DataError) as e:
        D.read_upload(bad)
    assert str(e.value) == "notes.png: not a readable image (cannot identify image file)"
    with pytest.raises(DataError, match=r"^holiday\.png: not a readable image"):
        D.read_upload(bad, name="holiday.png")
    empty = tmpdir / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match=r"^empty\.jpg: not a readable image \(empty file, 0 bytes\)$"):
        D.read_upload(empty)


def test_read_upload_refuses_more_pixels_than_the_limit_from_the_header(tmp_path: Path) -> None:
    f = save_image(tmp_path / "wide.png", _photo(30, 40))
    assert D.read_upload(f, max_pixels=1200).shape == (30, 40, 3)  # exactly at the limit: fine
    with pytest.raises(DataError) as e:
        D.read_upload(f, max_pixels=1199)
    assert str(e.value) == ("wide.png: image too large (40x30 = 1,200 pixels; this demo takes at most 1,199, "
                            "e.g. 34x34)")
    assert D.read_upload(f, max_pixels=None).shape == (30, 40, 3)
    # the default: 1024 × 1024
    assert D.DEFAULT_MAX_PIXELS == 1_048_576


# ----------------------------------------------------------------------------- super-resolution
def test_super_resolve_returns_input_result_and_the_png_to_download(tmp_path: Path) -> None:
    photo = _photo(5, 7)
    src = save_image(tmp_path / "in" / "cat.png", photo)
    lr, sr, png = D.super_resolve(Doubler(), src, out_dir=tmp_path / "out", name="cat.png")
    np.testing.assert_array_equal(lr, photo)
    np.testing.assert_array_equal(sr, np.repeat(np.repeat(photo, 2, 0), 2, 1))
    assert png.name == "cat_x2.png" and png.parent.parent == tmp_path / "out"
    np.testing.assert_array_equal(read_image(png), sr)
    # a second upload of the same name gets its own folder: concurrent users never share a file
    _, _, png2 = D.super_resolve(Doubler(), src, out_dir=tmp_path / "out", name="cat.png")
    assert png2 != png and png.is_file()


def test_super_resolve_keeps_gray_layout_with_the_shipped_model(tmp_path: Path) -> None:
    """The real shipped model: gray in, gray out (the pipeline's layouts pass through), ×4."""
    from i2i.inference import load_model
    from i2i.pipelines.super_resolution import SuperResolutionPipeline

    gray = np.tile(np.linspace(0, 255, 12, dtype=np.uint8), (9, 1))
    src = save_image(tmp_path / "g.png", gray)
    lr, sr, png = D.super_resolve(SuperResolutionPipeline(load_model(None, task="sr", device="cpu")), src)
    assert lr.shape == (9, 12) and sr.shape == (36, 48) and sr.dtype == np.uint8 and png is None


def test_prune_removes_only_old_result_folders(tmp_path: Path) -> None:
    import os
    import time

    old, new = tmp_path / "old", tmp_path / "new"
    for d in (old, new):
        d.mkdir()
        (d / "x.png").write_bytes(b"x")
    t = time.time() - D.RESULT_TTL_S - 5
    os.utime(old, (t, t))
    D._prune(tmp_path)
    assert not old.exists() and new.is_dir()


# ----------------------------------------------------------------------------- sketch -> photo
def test_canvas_value_becomes_an_rgb_sketch_on_white() -> None:
    rgba = np.zeros((4, 4, 4), np.uint8)  # fully transparent: white paper
    rgba[1, 2] = (0, 0, 0, 255)           # one opaque black pixel
    rgba[2, 1] = (0, 0, 0, 128)           # a half-transparent one: 255·(1 - 128/255) = 127
    out = D.sketch_from_canvas({"background": None, "layers": [], "composite": rgba})
    expected = np.full((4, 4, 3), 255, np.uint8)
    expected[1, 2] = 0
    expected[2, 1] = 127
    np.testing.assert_array_equal(out, expected)
    assert D.sketch_from_canvas({"composite": np.full((4, 4, 3), 255, np.uint8)}) is None  # blank
    assert D.sketch_from_canvas(None) is None and D.sketch_from_canvas({"composite": None}) is None
    np.testing.assert_array_equal(D.sketch_from_canvas(np.zeros((2, 3), np.uint8)), np.zeros((2, 3, 3), np.uint8))
    with pytest.raises(DataError, match=r"canvas: expected an \(H, W, 3\|4\) image, got shape \(2, 3, 2\)"):
        D.sketch_from_canvas(np.zeros((2, 3, 2), np.uint8))


def test_sketch_to_photo_is_the_pipeline_and_from_photo_sketches_first() -> None:
    model = sketch_model()
    sketch = np.full((20, 28, 3), 255, np.uint8)
    sketch[5, :] = 0
    seen, photo = D.sketch_to_photo(Pix2PixPipeline(model), sketch)
    np.testing.assert_array_equal(seen, sketch)
    np.testing.assert_array_equal(photo, Pix2PixPipeline(model)(sketch))
    assert photo.shape == (20, 28, 3)
    photo_pipe = D._from_photo_pipeline(model)
    img = _photo(16, 24)
    seen, out = D.sketch_to_photo(photo_pipe, img)
    np.testing.assert_array_equal(seen, Pix2PixPipeline(model, from_photo=True).input_for(img)[..., 0])  # (H, W)
    np.testing.assert_array_equal(out, Pix2PixPipeline(model, from_photo=True)(img))
    # a model trained on given pairs has no photo mode
    assert D._from_photo_pipeline(sketch_model({"type": "paired_folder"})) is None
    assert D._canvas_size(model) == 256 and D._canvas_size(sketch_model({"type": "x", "crop_size": 384})) == 384
    assert D._canvas_size(sketch_model({"type": "x"})) == 256
    assert D._canvas_size(sketch_model({"type": "x", "crop_size": 4096})) == 512


# ----------------------------------------------------------------------------- segmentation
def test_segment_gives_the_overlay_and_a_legend_of_the_present_classes(tmp_path: Path) -> None:
    img = np.zeros((2, 4, 3), np.uint8)
    img[:, :3, 0] = 255  # 6 red pixels
    img[:, 3, 2] = 255   # 2 blue pixels; no green
    f = save_image(tmp_path / "p.png", img)
    pipe = SegmentationPipeline(seg_model())
    view, legend = D.segment(pipe, f)
    np.testing.assert_array_equal(view, pipe.overlay(img, np.array([[0, 0, 0, 2]] * 2)))
    present, _, absent = legend.partition("<details>")
    assert present.index('data-class="0"') < present.index('data-class="2"')  # most pixels first
    assert "75.0 %" in present and "25.0 %" in present and 'data-class="1"' not in present
    assert "&lt;blue&gt;" in present and "<blue>" not in legend
    assert "1 classes not in this image" in absent and 'data-class="1"' in absent
    assert "background:rgb(0,0,200)" in present
    # no prediction: every class, in table order, no shares
    plain = D.legend_html(NAMES, np.asarray(PALETTE))
    assert [plain.index(f'data-class="{c}"') for c in range(3)] == sorted(plain.index(f'data-class="{c}"') for c in range(3))
    assert "%" not in plain and "<details>" not in plain


# ----------------------------------------------------------------------------- digits
def test_digit_grid_is_the_pipelines_grid_enlarged_without_blur() -> None:
    pipe = DigitsPipeline(digits_model())
    grid = D.digit_grid(pipe, 7, 4, seed=3, min_width=100)
    ref = image_grid(pipe(7, num=4, seed=3), nrow=2)  # 4 images: a 2×2 grid of 28 px + 2 px gaps = 62 px
    assert ref.shape == (62, 62, 3) and grid.shape == (124, 124, 3)
    np.testing.assert_array_equal(grid[::2, ::2], ref)
    np.testing.assert_array_equal(grid[1::2, 1::2], ref)
    every = D.digit_grid(pipe, None, 3, min_width=1)  # every class: one row of 3 per class
    assert every.shape == (10 * 30 + 2, 3 * 30 + 2, 3)
    uncond = D.digit_grid(DigitsPipeline(digits_model(conditional=False)), 5, 9, min_width=1)  # the label is ignored
    assert uncond.shape == (3 * 30 + 2, 3 * 30 + 2, 3)
    with pytest.raises(ConfigError, match=r"count: expected 1\.\.64 images, got 0"):
        D.digit_grid(pipe, 1, 0)


# ----------------------------------------------------------------------------- CycleGAN
def test_translate_unpaired_runs_the_chosen_direction(tmp_path: Path) -> None:
    pipe = CycleGANPipeline(cyclegan_model())
    img = _photo(10, 13)
    f = save_image(tmp_path / "x.png", img)
    shown, ab = D.translate_unpaired(pipe, f, "AtoB")
    np.testing.assert_array_equal(shown, img)
    np.testing.assert_array_equal(ab, pipe(img, direction="AtoB"))
    assert ab.shape == (10, 13, 3)
    _, ba = D.translate_unpaired(pipe, f, "BtoA")  # to the gray domain: (H, W), as the page shows it
    assert ba.shape == (10, 13)
    np.testing.assert_array_equal(ba, pipe(img, direction="BtoA")[..., 0])
    with pytest.raises(ConfigError, match="direction: expected AtoB or BtoA, got 'up'"):
        D.translate_unpaired(pipe, f, "up")


# ----------------------------------------------------------------------------- models and the page
def test_load_demo_models_tasks_and_errors(tmp_path: Path) -> None:
    shipped = D.load_demo_models(device="cpu")
    assert list(shipped) == ["sr"] and shipped["sr"][0].name == D.SHIPPED_NAME
    assert shipped["sr"][0].pipeline.scale == 4
    with pytest.raises(ConfigError, match=r"--task: unknown task 'nope'"):
        D.load_demo_models(tasks=["nope"], device="cpu")
    with pytest.raises(ConfigError, match=r"--task: task 'seg' has no shipped model: give its --checkpoint"):
        D.load_demo_models(tasks=["segmentation"], device="cpu")
    with pytest.raises(ConfigError, match=r"--task: task 'cyclegan' has no shipped model: give its --checkpoint"):
        D.load_demo_models(tasks=["cyclegan"], device="cpu")
    with pytest.raises(I2IError, match="no such folder"):
        D.load_demo_models([str(tmp_path / "missing" / "run" / "x")], device="cpu")


def test_load_demo_models_from_a_real_run(tiny_acgan_run: Path) -> None:
    """A trained run (the shared 30-step ACGAN): its tab, beside or instead of the shipped SR model."""
    both = D.load_demo_models([str(tiny_acgan_run)], device="cpu")
    assert list(both) == ["sr", "digits"] and both["digits"][0].name == str(tiny_acgan_run)
    pipe = both["digits"][0].pipeline
    assert isinstance(pipe, DigitsPipeline) and pipe.conditional and pipe.num_classes == 10
    np.testing.assert_array_equal(D.digit_grid(pipe, 4, 3, seed=1, min_width=1), image_grid(pipe(4, num=3, seed=1), 2))
    assert list(D.load_demo_models([str(tiny_acgan_run)], tasks=["acgan"], device="cpu")) == ["digits"]
    with pytest.raises(ConfigError, match=r"a 'digits' model, but --task asks for sr"):
        D.load_demo_models([str(tiny_acgan_run)], tasks=["sr"], device="cpu")


@pytest.fixture
def gr():
    return pytest.importorskip("gradio")


def _all_models() -> dict[str, list[D.DemoModel]]:
    from i2i.pipelines import pipeline_for

    def dm(name: str, m: LoadedModel) -> D.DemoModel:
        return D.DemoModel(name, m, pipeline_for(m))

    sr = D.load_demo_models(device="cpu")["sr"]
    return {"sr": sr, "sketch2photo": [dm("tiny-unet", sketch_model())], "seg": [dm("tiny-seg", seg_model())],
            "digits": [dm("tiny-cgan", digits_model()), dm("tiny-gan", digits_model(False))],
            "cyclegan": [dm("tiny-cyclegan", cyclegan_model())]}


def _tabs(gr, demo: object) -> list[str]:
    return [b.label for b in demo.blocks.values() if isinstance(b, gr.Tab)]


def test_the_page_has_a_tab_per_loaded_task_and_a_model_choice_where_there_are_several(gr) -> None:
    demo = D.build_demo(_all_models())
    assert _tabs(gr, demo) == ["Super-resolution", "Sketch → photo", "Segmentation", "Digits", "CycleGAN"]
    drops = {tuple(b.choices[i][0] for i in range(len(b.choices))): b.visible
             for b in demo.blocks.values() if isinstance(b, gr.Dropdown) and b.label == "Model"}
    assert drops == {(D.SHIPPED_NAME,): False, ("tiny-unet",): False, ("tiny-seg",): False,
                     ("tiny-cgan", "tiny-gan"): True, ("tiny-cyclegan",): False}
    assert any(isinstance(b, gr.ImageSlider) for b in demo.blocks.values())
    assert any(isinstance(b, gr.Sketchpad) for b in demo.blocks.values())
    only_sr = D.build_demo({"sr": _all_models()["sr"]})
    assert _tabs(gr, only_sr) == ["Super-resolution"]
    with pytest.raises(ConfigError, match="no model to show"):
        D.build_demo({})


def test_errors_reach_the_page_as_one_line(gr) -> None:
    @D._in_page
    def user_error() -> None:
        raise DataError("x.png: not a readable image (cannot identify image file)")

    @D._in_page
    def bug() -> None:
        raise RuntimeError("CUDA out of memory.\nTried to allocate 2 GiB")

    with pytest.raises(gr.Error) as e:
        user_error()
    assert e.value.message == "x.png: not a readable image (cannot identify image file)"
    with pytest.raises(gr.Error) as e:
        bug()
    assert e.value.message == "RuntimeError: CUDA out of memory. (details in the server's log)"
    assert D._in_page(lambda a: a + 1)(1) == 2


def test_the_tabs_handlers_through_gradio(gr, tmp_path: Path) -> None:
    """The functions the page calls (Gradio's own wiring: fn of each dependency), with files
    as Gradio hands them over, errors included."""
    demo = D.build_demo(_all_models(), max_pixels=4096, out_dir=tmp_path / "results")
    fns = {}
    for dep in demo.fns.values():
        fns.setdefault(dep.fn.__module__.rpartition(".")[2], dep.fn)  # one module per tab: tab_<task>
    photo = save_image(tmp_path / "up" / "photo.png", _photo(12, 16))
    (slider, png, status) = fns["tab_sr"](str(photo), D.SHIPPED_NAME)
    assert slider[0].shape == (12, 16, 3) and slider[1].shape == (48, 64, 3)
    assert Path(png).name == "photo_x4.png" and "16×12 → **64×48**" in status
    assert fns["tab_sr"](None, D.SHIPPED_NAME) == (None, None, "")
    big = save_image(tmp_path / "up" / "big.png", _photo(65, 64))
    with pytest.raises(gr.Error) as e:
        fns["tab_sr"](str(big), D.SHIPPED_NAME)
    assert e.value.message == "big.png: image too large (64x65 = 4,160 pixels; this demo takes at most 4,096, e.g. 64x64)"
    view, legend = fns["tab_seg"](str(photo), "tiny-seg")
    assert view.shape == (12, 16, 3) and "i2i-legend" in legend
    blank = {"background": None, "layers": [], "composite": np.full((8, 8, 4), 0, np.uint8)}
    with pytest.raises(gr.Error) as e:
        fns["tab_sketch2photo"](blank, None, False, "tiny-unet")
    assert e.value.message == "the canvas is empty: draw a sketch, or upload one"
    seen, out = fns["tab_sketch2photo"](blank, str(photo), True, "tiny-unet")
    assert seen.shape == (12, 16) and out.shape == (12, 16, 3)  # the one-channel sketch as (H, W)
    shown = gr.Image(format="png")
    for a in (seen, out):  # what the page's components accept
        assert shown.postprocess(a) is not None
    before, after = fns["tab_cyclegan"](str(photo), "B → A", "tiny-cyclegan")
    assert before.shape == (12, 16, 3) and after.shape == (12, 16)
    assert gr.ImageSlider(format="png").postprocess((before, after)) is not None
    assert fns["tab_cyclegan"](str(photo), "A → B", "tiny-cyclegan")[1].shape == (12, 16, 3)
    assert fns["tab_cyclegan"](None, "A → B", "tiny-cyclegan") is None
    grid = fns["tab_digits"]("3", 2, 0, "tiny-cgan")
    np.testing.assert_array_equal(grid, D.digit_grid(DigitsPipeline(digits_model()), 3, 2, 0))
    assert fns["tab_digits"]("3", 2, 0, "tiny-gan").shape == grid.shape  # unconditional: the class is ignored


def test_demo_command_help_and_bad_flags(capsys: pytest.CaptureFixture[str]) -> None:
    from i2i.cli import run
    from i2i.commands import demo_main

    with pytest.raises(SystemExit) as e:
        demo_main(["--help"])
    assert e.value.code == 0 and "--checkpoint RUN" in capsys.readouterr().out
    assert run(demo_main, ["--max-pixels", "-1"]) == 2
    assert capsys.readouterr().err.strip() == "error: --max-pixels: must be >= 0, got -1"
    assert run(demo_main, ["--port", "70000"]) == 2
    assert capsys.readouterr().err.strip() == "error: --port: expected a port in 1..65535, got 70000"


def test_installed_command_is_declared() -> None:
    import tomllib

    scripts = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["i2i-demo"] == "i2i.commands:demo"
    import i2i.commands

    assert callable(i2i.commands.demo)


def test_package_imports_without_gradio() -> None:
    """Gradio is imported by the demo only, when it is built."""
    import subprocess

    code = ("import sys; sys.modules['gradio'] = None\n"  # None in sys.modules: `import gradio` raises
            "import i2i, i2i.apps.demo, i2i.commands\n"
            "from i2i.apps.demo import build_demo\n"
            "try:\n    build_demo({'sr': [object()]})\nexcept Exception as e:\n    print(type(e).__name__, e)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False,
                       cwd=Path(__file__).resolve().parent.parent)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "I2IError the demo needs Gradio: pip install gradio"
