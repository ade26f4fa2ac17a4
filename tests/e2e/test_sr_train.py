"""End to end: tasks/srresnet.yaml and tasks/srgan.yaml, shrunk, train a few real steps
through the engine on the embedded photos, evaluate, and export a model that loads.

SRGAN runs offline: its VGG19 content loss reads a local file that the test writes from
a randomly initialised ``torchvision.models.vgg19(weights=None)`` (only the ``features.*``
convolutions, the part the loss uses, to keep the file at 80 MB instead of 550 MB). Its
generator starts, as the YAML says, from the shipped reduced SRResNet (``srresnet_x4_small``),
so the test also checks that those weights fit the YAML's generator spec.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import i2i  # noqa: F401  (registers every network, loss, dataset and recipe)
from i2i import config, inference
from i2i.engine import trainer

TASKS = Path(__file__).resolve().parents[2] / "tasks"
COMMON = [
    "data.batch_size=2", "data.num_workers=0", "data.repeat=1", "data.val_patch_size=32",
    "train.max_steps=3", "train.log_every=1", "train.ckpt_every=3", "eval.every=3", "eval.max_batches=1",
    "eval.batch_size=2", "logging.tracker=none", "logging.sample_every=3", "logging.num_samples=2",
    "logging.progress=false",
]


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]


def test_srresnet_yaml_few_steps(tmp_path: Path) -> None:
    cfg = config.load_config(TASKS / "srresnet.yaml", COMMON + [
        "models.generator.width=8", "models.generator.num_blocks=1", "data.patch_size=16"])
    run = trainer.Trainer(cfg, output_dir=tmp_path / "run").fit()
    rows = _metrics(run)
    assert [r["step"] for r in rows if "g/pixel" in r] == [1, 2, 3]
    assert all(torch.isfinite(torch.tensor(r["g/pixel"])) for r in rows if "g/pixel" in r)
    ev = [r for r in rows if "eval/psnr_y" in r][-1]
    model = inference.load_model(run, task="sr", device="cpu")
    # the logged PSNR-Y, recomputed by hand (numpy) from the export on the same 2 validation images:
    # 8-bit rounding, BT.601 studio-swing Y, a 4-pixel border crop, mean of per-image PSNRs
    from i2i.apps.common import dataset_from_config

    val = dataset_from_config(model.config, "val")
    items = [val[i] for i in range(2)]
    with torch.no_grad():
        sr = model.generator(torch.stack([it["lr"] for it in items])).clamp(0, 1)

    def y8(x: torch.Tensor) -> np.ndarray:
        q = np.round(x.double().numpy() * 255).clip(0, 255) / 255
        return (16 + 65.481 * q[0] + 128.553 * q[1] + 24.966 * q[2])[4:-4, 4:-4]

    by_hand = np.mean([10 * np.log10(255**2 / np.mean((y8(s) - y8(it["hr"])) ** 2)) for s, it in zip(sr, items)])
    assert ev["eval/psnr_y"] == pytest.approx(by_hand, abs=1e-3)
    assert ev["eval/bicubic/psnr_y"] > 15 and ev["eval/bicubic/psnr_y"] != pytest.approx(by_hand, abs=0.05)
    assert "discriminator" not in model.config["models"] and model.generator.scale == 4
    from i2i.pipelines.super_resolution import upscale

    assert upscale(model, torch.rand(1, 3, 5, 6)).shape == (20, 24, 3)


SMALL = inference.SHIPPED_MODELS["srresnet_x4_small"]


@pytest.mark.skipif(not (SMALL / "config.json").is_file(), reason="shipped weights not present")
def test_srgan_yaml_few_steps_from_shipped_srresnet(tmp_path: Path) -> None:
    import torchvision
    from safetensors.torch import save_file

    torch.manual_seed(0)
    vgg = torchvision.models.vgg19(weights=None).state_dict()
    vgg_file = tmp_path / "vgg19_random.safetensors"
    save_file({k: v.contiguous() for k, v in vgg.items() if k.startswith("features.")}, str(vgg_file))
    del vgg

    shipped = json.loads((SMALL / "config.json").read_text())["models"]["generator"]
    assert config.load_config(TASKS / "srgan.yaml").models["generator"] == shipped  # init would fail otherwise

    cfg = config.load_config(TASKS / "srgan.yaml", COMMON + [
        "data.patch_size=24", f"losses.content.weights={vgg_file}",
        "models.discriminator.base_channels=8", "models.discriminator.pool_size=2"])
    t = trainer.Trainer(cfg, output_dir=tmp_path / "run")
    ref = inference.load_model(SMALL, task="sr", device="cpu").generator.state_dict()
    got = t.bare["generator"].state_dict()
    assert all(torch.equal(got[k].cpu(), v) for k, v in ref.items())  # train.init took the shipped weights
    run = t.fit()
    rows = _metrics(run)
    steps = [r for r in rows if "g/content" in r]
    assert len(steps) == 3
    for r in steps:
        for k in ("g/content", "g/adv", "d/real", "d/fake", "d/loss"):
            assert torch.isfinite(torch.tensor(r[k])), k
    assert any("eval/bicubic/psnr_y" in r for r in rows)
    model = inference.load_model(run, task="sr", with_discriminator=True)
    assert model.discriminator is not None and model.generator.scale == 4
