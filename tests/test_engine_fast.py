"""``train.fast`` through the engine: a fast few-step run of every recipe, exact resume, ``--fast``.

What the plan picks per device (mocked CPU/CUDA capabilities) is tested in tests/test_perf.py;
here the trainer must use the plan it prints: Accelerate's precision, NHWC networks where they
are convolutional, the optimizers, and the numbers that must stay fp32 (every logged loss
term, the GAN scores, EMA weights, saved weights).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from conftest import fashion_like

from i2i import perf
from i2i import runs as ckpt
from i2i.commands import train_main
from i2i.config import load_config
from i2i.engine.tracking import read_metrics
from i2i.engine.trainer import Trainer, batch_to_device

ROOT = Path(__file__).resolve().parent.parent
QUIET = ["logging.tracker=none", "logging.progress=false", "eval.every=0", "eval.at_end=false", "logging.sample_every=0",
         "train.fast=true"]
# one tiny configuration per recipe (digits, sr with D and the VGG content loss, pix2pix, segmentation, cyclegan)
TINY: dict[str, list[str]] = {
    "acgan_mnist": ["models.generator.base_channels=8", "models.discriminator.base_channels=8", "data.batch_size=8",
                    "train.ema_decay=0.9"],
    "gan_mnist": ["models.generator.hidden=[16, 32]", "models.discriminator.hidden=[32, 16]", "data.batch_size=8"],
    "srgan": ["models.generator.width=8", "models.generator.num_blocks=1", "models.discriminator.base_channels=8",
              "losses.content.weights=null", "losses.content.layers={relu2_2: 1.0}", "data.batch_size=2",
              "data.patch_size=32", "data.num_workers=0", "train.init={}", "train.ema_decay=0.9"],
    "pix2pix_sketch2photo": ["models.generator={type: unet, in_channels: 1, num_downs: 4, base_channels: 8}",
                             "models.discriminator.base_channels=8", "models.discriminator.n_layers=1",
                             "data.load_size=40", "data.crop_size=32", "data.repeat=2", "data.batch_size=2",
                             "data.num_workers=0"],
    "segmentation_adversarial": ["models.generator.width=4", "models.generator.depth=2", "data.size=24",
                                 "data.num_images=8", "data.batch_size=4"],
    "cyclegan_fashion": [
        *(f"models.{s}={{type: resnet_generator, in_channels: 1, out_channels: 1, base_channels: 4, n_blocks: 1}}"
          for s in ("generator_ab", "generator_ba")),
        *(f"models.{s}={{type: patchgan, in_channels: 1, n_layers: 1, base_channels: 4, norm: instance}}"
          for s in ("discriminator_a", "discriminator_b")),
        "data.load_size=20", "data.crop_size=16", "data.batch_size=2", "recipe.pool_size=2"],
}


def _cfg(task: str, tmp_path: Path, extra: list[str]):
    more = [f"data.root={fashion_like(tmp_path / 'idx')}"] if task.startswith("cyclegan") else []
    return load_config(ROOT / "tasks" / f"{task}.yaml", QUIET + TINY[task] + more + extra)


@pytest.mark.parametrize("task", sorted(TINY))
def test_a_fast_few_step_run_of_every_recipe(task: str, tmp_path: Path, train_device: torch.device) -> None:
    t = Trainer(_cfg(task, tmp_path, ["train.max_steps=3", "train.log_every=1", "train.ckpt_every=0"]),
                output_dir=tmp_path / "run")
    expected = perf.fast_training_plan(train_device, *t.bare.values())
    # the plan the run uses is the device's fast plan, and Accelerate runs it
    assert t.plan.fast and t.acc.mixed_precision == expected.mixed_precision == t.plan.mixed_precision
    assert t.plan.channels_last == expected.channels_last == perf.is_convolutional(*t.bare.values())
    conv_weights = [p for m in t.bare.values() for p in m.parameters() if p.dim() == 4]
    assert conv_weights or task == "gan_mnist"
    for p in conv_weights:  # NHWC networks (fast), or the plain layout where the plan keeps it
        assert p.is_contiguous(memory_format=torch.channels_last) == t.plan.channels_last
    for o in t.opts.values():  # fused kernels (Adam here): the device-side non-finite skip stays on
        assert getattr(o.optimizer, "_step_supports_amp_scaling", False)
    # one step by hand: every logged value (losses, D scores, grad norms) is fp32, whatever the autocast
    data = iter(t.loader)
    logs, finite = t.train_step(lambda: batch_to_device(next(data), t.acc.device, t.plan.channels_last), 0)
    assert bool(finite)
    bad = {k: v.dtype for k, v in logs.items() if v.dtype != torch.float32}
    assert not bad, bad
    assert all(p.dtype == torch.float32 for e in t.emas.values() for p in e.module.parameters())
    t.fit()
    run = tmp_path / "run"
    plan = json.loads((run / "train_plan.json").read_text())
    assert plan["fast"] and plan["mixed_precision"] == expected.mixed_precision and "compile" in plan["reasons"]
    rows = [r for r in read_metrics(run) if "g/total" in r or "d/loss" in r]
    assert len(rows) == 3
    assert all(isinstance(v, float) and math.isfinite(v) for r in rows for k, v in r.items() if k != "step")
    for f in (run / "export").glob("*.safetensors"):
        w = ckpt.load_tensors(f)
        assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in w.values() if v.is_floating_point()), f


@pytest.mark.parametrize("task", ["acgan_mnist", "pix2pix_sketch2photo"])
def test_fast_resume_reproduces_the_uninterrupted_run(task: str, tmp_path: Path, train_device: torch.device) -> None:
    """As tests/test_engine_trainer.py::test_resume_reproduces_the_uninterrupted_run, with
    ``train.fast`` (bf16 autocast where native, NHWC, fused optimizers): losses after the
    resume point and the exported weights equal the uninterrupted run's, bit for bit."""
    # a constant schedule: the interrupted run is made with max_steps=3, and pix2pix's linear decay spans max_steps
    extra = ["train.max_steps=6", "train.ckpt_every=3", "train.log_every=1", "train.ema_decay=0.9", "sched={}"] + (
        ["train.deterministic=true"] if train_device.type == "cuda" else [])
    Trainer(_cfg(task, tmp_path, extra), output_dir=tmp_path / "full").fit()
    part = tmp_path / "part"
    Trainer(_cfg(task, tmp_path, [e for e in extra if "max_steps" not in e] + ["train.max_steps=3"]),
            output_dir=part).fit()
    resumed = Trainer(_cfg(task, tmp_path, extra), output_dir=part, resume=True)
    assert resumed.step == 3 and resumed.plan.fast
    resumed.fit()
    a = {r["step"]: r for r in read_metrics(tmp_path / "full") if "g/total" in r}
    b = {r["step"]: r for r in read_metrics(part) if "g/total" in r}
    assert sorted(b) == list(range(1, 7))
    for step in range(4, 7):
        for k in (k for k in a[step] if not k.startswith("perf/")):  # perf/img_per_s is a timing
            assert a[step][k] == b[step][k], (step, k)
    ea = ckpt.load_tensors(tmp_path / "full" / "export" / "generator.safetensors")
    eb = ckpt.load_tensors(part / "export" / "generator.safetensors")
    assert ea.keys() == eb.keys() and all(torch.equal(ea[k], eb[k]) for k in ea)


def test_cli_fast_flag_and_an_explicit_key_winning(tmp_path: Path, train_device: torch.device,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """``i2i-train --fast`` sets ``train.fast``, prints the plan once, and ``train.channels_last=false`` beats it."""
    args = [str(ROOT / "tasks" / "cgan_mnist.yaml"), "--fast", *QUIET[:-1], "train.max_steps=1", "data.batch_size=8",
            "models.generator.base_channels=8", "models.discriminator.base_channels=8", "train.channels_last=false",
            "--output-dir", str(tmp_path / "run")]
    assert train_main(args) == 0
    out = capsys.readouterr().out
    assert out.count("fast: ") == 1 and "compile off (" in out
    plan = json.loads((tmp_path / "run" / "train_plan.json").read_text())
    assert plan["fast"] and plan["channels_last"] is False
    assert plan["reasons"]["channels_last"] == "train.channels_last=false"
    assert load_config(tmp_path / "run" / "config.yaml").train.fast
