"""End to end: both segmentation YAMLs validate, and, shrunk, train a few steps through the
engine on the embedded mosaic, evaluate, and export a segmentor that loads from its config."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import i2i.data.segmentation  # noqa: F401  (registers the datasets until i2i.data imports them)
import i2i.nn.seg_adversary  # noqa: F401
import i2i.nn.segmentor  # noqa: F401
import i2i.recipes.segmentation  # noqa: F401

from i2i import config, inference
from i2i.engine import trainer

TASKS = Path(__file__).resolve().parents[1] / "tasks"
TINY = [
    "models.generator.width=4", "models.generator.depth=2", "data.size=24", "data.num_images=8",
    "data.batch_size=4", "train.max_steps=2", "train.log_every=1", "train.ckpt_every=2", "eval.every=2",
    "eval.batch_size=4", "logging.tracker=none", "logging.sample_every=2", "logging.num_samples=2",
    "logging.progress=false",
]


def test_yaml_files_validate() -> None:
    adv = config.load_config(TASKS / "segmentation_adversarial.yaml")
    base = config.load_config(TASKS / "segmentation_baseline.yaml")
    assert adv.models["discriminator"]["encoding"] == "scaling" and "discriminator" not in base.models
    # the two runs differ only by the adversary
    assert adv.models["generator"] == base.models["generator"] and adv.data == base.data
    assert adv.optim["generator"] == base.optim["generator"] and adv.train == base.train


@pytest.mark.parametrize("name", ["segmentation_adversarial", "segmentation_baseline"])
def test_few_steps_through_the_engine(tmp_path: Path, name: str) -> None:
    torch.set_num_threads(1)
    extra = ["models.discriminator.width=4"] if name == "segmentation_adversarial" else []
    cfg = config.load_config(TASKS / f"{name}.yaml", TINY + extra)
    run = trainer.Trainer(cfg, output_dir=tmp_path / "run")
    run.fit()
    assert any((tmp_path / "run" / "samples").glob("*.png"))
    rows = [json.loads(ln) for ln in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    metrics = [r for r in rows if "eval/miou" in r][-1]
    assert 0.0 <= metrics["eval/pixel_acc"] <= 1.0 and "eval/iou/coffee_square" in metrics
    train_keys = set().union(*(r for r in rows if "g/total" in r))
    want = {"g/ce", "g/adv", "g/total"} | ({"d/real", "d/fake", "d/loss"} if "adversarial" in name else set())
    assert want <= train_keys
    model = inference.load_model(tmp_path / "run")
    assert model.task == "seg" and model.meta["class_names"][0] == "wall" and model.meta["num_classes"] == 7
    with torch.no_grad():
        y = model.generator.eval()(torch.rand(1, 3, 21, 30))
    assert y.shape == (1, 7, 21, 30) and torch.isfinite(y).all()
