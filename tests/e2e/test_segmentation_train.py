"""End to end: both segmentation YAMLs validate, and, shrunk, train a few steps through the
engine on the embedded mosaic, evaluate, and export a segmentor that loads from its config."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import i2i.data.segmentation  # noqa: F401  (registers the datasets until i2i.data imports them)
import i2i.nn.seg_adversary  # noqa: F401
import i2i.nn.segmentor  # noqa: F401
import i2i.recipes.segmentation  # noqa: F401

from i2i import config, inference
from i2i.data.io import save_image
from i2i.data.segmentation import pascal_palette
from i2i.engine import trainer

TASKS = Path(__file__).resolve().parents[2] / "tasks"
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
    assert adv.models["discriminator"]["type"] == "luc_stanford"  # the paper's Stanford Background adversary
    # the two runs differ only by the adversary
    assert adv.models["generator"] == base.models["generator"] and adv.data == base.data
    assert adv.optim["generator"] == base.optim["generator"] and adv.train == base.train


@pytest.mark.parametrize("name", ["segmentation_adversarial", "segmentation_baseline"])
def test_few_steps_through_the_engine(tmp_path: Path, name: str) -> None:
    cfg = config.load_config(TASKS / f"{name}.yaml", TINY)
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


def test_evaluate_after_fit_appends_a_row(tmp_path: Path) -> None:
    """Trainer.evaluate() still works once fit() has finished (metrics.jsonl stays writable)."""
    cfg = config.load_config(TASKS / "segmentation_baseline.yaml", TINY + ["eval.every=0"])
    run = trainer.Trainer(cfg, output_dir=tmp_path / "run")
    run.fit()
    log = tmp_path / "run" / "metrics.jsonl"
    before = log.read_text().splitlines()
    again = run.evaluate()
    after = log.read_text().splitlines()
    assert 0.0 <= again["eval/miou"] <= 1.0 and len(after) == len(before) + 1
    assert json.loads(after[-1])["eval/miou"] == again["eval/miou"]


# --- the on-disk layouts, a few steps each (data written here; see tests/test_data_segmentation.py)
def _photo(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _labels(h: int, w: int, values: list[int], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).choice(np.asarray(values, dtype=np.uint8), size=(h, w))


def _voc(root: Path) -> list[str]:
    base = root / "VOC2012"
    (base / "ImageSets" / "Segmentation").mkdir(parents=True)
    names = [f"2007_00000{i}" for i in range(3)]
    for i, name in enumerate(names):
        save_image(base / "JPEGImages" / f"{name}.jpg", _photo(20, 26, i))
        save_image(base / "SegmentationClass" / f"{name}.png", _labels(20, 26, [0, 5, 15, 255], i),
                   palette=np.asarray(pascal_palette(256)))
    (base / "ImageSets" / "Segmentation" / "train.txt").write_text("\n".join(names[:2]) + "\n")
    (base / "ImageSets" / "Segmentation" / "val.txt").write_text(names[2] + "\n")
    return [f"data={{type: voc, root: '{base}', batch_size: 2, val_split: val, crop_size: 16}}", "recipe.num_classes=21",
            "models.generator.num_classes=21", "models.discriminator.num_classes=21"]


def _folder(root: Path) -> list[str]:
    root.mkdir(parents=True)
    (root / "classes.yaml").write_text("classes:\n  - {name: sky, color: [0, 0, 255]}\n"
                                       "  - {name: road, color: [128, 64, 128], value: 7}\n")
    for split, seeds in (("train", (0, 1)), ("val", (2,))):
        for s in seeds:
            save_image(root / "images" / split / f"im{s}.png", _photo(18, 22, s))
            save_image(root / "masks" / split / f"im{s}.png", _labels(18, 22, [0, 7, 255], s))
    return [f"data={{type: seg_folder, root: '{root}', batch_size: 2, val_split: val, crop_size: 16}}", "recipe.num_classes=2",
            "models.generator.num_classes=2", "models.discriminator.num_classes=2"]


@pytest.mark.parametrize("layout", ["voc", "seg_folder"])
def test_few_steps_on_disk_layouts(tmp_path: Path, layout: str) -> None:
    """VOC and folder layouts through the adversarial recipe: the class table reaches the export."""
    data = (_voc if layout == "voc" else _folder)(tmp_path / "data")
    # the whole data node is replaced: the mosaic's own keys (size, seed, ...) do not apply
    tiny = [o for o in TINY if not o.startswith("data.")]
    cfg = config.load_config(TASKS / "segmentation_adversarial.yaml", tiny + data)
    trainer.Trainer(cfg, output_dir=tmp_path / "run").fit()
    rows = [json.loads(ln) for ln in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any("d/loss" in r for r in rows) and 0.0 <= [r for r in rows if "eval/miou" in r][-1]["eval/miou"] <= 1.0
    model = inference.load_model(tmp_path / "run")
    want = ("background", "aeroplane") if layout == "voc" else ("sky", "road")
    assert tuple(model.meta["class_names"][:2]) == want
    with torch.no_grad():
        y = model.generator(torch.rand(1, 3, 20, 26))
    assert y.shape[:2] == (1, model.meta["num_classes"]) and torch.isfinite(y).all()


def test_resume_is_exact_with_augmentation(tmp_path: Path) -> None:
    """Scale, crop and flip come from per-sample seeds (torchvision v2 under a seeded generator):
    a run resumed at step 3, loading in-process, logs the losses of an uninterrupted run that
    loads in a worker process, bit for bit."""
    tiny = [t for t in TINY if not t.startswith(("train.max_steps", "train.ckpt_every", "eval.every",
                                                 "logging.sample_every"))]
    tiny += ["data.crop_size=20", "data.scale=[0.5, 1.5]", "train.ckpt_every=3",
             "eval.every=0", "eval.at_end=false", "logging.sample_every=0",
             # constant lr: the YAML's schedule spans max_steps, which differs between the runs
             "sched.generator={type: constant}", "sched.discriminator={type: constant}"]
    full, part = tmp_path / "full", tmp_path / "part"

    def fit(out: Path, steps: int, workers: int, resume: bool = False) -> None:
        cfg = config.load_config(TASKS / "segmentation_adversarial.yaml",
                                 tiny + [f"train.max_steps={steps}", f"data.num_workers={workers}"])
        trainer.Trainer(cfg, output_dir=out, resume=resume).fit()

    fit(full, 6, 1)
    fit(part, 3, 0)
    fit(part, 6, 0, resume=True)

    def losses(run: Path) -> dict[int, tuple[float, float]]:
        rows = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
        return {r["step"]: (r["g/ce"], r["d/loss"]) for r in rows if "g/ce" in r}

    a, b = losses(full), losses(part)
    assert [b[s] for s in (4, 5, 6)] == [a[s] for s in (4, 5, 6)]
