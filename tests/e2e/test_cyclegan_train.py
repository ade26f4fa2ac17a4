"""End to end: both CycleGAN YAMLs, shrunk, train real steps through the engine; a resumed run
repeats the uninterrupted one bit for bit, image pools included."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import fashion_like
import torch

from i2i import config, inference
from i2i import runs as ckpt
from i2i.apps.common import eval_recipe
from i2i.data.io import save_image
from i2i.engine.tracking import read_metrics
from i2i.engine.trainer import Trainer
from i2i.recipes.cyclegan import CycleGAN

ROOT = Path(__file__).resolve().parents[2]
TINY_NETS = [
    *(f"models.{s}={{type: resnet_generator, in_channels: 3, out_channels: 3, base_channels: 4, n_blocks: 1}}"
      for s in ("generator_ab", "generator_ba")),
    *(f"models.{s}={{type: patchgan, in_channels: 3, n_layers: 1, base_channels: 4, norm: instance}}"
      for s in ("discriminator_a", "discriminator_b")),
]
QUIET = ["logging.tracker=none", "logging.progress=false", "data.num_workers=0"]


def released_layout(root: Path) -> Path:
    """trainA/trainB/testA/testB of small random RGB images (different counts and sizes per domain)."""
    rng = np.random.default_rng(0)
    for split, n_a, n_b in (("train", 4, 6), ("test", 2, 3)):
        for d, n, size in (("A", n_a, (20, 24)), ("B", n_b, (24, 20))):
            for k in range(n):
                save_image(root / f"{split}{d}" / f"{k}.png", rng.integers(0, 256, (*size, 3), dtype=np.uint8))
    return root


def test_paper_yaml_trains_a_few_steps_and_exports_both_directions(tmp_path: Path) -> None:
    data = released_layout(tmp_path / "horse2zebra")
    cfg = config.load_config(ROOT / "tasks" / "cyclegan.yaml", [
        f"data.root={data}", "data.load_size=20", "data.crop_size=16", *TINY_NETS, *QUIET,
        "train.max_steps=3", "train.log_every=1", "train.ckpt_every=0", "eval.every=0", "eval.batch_size=2",
        "logging.sample_every=3", "logging.num_samples=2"])
    run = tmp_path / "run"
    Trainer(cfg, output_dir=run).fit()
    rows = [r for r in read_metrics(run) if "g/total" in r]
    assert [r["step"] for r in rows] == [1, 2, 3]
    terms = ("g/adv_ab", "g/adv_ba", "g/cycle_a", "g/cycle_b", "g/idt_a", "g/idt_b")
    for r in rows:
        assert r["g/total"] == pytest.approx(sum(r[k] for k in terms), rel=1e-5)
        assert r["d/loss"] == pytest.approx(r["d_a/loss"] + r["d_b/loss"], rel=1e-5)
        for k in ("d_a/real", "d_a/fake", "d_b/real", "d_b/fake", "g/grad_norm", "d/grad_norm", "lr/generator_ba"):
            assert isinstance(r[k], float), k
    evals = [r for r in read_metrics(run) if "eval/cycle_a" in r]
    assert len(evals) == 1 and 0 < evals[0]["eval/cycle_a"] < 2 and evals[0]["eval/sharpness_ab"] > 0
    assert any((run / "samples").glob("*.png"))
    model = inference.load_model(run, task="cyclegan", device="cpu")
    assert set(model.nets) == {"generator_ab", "generator_ba"} and model.meta["multiple"] == 4
    assert eval_recipe(model).multiple == 4 == model.card.multiple_of  # the recipe sets up from the generators alone
    from i2i.recipes.pix2pix import pad_predict

    y = pad_predict(model.nets["generator_ba"], torch.zeros(1, 3, 18, 30), model.meta["multiple"])
    assert y.shape == (1, 3, 18, 30) and torch.isfinite(y).all()


def resume_cfg(data: Path, steps: int) -> config.Config:
    gray = [o.replace("in_channels: 3, out_channels: 3", "in_channels: 1, out_channels: 1")
             .replace("in_channels: 3, n_layers", "in_channels: 1, n_layers") for o in TINY_NETS]
    return config.load_config(ROOT / "tasks" / "cyclegan_fashion.yaml", [
        f"data.root={data}", "data.load_size=20", "data.crop_size=16", "data.batch_size=2", *gray, *QUIET,
        "recipe.pool_size=3", f"train.max_steps={steps}", "train.log_every=1", "train.ckpt_every=3", "eval.every=0",
        "eval.at_end=false", "logging.sample_every=0", "train.ema_decay=0.9",
        # a schedule's length is max_steps: the 3-step half would decay on another clock
        *(f"sched.{s}={{type: constant}}" for s in ("generator_ab", "generator_ba", "discriminator_a", "discriminator_b"))])


def test_resume_is_exact_with_the_image_pools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """6 steps vs 3 + resume 3: every logged value after the resume and every exported weight are
    bit-identical. Pools of 3 images at batch 2 are full after step 2, so steps 4-6 swap images
    drawn before the checkpoint; a resume that dropped the pools would differ (checked)."""
    data = fashion_like(tmp_path / "idx")
    full, part, lost = tmp_path / "full", tmp_path / "part", tmp_path / "lost"
    Trainer(resume_cfg(data, 6), output_dir=full).fit()
    for run in (part, lost):
        Trainer(resume_cfg(data, 3), output_dir=run).fit()
    saved = ckpt.safe_torch_load(part / "checkpoints" / "step_00000003" / "rng_0.pt")["recipe"]
    assert len(saved["pool_a"]["images"]) == len(saved["pool_b"]["images"]) == 3
    Trainer(resume_cfg(data, 6), output_dir=part, resume=True).fit()

    a = {r["step"]: r for r in read_metrics(full) if "g/total" in r}
    b = {r["step"]: r for r in read_metrics(part) if "g/total" in r}
    assert sorted(b) == list(range(1, 7))
    keys = [k for k in a[4] if k.startswith(("g/", "d/", "d_a/", "d_b/"))]
    assert len(keys) >= 15
    for step in range(4, 7):
        for k in keys:
            assert a[step][k] == b[step][k], (step, k)
    for slot in ("generator_ab", "generator_ba", "discriminator_a", "discriminator_b"):
        ea, eb = (ckpt.load_tensors(r / "export" / f"{slot}.safetensors") for r in (full, part))
        assert ea.keys() == eb.keys() and all(torch.equal(ea[k], eb[k]) for k in ea), slot

    # the negative control: the same resume with the pools not restored departs from the full run
    monkeypatch.setattr(CycleGAN, "load_train_state", lambda self, state: None)
    Trainer(resume_cfg(data, 6), output_dir=lost, resume=True).fit()
    c = {r["step"]: r for r in read_metrics(lost) if "g/total" in r}
    assert a[4]["g/total"] == c[4]["g/total"]  # G's step 4 comes before any pool is drawn from
    assert any(a[s]["d/loss"] != c[s]["d/loss"] for s in range(4, 7))


def test_two_process_ddp_training_and_evaluation_match_one_process(tmp_path: Path) -> None:
    """DDP over two CPU processes: each generator runs three times before one backward (G(a), G(F(b)),
    the identity term); each process keeps its own pools (rng_0.pt, rng_1.pt); the evaluation,
    gathered over an uneven split (5 items in global batches of 4), equals one process's."""
    import subprocess
    import sys

    from i2i.engine.build import build_dataset

    data = released_layout(tmp_path / "data")
    for k in range(2):  # 3 test A images, 5 test B images
        save_image(data / "testB" / f"extra{k}.png", np.full((24, 20, 3), 40 * k, np.uint8))
    save_image(data / "testA" / "extra.png", np.full((20, 24, 3), 90, np.uint8))
    out = tmp_path / "ddp"
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "2", "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no"]
    args = ["tasks/cyclegan.yaml", f"data.root={data}", "data.load_size=20", "data.crop_size=16", *TINY_NETS, *QUIET,
            "train.max_steps=2", "train.log_every=1", "train.ckpt_every=0", "eval.every=0", "eval.batch_size=2",
            "logging.sample_every=0", "--output-dir", str(out)]
    p = subprocess.run(launch + [str(ROOT / "tools/train.py"), *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    ck = out / "checkpoints" / "step_00000002"
    pools = [ckpt.safe_torch_load(ck / f"rng_{r}.pt")["recipe"]["pool_b"]["images"] for r in (0, 1)]
    assert len(pools[0]) == len(pools[1]) == 2 and not torch.equal(pools[0][0], pools[1][0])  # one G(a) per step each
    logged = next(r for r in read_metrics(out) if "eval/cycle_a" in r)

    class One:
        def gather_for_metrics(self, x: torch.Tensor) -> torch.Tensor:
            return x

    model = inference.load_model(out, device="cpu")
    val = build_dataset(model.config["data"], "test")
    assert len(val) == 5
    batches = list(torch.utils.data.DataLoader(val, batch_size=5))
    single = eval_recipe(model).run_evaluation(model.nets, batches, One())
    assert set(single) == {"cycle_a", "cycle_b", "sharpness_ab", "sharpness_ba"}
    for k, v in single.items():
        assert logged[f"eval/{k}"] == pytest.approx(v, rel=1e-5), k
