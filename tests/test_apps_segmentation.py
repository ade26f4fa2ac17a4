"""The ``seg`` front-end: tools/infer.py (palette masks, overlays, bad files) and tools/eval.py
(--json metrics, one process vs. two) on a tiny run."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import eval_one_and_two_processes
import torch
from PIL import Image

from i2i.apps import segmentation as seg_app
from i2i.cli import run
from i2i.data.io import read_mask, save_image
from i2i.pipelines.segmentation import predict

ROOT = Path(__file__).resolve().parents[1]
NUM_VAL = 7  # odd: two processes with batches of 2 per process pad the last batch


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(f"_i2i_tool_{name}", ROOT / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-step cross-entropy segmentor on a tiny mosaic (run dir with export/)."""
    from i2i.config import load_config
    from i2i.engine.trainer import Trainer

    out = tmp_path_factory.mktemp("seg_run") / "run"
    cfg = load_config(ROOT / "tasks" / "segmentation_baseline.yaml", [
        "models.generator.width=4", "models.generator.depth=2", "data.size=24", f"data.num_images={NUM_VAL}",
        "data.batch_size=4", "train.max_steps=3", "train.ckpt_every=0", "eval.every=0", "eval.at_end=false",
        "eval.batch_size=2", "logging.tracker=none", "logging.sample_every=0", "logging.progress=false"])
    Trainer(cfg, output_dir=out).fit()
    return out


def _photo(path: Path, h: int, w: int, seed: int = 0) -> Path:
    save_image(path, np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))
    return path


def test_infer_writes_palette_masks_any_size(tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from i2i.inference import load_model

    meta = load_model(tiny_run).meta
    a = _photo(tmp_path / "in" / "a.png", 23, 37)
    _photo(tmp_path / "folder" / "b.jpg", 40, 17, seed=1)
    rc = run(_tool("infer"), ["--task", "seg", "--checkpoint", str(tiny_run), str(a), str(tmp_path / "folder"),
                              "-o", str(tmp_path / "out")])
    assert rc == 0, capsys.readouterr().err
    for name, (h, w) in {"a.png": (23, 37), "b.png": (40, 17)}.items():
        img = Image.open(tmp_path / "out" / name)
        assert img.mode == "P" and img.size == (w, h)
        # the palette is the model's: class k shows in its colour
        assert np.asarray(img.getpalette()[:3 * meta["num_classes"]]).reshape(-1, 3).tolist() == meta["palette"]
        ids = read_mask(tmp_path / "out" / name)
        assert ids.shape == (h, w) and ids.min() >= 0 and ids.max() < meta["num_classes"]
    # single input + file name: written exactly there, ids equal the app's own prediction
    rc = run(_tool("infer"), ["--task", "seg", "--checkpoint", str(tiny_run / "export"), str(a),
                              "-o", str(tmp_path / "one.png")])
    assert rc == 0
    model = load_model(tiny_run)
    want = predict(model.generator, np.asarray(Image.open(a).convert("RGB")))
    np.testing.assert_array_equal(read_mask(tmp_path / "one.png"), want)


def test_overlay_blends_image_and_colours(tiny_run: Path, tmp_path: Path) -> None:
    a = _photo(tmp_path / "a.png", 19, 26)
    out = tmp_path / "m.png"
    assert run(_tool("infer"), ["--task", "seg", "--checkpoint", str(tiny_run), str(a), "-o", str(out),
                                "--overlay", "--alpha", "1"]) == 0
    ids = read_mask(out)
    view = np.asarray(Image.open(tmp_path / "m_overlay.png"))
    assert view.shape == (19, 26, 3) and view.dtype == np.uint8
    pal = np.asarray(Image.open(out).getpalette()).reshape(-1, 3)
    np.testing.assert_array_equal(view, pal[ids])  # α = 1: pure class colours
    # α = 0.5: halfway between photo and colours; --no-mask writes only the overlay, under the mask's name
    only = tmp_path / "only.png"
    assert run(_tool("infer"), ["--task", "seg", "--checkpoint", str(tiny_run), str(a), "-o", str(only),
                                "--overlay", "--no-mask"]) == 0
    half = np.asarray(Image.open(only)).astype(float)
    photo = np.asarray(Image.open(a)).astype(float)
    assert np.abs(half - (photo + pal[ids]) / 2).max() <= 1.0 and Image.open(only).mode == "RGB"
    assert not (tmp_path / "only_overlay.png").exists()


def test_comparison_grid_layout(tiny_run: Path) -> None:
    from i2i.apps.common import dataset_from_config
    from i2i.inference import load_model

    m = load_model(tiny_run)
    grid = seg_app.comparison_grid([m, m], [0, 3], scale=2, gap=3)
    assert grid.shape == (2 * 48 + 3, 4 * 48 + 3 * 3, 3) and grid.dtype == np.uint8
    # last column, second row: the ground truth of val image 3 in the model's colours (void: VOC's)
    mask = dataset_from_config(m.config, "val", augment=False)[3]["mask"].numpy()
    pal = np.asarray(m.meta["palette"] + [[224, 224, 192]], np.uint8)
    want = pal[np.where(mask == 255, len(m.meta["palette"]), mask)].repeat(2, 0).repeat(2, 1)
    np.testing.assert_array_equal(grid[51:, 3 * 51:], want)
    # the two model columns are the same model: identical panels
    np.testing.assert_array_equal(grid[:, 51:99], grid[:, 102:150])


def test_bad_files_one_line_each_and_exit_1(tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    good = _photo(tmp_path / "in" / "good.png", 16, 16)
    (tmp_path / "in" / "broken.png").write_bytes(b"not a png at all")
    rc = run(_tool("infer"), ["--task", "seg", "--checkpoint", str(tiny_run), str(tmp_path / "in"),
                              str(tmp_path / "missing.jpg"), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1
    assert len(err) == 2 and all(ln.startswith("error: ") for ln in err)
    assert any("broken.png" in ln for ln in err) and any("missing.jpg" in ln for ln in err)
    assert (tmp_path / "out" / good.name).is_file() and not (tmp_path / "out" / "broken.png").exists()
    # argument problems are one line too (exit 2), before any file is touched
    assert run(_tool("infer"), ["--task", "seg", "--checkpoint", str(tiny_run), str(good), "-o",
                                str(tmp_path / "x.jpg")]) == 2
    assert "palette PNG" in capsys.readouterr().err


def _reference_metrics(run_dir: Path) -> dict[str, float]:
    """The same scores computed by hand: predictions over the val split, one confusion matrix."""
    from i2i.apps.common import dataset_from_config
    from i2i.inference import load_model
    from i2i.metrics.segmentation import confusion_counts, segmentation_scores

    model = load_model(run_dir)
    ds = dataset_from_config(model.config, "val", augment=False)
    m = torch.zeros(7, 7, dtype=torch.int64)
    with torch.no_grad():
        for i in range(len(ds)):
            item = ds[i]
            pred = model.generator(item["image"][None]).argmax(1)
            m += confusion_counts(pred, item["mask"][None], 7, 255).reshape(7, 7)
    return segmentation_scores(m, model.meta["class_names"])


def test_eval_json_last_line(tiny_run: Path, capsys: pytest.CaptureFixture) -> None:
    assert run(_tool("eval"), ["--task", "seg", "--checkpoint", str(tiny_run), "--json"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    got = json.loads(last)
    assert got["task"] == "seg" and got["split"] == "val" and got["num_images"] == NUM_VAL
    want = _reference_metrics(tiny_run)
    assert got["labelled_pixels"] == _labelled_pixels(tiny_run)
    for k in ("pixel_acc", "class_acc", "miou", "iou/wall", "acc/wall"):
        assert got[k] == pytest.approx(want[k], abs=1e-9) if want[k] == want[k] else got[k] is None


def _labelled_pixels(run_dir: Path) -> int:
    from i2i.apps.common import dataset_from_config
    from i2i.inference import load_model

    ds = dataset_from_config(load_model(run_dir).config, "val", augment=False)
    return sum(int((ds[i]["mask"] != 255).sum()) for i in range(len(ds)))


@pytest.mark.slow
def test_eval_two_processes_equals_one(tiny_run: Path, tmp_path: Path) -> None:
    """``accelerate launch --cpu --num_processes 2`` (two gloo workers): the same metrics and
    the same pixel count as one process (no padding duplicate counted, no image dropped)."""
    r1, r2, two_out = eval_one_and_two_processes("seg", tiny_run, tmp_path, "--batch-size", "2")
    assert r1["processes"] == 1 and r2["processes"] == 2
    # only the main process prints: one JSON line, not two
    assert sum(ln.startswith("{") for ln in two_out.splitlines()) == 1
    assert r1["labelled_pixels"] == r2["labelled_pixels"] == _labelled_pixels(tiny_run)
    drop = {"processes"}
    assert {k: v for k, v in r1.items() if k not in drop} == {k: v for k, v in r2.items() if k not in drop}


def test_infer_never_writes_over_its_inputs(tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`-o` = the input folder (outputs would be a.png over a.png) or the input file itself: one
    line, exit 2, the inputs byte for byte as they were, nothing written."""
    photos = tmp_path / "photos"
    a = _photo(photos / "a.png", 20, 24)
    before = a.read_bytes()
    for inputs, out in (([str(photos)], str(photos)), ([str(a)], str(a)), ([str(a)], str(photos / ".." / "photos" / "a.png"))):
        rc = run(_tool("infer"), ["--task", "seg", "--checkpoint", str(tiny_run), *inputs, "-o", out])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and "would overwrite the input" in err[0] and err[0].startswith("error: -o: "), err
        assert a.read_bytes() == before and sorted(p.name for p in photos.iterdir()) == ["a.png"]
    from i2i.apps.common import output_paths

    link = tmp_path / "link.png"
    link.symlink_to(a)
    with pytest.raises(Exception, match="would overwrite the input"):
        output_paths([a], str(link), True, "unused")
    assert output_paths([a], str(tmp_path / "out"), False, "unused", suffix="_x4") == [tmp_path / "out" / "a_x4.png"]
