"""CycleGAN front-end (i2i/apps/cyclegan.py) through tools/infer.py and tools/eval.py, on a tiny
run trained in this file (MNIST-format IDX files of random images, 3 steps)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import eval_one_and_two_processes, fashion_like
import torch
from conftest import load_tool
from torch.utils.data import DataLoader

from i2i import config, inference
from i2i.apps.common import eval_recipe
from i2i.cli import run
from i2i.data.io import read_image, save_image
from i2i.engine.build import build_dataset
from i2i.engine.tracking import read_metrics
from i2i.engine.trainer import Trainer
from i2i.recipes.pix2pix import pad_predict

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    *(f"models.{s}={{type: resnet_generator, in_channels: 1, out_channels: 1, base_channels: 4, n_blocks: 1}}"
      for s in ("generator_ab", "generator_ba")),
    *(f"models.{s}={{type: patchgan, in_channels: 1, n_layers: 1, base_channels: 4, norm: instance}}"
      for s in ("discriminator_a", "discriminator_b")),
    "data.load_size=20", "data.crop_size=16", "data.batch_size=2", "recipe.pool_size=2",
    "train.max_steps=3", "train.log_every=1", "train.ckpt_every=0", "eval.every=0", "eval.at_end=true",
    "eval.batch_size=4", "eval.max_batches=null",
    "logging.tracker=none", "logging.sample_every=0", "logging.progress=false",
]


class One:
    """A single process: gather is the identity."""

    def gather_for_metrics(self, x: torch.Tensor) -> torch.Tensor:
        return x


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("cg")
    data = fashion_like(tmp / "idx")  # 10 test images of each class
    out = tmp / "run"
    Trainer(config.load_config(ROOT / "tasks" / "cyclegan_fashion.yaml", [f"data.root={data}", *TINY]),
            output_dir=out).fit()
    return out


def _gray(path: Path, w: int, h: int, seed: int = 0) -> Path:
    save_image(path, np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8))
    return path


@torch.no_grad()
def _by_hand(net: torch.nn.Module, img: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(img.astype(np.float32) / 127.5 - 1)[None, None]
    y = pad_predict(net, x, 4)[0, 0]
    return ((y.numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)


def test_infer_both_directions_end_to_end(run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture) -> None:
    infer = load_tool("infer")
    model = inference.load_model(run_dir, device="cpu")
    src = _gray(tmp_path / "boot.png", 22, 18)
    rc = run(infer.main, ["--task", "cyclegan", "--checkpoint", str(run_dir), "--device", "cpu", "--direction", "BtoA",
                          str(src), "-o", str(tmp_path / "out.png")])
    assert rc == 0
    out = read_image(tmp_path / "out.png", "L")
    assert out.shape == (18, 22)
    by_hand = {d: _by_hand(model.nets[s], read_image(src, "L")) for d, s in (("BtoA", "generator_ba"), ("AtoB", "generator_ab"))}
    assert np.abs(out.astype(int) - by_hand["BtoA"].astype(int)).max() <= 1
    assert np.abs(out.astype(int) - by_hand["AtoB"].astype(int)).max() > 1  # the other generator differs

    # folder in, default folder out (./cyclegan_AtoB, <stem>.png), and --ext jpg
    (tmp_path / "in").mkdir()
    for k, (w, h) in enumerate(((16, 16), (7, 5))):
        _gray(tmp_path / "in" / f"s{k}.png", w, h, seed=k)
    monkeypatch.chdir(tmp_path)
    assert run(infer.main, ["--task", "cyclegan", "--checkpoint", str(run_dir), "--device", "cpu", "in"]) == 0
    assert sorted(p.name for p in (tmp_path / "cyclegan_AtoB").iterdir()) == ["s0.png", "s1.png"]
    assert read_image(tmp_path / "cyclegan_AtoB" / "s1.png", "L").shape == (5, 7)
    assert np.array_equal(read_image(tmp_path / "cyclegan_AtoB" / "s1.png", "L"),
                          _by_hand(model.nets["generator_ab"], read_image(tmp_path / "in" / "s1.png", "L")))
    assert run(infer.main, ["--task", "cyclegan", "--checkpoint", str(run_dir), "--device", "cpu", "--direction", "BtoA",
                            "in", "--ext", "jpg", "--quality", "80"]) == 0
    assert sorted(p.name for p in (tmp_path / "cyclegan_BtoA").iterdir()) == ["s0.jpg", "s1.jpg"]


def test_bad_direction_and_bad_files_are_one_line_errors(run_dir: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    infer = load_tool("infer")
    good = _gray(tmp_path / "good.png", 8, 8)
    capsys.readouterr()
    rc = run(infer.main, ["--task", "cyclegan", "--checkpoint", str(run_dir), "--direction", "sideways", str(good)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == ["error: --direction: expected AtoB or BtoA, got 'sideways'"]
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    rc = run(infer.main, ["--task", "cyclegan", "--checkpoint", str(run_dir), "--device", "cpu", str(good), str(broken),
                          str(tmp_path / "missing.png"), "-o", str(tmp_path / "out")])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert rc == 1 and len(err) == 2 and all(line.startswith("error: ") for line in err)
    assert sum("broken.png" in line for line in err) == sum("missing.png" in line for line in err) == 1
    assert (tmp_path / "out" / "good.png").is_file()


def test_fast_switches_both_generators(run_dir: Path, tmp_path: Path) -> None:
    """--fast (no single ``generator`` slot here): both generators are switched, the outputs stay
    within a few levels of the plain ones (bf16 where the CPU has it, else fp32)."""
    from i2i.perf import FastInference

    model = inference.load_model(run_dir, device="cpu", with_discriminator=True).fast()
    assert all(isinstance(model.nets[s], FastInference) for s in ("generator_ab", "generator_ba"))
    assert not isinstance(model.nets["discriminator_a"], FastInference)
    src = _gray(tmp_path / "x.png", 20, 12)
    for flag in ([], ["--fast"]):
        assert run(load_tool("infer").main, ["--task", "cyclegan", "--checkpoint", str(run_dir), "--device", "cpu",
                                             "--direction", "BtoA", *flag, str(src), "-o", str(tmp_path / f"y{len(flag)}.png")]) == 0
    plain, fast = (read_image(tmp_path / f"y{k}.png", "L").astype(int) for k in (0, 1))
    assert np.abs(plain - fast).max() <= 4


def _eval(run_dir: Path, capsys: pytest.CaptureFixture, *extra: str) -> dict:
    capsys.readouterr()
    assert run(load_tool("eval").main, ["--task", "cyclegan", "--checkpoint", str(run_dir), "--device", "cpu",
                                        "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_eval_equals_the_recipes_own_evaluation(run_dir: Path, capsys: pytest.CaptureFixture) -> None:
    res = _eval(run_dir, capsys)
    keys = {"cycle_a", "cycle_b", "sharpness_ab", "sharpness_ba"}
    assert keys <= set(res) and res["split"] == "test" and res["num_items"] == 10 and not res["paired"]
    # the trainer's own end-of-run evaluation (the same code, the whole test split)
    logged = [r for r in read_metrics(run_dir) if "eval/cycle_a" in r][-1]
    model = inference.load_model(run_dir, device="cpu")
    batches = list(DataLoader(build_dataset(model.config["data"], "test"), batch_size=10))
    direct = eval_recipe(model).run_evaluation(model.nets, batches, One())
    a, b = batches[0]["A"], batches[0]["B"]
    with torch.no_grad():
        G, F = model.nets["generator_ab"], model.nets["generator_ba"]
        cycle_a = (pad_predict(F, pad_predict(G, a, 4), 4) - a).abs().mean().item()  # by hand: mean |F(G(a)) - a|
        cycle_b = (pad_predict(G, pad_predict(F, b, 4), 4) - b).abs().mean().item()
    for k in keys:
        assert res[k] == pytest.approx(logged[f"eval/{k}"], rel=1e-5) == pytest.approx(direct[k], rel=1e-5), k
    assert res["cycle_a"] == pytest.approx(cycle_a, rel=1e-5) and res["cycle_b"] == pytest.approx(cycle_b, rel=1e-5)
    assert 0 < res["cycle_a"] < 2 and res["sharpness_ab"] > 0

    limited = _eval(run_dir, capsys, "--limit", "3", "--batch-size", "2")
    assert limited["num_items"] == 3
    assert limited["cycle_a"] == pytest.approx(
        (pad_predict(F, pad_predict(G, a[:3], 4), 4) - a[:3]).abs().mean().item(), rel=1e-5)


def test_eval_on_paired_folders(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """--data ROOT with testA/ + testB/ (a gray run on RGB files) and --paired: L1/PSNR/SSIM too."""
    rng = np.random.default_rng(3)
    for d in "AB":
        for k in range(3):
            save_image(tmp_path / "pairs" / f"test{d}" / f"{k}.png", rng.integers(0, 256, (12, 20, 3), dtype=np.uint8))
    res = _eval(run_dir, capsys, "--data", str(tmp_path / "pairs"), "--paired")
    assert res["paired"] and res["num_items"] == 3
    model = inference.load_model(run_dir, device="cpu")
    ds = build_dataset({"type": "unpaired_folders", "root": str(tmp_path / "pairs"), "crop_size": 16, "load_size": 20,
                        "a_channels": 1, "b_channels": 1, "paired_eval": True}, "test")
    a = torch.stack([ds[i]["A"] for i in range(3)])
    b = torch.stack([ds[i]["B"] for i in range(3)])
    with torch.no_grad():
        l1_ab = (pad_predict(model.nets["generator_ab"], a, 4) - b).abs().mean().item()
    assert res["l1_ab"] == pytest.approx(l1_ab, rel=1e-5)
    assert {"psnr_ab", "ssim_ab", "l1_ba", "psnr_ba", "ssim_ba"} <= set(res)

    capsys.readouterr()
    rc = run(load_tool("eval").main, ["--task", "cyclegan", "--checkpoint", str(run_dir), "--paired"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: --paired: needs test images paired by file name")


@pytest.mark.slow
def test_eval_two_processes_equals_one(run_dir: Path, tmp_path: Path) -> None:
    """``accelerate launch --cpu --num_processes 2``: 10 items in global batches of 4 (an uneven
    last batch), gathered; the same numbers as one process, printed once."""
    r1, r2, two_out = eval_one_and_two_processes("cyclegan", run_dir, tmp_path, "--batch-size", "2")
    assert r1["processes"] == 1 and r2["processes"] == 2
    assert sum(ln.startswith("{") for ln in two_out.splitlines()) == 1
    for k in ("cycle_a", "cycle_b", "sharpness_ab", "sharpness_ba"):
        assert r2[k] == pytest.approx(r1[k], rel=1e-5), k
    assert r1["num_items"] == r2["num_items"] == 10
