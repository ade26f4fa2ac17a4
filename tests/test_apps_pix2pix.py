"""Sketch-to-photo front-end (i2i/apps/pix2pix.py) through tools/infer.py and tools/eval.py,
on a tiny model trained for two steps in this file on the embedded photos."""
from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from i2i import config, inference
from i2i.apps import pix2pix as app
from i2i.pipelines import pix2pix as pipeline
from i2i.cli import run
from i2i.data.io import read_image
from i2i.engine import trainer
from i2i.errors import ConfigError
from i2i.apps.common import dataset_from_config
from i2i.metrics.texture import texture_frechet_distance
from i2i.recipes.pix2pix import pad_predict

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "models.generator={type: unet, in_channels: 1, out_channels: 3, num_downs: 4, base_channels: 8, max_channels: 32}",
    "models.discriminator.base_channels=8", "models.discriminator.n_layers=1",
    "data.load_size=36", "data.crop_size=32", "data.repeat=1",
    "train.max_steps=2", "train.log_every=1", "train.ckpt_every=0", "eval.every=0", "eval.at_end=false",
    "logging.tracker=none", "logging.sample_every=0", "logging.progress=false",
]


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(f"_tool_{name}", ROOT / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("p2p") / "run"
    cfg = config.load_config(ROOT / "tasks" / "pix2pix_sketch2photo.yaml", TINY)
    trainer.Trainer(cfg, output_dir=out).fit()
    return out


def _sketch(path: Path, w: int, h: int) -> Path:
    a = np.full((h, w), 255, np.uint8)
    a[h // 3, :] = 0  # a line on paper
    a[:, w // 2] = 0
    Image.fromarray(a).save(path)
    return path


def _photo(path: Path, w: int, h: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def test_infer_file_and_odd_sizes_keep_the_input_size(run_dir: Path, tmp_path: Path, capsys) -> None:
    infer = _tool("infer")
    src = _sketch(tmp_path / "s.png", 32, 32)
    rc = run(infer.main, ["--task", "sketch2photo", "--checkpoint", str(run_dir), str(src), "-o", str(tmp_path / "p.png")])
    assert rc == 0
    out = read_image(tmp_path / "p.png", "RGB")
    assert out.shape == (32, 32, 3)

    folder = tmp_path / "odd"
    folder.mkdir()
    sizes = {"a": (37, 23), "b": (5, 7), "c": (50, 17)}  # (w, h); b is smaller than the U-Net's multiple (16)
    for stem, (w, h) in sizes.items():
        _sketch(folder / f"{stem}.png", w, h)
    rc = run(infer.main, ["--task", "sketch2photo", "--checkpoint", str(run_dir / "export"), str(folder),
                          "-o", str(tmp_path / "outs")])
    assert rc == 0
    for stem, (w, h) in sizes.items():
        assert read_image(tmp_path / "outs" / f"{stem}.png", "RGB").shape == (h, w, 3)


def test_from_photo_uses_the_runs_sketch_style(run_dir: Path, tmp_path: Path) -> None:
    infer = _tool("infer")
    src = _photo(tmp_path / "cat.jpg", 41, 29)
    rc = run(infer.main, ["--task", "sketch2photo", "--checkpoint", str(run_dir), "--from-photo", "--save-sketch",
                          str(src), "-o", str(tmp_path / "cat.png")])
    assert rc == 0
    assert read_image(tmp_path / "cat.png", "RGB").shape == (29, 41, 3)
    sketch = read_image(tmp_path / "cat_sketch.png", "keep")
    model = inference.load_model(run_dir)
    expected = pipeline.make_sketch(model, read_image(src, "RGB"))  # xdog with the run's parameters, 1 channel
    assert sketch.shape == (29, 41) and np.array_equal(sketch, expected[..., 0])

    # a model not trained on photo_sketch pairs cannot make sketches: one clear error
    card = model.card  # what the pipelines read: the run's data type, from its config
    model.stored_card = dataclasses.replace(card, sketch=dataclasses.replace(card.sketch, data_type="aligned"))
    args = _args(run_dir, ["--from-photo", str(src)])
    with pytest.raises(ConfigError, match="--from-photo"):
        app.infer(model, args)


def _args(run_dir: Path, extra: list[str]):
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("--task")
    p.add_argument("--checkpoint")
    app.add_infer_args(p)
    return p.parse_args(["--checkpoint", str(run_dir), *extra])


def test_bad_files_one_line_each_and_exit_1(run_dir: Path, tmp_path: Path, capsys) -> None:
    infer = _tool("infer")
    good = _sketch(tmp_path / "good.png", 20, 20)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    capsys.readouterr()
    rc = run(infer.main, ["--task", "sketch2photo", "--checkpoint", str(run_dir), str(good), str(broken), str(empty),
                          str(tmp_path / "missing.png"), "-o", str(tmp_path / "out")])
    assert rc == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 3 and all(line.startswith("error: ") for line in err)
    for name in ("broken.png", "empty.jpg", "missing.png"):
        assert sum(name in line for line in err) == 1
    assert (tmp_path / "out" / "good.png").is_file()  # the good file is still done


def test_eval_json_default_split_and_data_dir(run_dir: Path, tmp_path: Path, capsys) -> None:
    ev = _tool("eval")
    capsys.readouterr()
    assert run(ev.main, ["--task", "sketch2photo", "--checkpoint", str(run_dir), "--json"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"l1", "psnr", "ssim", "sharpness"} <= set(res)
    assert res["num_images"] == 2 and res["split"] == "val" and not res["dropout"]
    assert [r["name"] for r in res["per_image"]] == ["chelsea", "motorcycle_left"]
    for k in ("l1", "psnr", "ssim", "sharpness"):
        assert res[k] == pytest.approx(np.mean([r[k] for r in res["per_image"]]), rel=1e-5)
    assert 0 <= res["l1"] <= 2 and -1 <= res["ssim"] <= 1 and res["sharpness"] > 0
    # FD_SIFT over the set, recomputed here from the model's outputs on the same crops
    model = inference.load_model(run_dir)
    ds = dataset_from_config(model.config, "val", None)
    with torch.no_grad():
        items = [ds[i] for i in range(len(ds))]
        fakes = torch.cat([pad_predict(model.generator, it["A"][None], pipeline.multiple_of(model)) for it in items])
    reals = torch.stack([it["B"] for it in items])
    expected = texture_frechet_distance(fakes.add(1).div(2), reals.add(1).div(2))
    assert res["fd_sift"] == pytest.approx(expected, rel=1e-6) and res["fd_sift_patches"] == 2  # one 32-px patch each

    (tmp_path / "mine" / "val").mkdir(parents=True)
    for i in range(3):
        _photo(tmp_path / "mine" / "val" / f"{i}.png", 40, 48, seed=i)
    assert run(ev.main, ["--task", "sketch2photo", "--checkpoint", str(run_dir), "--data", str(tmp_path / "mine"),
                         "--json", "--dropout", "--batch-stats"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["fd_sift_patches"] == 3 and res["fd_sift"] > 0
    assert res["num_images"] == 3 and res["dropout"] and [r["name"] for r in res["per_image"]] == ["0.png", "1.png", "2.png"]


def test_generator_mode_restores_modes_and_running_stats(run_dir: Path) -> None:
    G = inference.load_model(run_dir).generator
    bn = next(m for m in G.modules() if isinstance(m, torch.nn.BatchNorm2d))
    before = bn.running_mean.clone()
    x = torch.rand(1, 1, 32, 32) * 2 - 1
    with pipeline.generator_mode(G) as g:
        assert not any(m.training for m in g.modules())
        y0, y1 = g(x), g(x)
    assert torch.equal(y0, y1)  # eval mode is deterministic
    with torch.no_grad(), pipeline.generator_mode(G, dropout=True, batch_stats=True) as g:
        assert all(m.training for m in g.modules() if isinstance(m, torch.nn.Dropout))
        torch.manual_seed(0)
        a = g(x)
        torch.manual_seed(1)
        b = g(x)
    assert not torch.equal(a, b)  # dropout is the noise
    assert torch.equal(bn.running_mean, before) and bn.momentum == 0.1
    assert not any(m.training for m in G.modules())  # loaded models are in eval mode, and stay so


def test_comparison_grid_layout(run_dir: Path) -> None:
    model = inference.load_model(run_dir)
    grid = app.comparison_grid([model, model], zoom=2, gap=2)
    # 2 held-out photos (rows) × sketch | model | model | photo; cells are whole frames, short side 32
    assert grid.dtype == np.uint8 and grid.ndim == 3 and grid.shape[2] == 3
    cell_h = (grid.shape[0] + 2) // 2 - 2
    assert cell_h == 64 and (grid.shape[1] + 2) % 4 == 0
    assert (grid[cell_h:cell_h + 2] == 255).all()  # the white gap between the rows
