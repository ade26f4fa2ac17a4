"""End to end: tasks/pix2pix_sketch2photo.yaml, shrunk, trains a few steps through the
engine on the embedded photos, evaluates, and exports a model that loads from its config."""
from __future__ import annotations

from pathlib import Path

import torch

import i2i.data.paired  # noqa: F401  (registers photo_sketch until i2i.data imports it)
import i2i.losses.pixel  # noqa: F401
import i2i.nn.patchgan  # noqa: F401
import i2i.nn.unet  # noqa: F401
import i2i.recipes.pix2pix  # noqa: F401

from i2i import config, inference
from i2i.engine import trainer

TASK = Path(__file__).resolve().parents[2] / "tasks" / "pix2pix_sketch2photo.yaml"
TINY = [
    "models.generator={type: unet, in_channels: 1, num_downs: 4, base_channels: 8}",
    "models.discriminator.base_channels=8", "models.discriminator.n_layers=1",
    "data.load_size=40", "data.crop_size=32", "data.repeat=2",
    "train.max_steps=4", "train.log_every=2", "train.ckpt_every=4", "eval.every=4",
    "logging.tracker=none", "logging.sample_every=4", "logging.num_samples=2", "logging.progress=false",
]


def test_yaml_files_validate(tmp_path: Path) -> None:
    cfg = config.load_config(TASK)
    assert cfg.recipe["type"] == "pix2pix" and cfg.losses["pixel"]["weight"] == 100.0
    aligned = TASK.parent / "pix2pix_aligned.yaml"
    assert config.load_config(aligned, [f"data.root={tmp_path}"]).data.type == "aligned"


def test_few_steps_through_the_engine(tmp_path: Path) -> None:
    cfg = config.load_config(TASK, TINY)
    run = trainer.Trainer(cfg, output_dir=tmp_path / "run")
    run.fit()
    assert any((tmp_path / "run" / "samples").glob("*.png"))
    model = inference.load_model(tmp_path / "run")
    assert model.task == "sketch2photo" and model.meta["multiple"] == 16
    from i2i.recipes.pix2pix import pad_predict

    y = pad_predict(model.generator, torch.zeros(1, 1, 20, 36), model.meta["multiple"])
    assert y.shape == (1, 3, 20, 36) and torch.isfinite(y).all()


# --- the two folder layouts, end to end (the embedded photo_sketch one is above) -----------
SMALL_NETS = [
    "models.generator={type: unet, in_channels: 3, out_channels: 3, num_downs: 4, base_channels: 8, max_channels: 32}",
    "models.discriminator.base_channels=8", "models.discriminator.n_layers=1",
    "data.load_size=36", "data.crop_size=32", "data.num_workers=0",
    "train.max_steps=3", "train.log_every=1", "train.ckpt_every=0", "eval.every=0",
    "logging.tracker=none", "logging.sample_every=0", "logging.progress=false",
]


def _rgb(h: int, w: int, seed: int):
    import numpy as np

    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _train_and_load(cfg: config.Config, out: Path) -> inference.LoadedModel:
    trainer.Trainer(cfg, output_dir=out).fit()
    rows = [line for line in (out / "metrics.jsonl").read_text().splitlines() if '"g/l1"' in line]
    assert len(rows) == 3, "one log row per step"
    evals = [line for line in (out / "metrics.jsonl").read_text().splitlines() if '"eval/sharpness"' in line]
    assert evals, "eval.at_end ran on the val split"
    return inference.load_model(out)


def test_aligned_yaml_trains_on_a_tiny_a_b_folder(tmp_path: Path) -> None:
    from i2i.data.io import save_image
    import numpy as np

    for split, n in (("train", 3), ("val", 2)):
        for i in range(n):
            a, b = _rgb(40, 40, i), _rgb(40, 40, 100 + i)
            save_image(tmp_path / "data" / split / f"{i}.png", np.concatenate([a, b], axis=1))  # A|B
    cfg = config.load_config(TASK.parent / "pix2pix_aligned.yaml", [f"data.root={tmp_path / 'data'}", *SMALL_NETS])
    model = _train_and_load(cfg, tmp_path / "run")
    assert model.task == "sketch2photo" and model.meta["in_channels"] == 3 and model.meta["multiple"] == 16


def test_paired_folders_train_end_to_end(tmp_path: Path) -> None:
    from i2i.data.io import save_image

    for split, n in (("train", 3), ("val", 1)):
        for i in range(n):
            save_image(tmp_path / "data" / split / "A" / f"{i}.png", _rgb(36, 44, i))
            save_image(tmp_path / "data" / split / "B" / f"{i}.jpg", _rgb(36, 44, 50 + i))  # other extension
    cfg = config.load_config(TASK.parent / "pix2pix_aligned.yaml",
                             [f"data.root={tmp_path / 'data'}", "data.type=paired_folders", *SMALL_NETS])
    model = _train_and_load(cfg, tmp_path / "run")
    assert model.config["data"]["type"] == "paired_folders"


def test_one_engine_step_runs_each_network_only_as_often_as_the_objective_needs(tmp_path: Path) -> None:
    """No redundant forward passes: per training step G runs once (its output feeds the D step
    detached and the G step attached) and D three times — real and detached fake for D's
    loss, fake again for G's, since D has just been updated (pix2pix's own schedule)."""
    cfg = config.load_config(TASK, TINY + ["train.max_steps=3", "eval.every=0", "eval.at_end=false",
                                           "logging.sample_every=0", "train.ckpt_every=0"])
    run = trainer.Trainer(cfg, output_dir=tmp_path / "run")
    calls = {"generator": 0, "discriminator": 0}
    for slot in calls:
        run.bare[slot].register_forward_hook(lambda *_, slot=slot: calls.__setitem__(slot, calls[slot] + 1))
    run.fit()
    assert calls == {"generator": 3, "discriminator": 9}


def test_resume_is_exact_with_random_jitter(tmp_path: Path) -> None:
    """Crops and flips come from per-sample seeds (torchvision v2 under a seeded generator):
    a run resumed at step 3 logs the losses of the uninterrupted run, bit for bit, although
    one loads in a worker process and the other in-process."""
    import json

    tiny = [t for t in TINY if not t.startswith(("train.max_steps", "train.ckpt_every", "eval.every",
                                                 "logging.sample_every"))]
    tiny += ["train.ckpt_every=3", "train.log_every=1", "eval.every=0", "eval.at_end=false", "logging.sample_every=0",
             "models.generator.dropout=0.0",
             # constant lr: the YAML's schedule spans max_steps, which differs between the runs
             "sched.generator={type: constant}", "sched.discriminator={type: constant}"]
    full, part = tmp_path / "full", tmp_path / "part"
    for out, steps, workers, resume in ((full, 6, 1, False), (part, 3, 0, False), (part, 6, 0, True)):
        cfg = config.load_config(TASK, tiny + [f"train.max_steps={steps}", f"data.num_workers={workers}"])
        trainer.Trainer(cfg, output_dir=out, resume=resume).fit()

    def losses(run: Path) -> dict[int, tuple[float, float]]:
        rows = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
        return {r["step"]: (r["g/l1"], r["d/loss"]) for r in rows if "g/l1" in r}

    a, b = losses(full), losses(part)
    assert [b[s] for s in (4, 5, 6)] == [a[s] for s in (4, 5, 6)]
