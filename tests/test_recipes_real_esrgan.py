"""The realesr recipe: device-side LR synthesis, the training-pair pool, targets, few-step training and exact resume."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from i2i.config import load_config
from i2i.data.degradations import DegradationConfig, degrade, usm_sharpen
from i2i.engine.tracking import read_metrics
from i2i.engine.trainer import Trainer
from i2i.errors import ConfigError
from i2i.losses.adversarial import AdversarialLoss
from i2i.losses.pixel import L1Loss
from i2i.nn.rrdbnet import RRDBNet
from i2i.nn.unet_discriminator import UNetDiscriminatorSN
from i2i.recipes.real_esrgan import RealESRGAN, TrainingPairPool

ROOT = Path(__file__).resolve().parent.parent
ACC = SimpleNamespace(gather_for_metrics=lambda x: x)


def hr_batch(n: int = 2, size: int = 64) -> torch.Tensor:
    torch.manual_seed(0)
    return F.avg_pool2d(torch.rand(n, 3, size + 4, size + 4), 5, 1)


def test_pool_passes_through_while_filling_then_swaps() -> None:
    pool = TrainingPairPool(4)
    g = torch.Generator().manual_seed(0)
    batches = [{"x": torch.full((2, 1), float(k))} for k in range(4)]
    assert torch.equal(pool(batches[0], g)["x"], batches[0]["x"])
    assert torch.equal(pool(batches[1], g)["x"], batches[1]["x"])
    out = pool(batches[2], g)["x"].flatten().tolist()
    assert set(out) <= {0.0, 1.0}  # two of the four stored pairs come out …
    stored = sorted(pool.items["x"].flatten().tolist())
    assert sorted(stored + out) == [0.0, 0.0, 1.0, 1.0, 2.0, 2.0]  # … and the new batch takes their place
    with pytest.raises(ConfigError, match="multiple of the batch size"):
        TrainingPairPool(5)(batches[3], g)


def test_prepare_batch_synthesizes_aligned_pairs_deterministically() -> None:
    r = RealESRGAN({"pixel": L1Loss()}, scale=4, gt_size=32, queue_size=0, seed=3)
    hr = hr_batch()
    out = r.prepare_batch({"hr": hr, "lr": torch.zeros(2, 3, 16, 16), "index": torch.arange(2)})
    assert out["lr"].shape == (2, 3, 8, 8) and out["hr"].shape == out["hr_usm"].shape == (2, 3, 32, 32)
    assert "index" not in out
    # the LR is degrade(USM(hr)) from the recipe's generator, cropped at the drawn position
    g = torch.Generator().manual_seed(3)
    usm = usm_sharpen(hr)
    lr = degrade(usm, g, DegradationConfig(scale=4))
    top, left = int(torch.randint(16 - 8 + 1, (), generator=g)), int(torch.randint(16 - 8 + 1, (), generator=g))
    assert torch.equal(out["lr"], lr[..., top:top + 8, left:left + 8])
    assert torch.equal(out["hr"], hr[..., 4 * top:4 * top + 32, 4 * left:4 * left + 32])
    assert torch.equal(out["hr_usm"], usm[..., 4 * top:4 * top + 32, 4 * left:4 * left + 32])


def test_train_state_resumes_the_synthesis_exactly() -> None:
    a = RealESRGAN({"pixel": L1Loss()}, scale=4, gt_size=32, queue_size=4)
    b = RealESRGAN({"pixel": L1Loss()}, scale=4, gt_size=32, queue_size=4)
    hr = hr_batch()
    for _ in range(2):
        a.prepare_batch({"hr": hr})
    b.load_train_state({k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in a.train_state().items()})
    for _ in range(2):  # the pool is full now: these come out of it
        x, y = a.prepare_batch({"hr": hr}), b.prepare_batch({"hr": hr})
        assert all(torch.equal(x[k], y[k]) for k in ("lr", "hr", "hr_usm"))


def test_targets_follow_the_usm_flags() -> None:
    torch.manual_seed(0)
    G, D = RRDBNet(scale=4, width=8, num_blocks=1, growth=4), UNetDiscriminatorSN(width=4).eval()
    r = RealESRGAN({"pixel": L1Loss(), "adversarial": AdversarialLoss("vanilla", weight=0.1)}, scale=4, gt_size=32,
                   queue_size=0)
    r.setup({"generator": G, "discriminator": D}, None)
    batch = r.prepare_batch({"hr": hr_batch()})
    out = r(G, batch)
    _, logs = r.g_loss(D, batch, out)
    with torch.no_grad():
        assert torch.allclose(logs["g/pixel"], F.l1_loss(out["fake"], batch["hr_usm"]))  # l1_gt_usm
        _, dl = r.d_loss(D, batch, out)
        assert torch.allclose(dl["d/real"], torch.sigmoid(D(batch["hr"])).mean())  # gan_gt_usm: false
    with pytest.raises(ConfigError, match="degradation.noise_rnge: unknown key"):
        RealESRGAN({"pixel": L1Loss()}, degradation={"noise_rnge": [1, 2]})
    with pytest.raises(ConfigError, match="gt_size: must be a positive multiple of scale 4"):
        RealESRGAN({"pixel": L1Loss()}, gt_size=30)


def test_evaluation_uses_a_fixed_degraded_validation_set() -> None:
    r = RealESRGAN({"pixel": L1Loss()}, scale=4, eval_seed=1)
    hr = hr_batch(2, 32)
    batches = [{"hr": hr, "lr": torch.zeros(2, 3, 8, 8), "index": torch.tensor([5, 9])}]
    first, again = list(r.degraded(batches)), list(r.degraded(batches))
    assert torch.equal(first[0]["lr"], again[0]["lr"])
    ref = degrade(hr[1:2], torch.Generator().manual_seed(1 * 1_000_003 + 9), r.degradation)
    assert torch.equal(first[0]["lr"][1:2], ref)
    G = RRDBNet(scale=4, width=8, num_blocks=1, growth=4)
    metrics = r.evaluate(G, batches, ACC)
    assert {"psnr_y", "bicubic/psnr_y"} <= set(metrics)


TINY = ["logging.tracker=none", "logging.progress=false", "logging.sample_every=0", "eval.every=0",
        "eval.at_end=false", "models.generator.width=8", "models.generator.num_blocks=1", "models.generator.growth=4",
        "data.batch_size=2", "data.patch_size=64", "data.val_patch_size=32", "data.num_workers=0", "data.repeat=1",
        "recipe.gt_size=32", "recipe.queue_size=4", "train.log_every=1", "train.ckpt_every=2"]


def test_few_steps_of_realesrnet_training_and_exact_resume(tmp_path: Path) -> None:
    cfg = load_config(ROOT / "tasks/realesrnet_x4.yaml", TINY + ["train.max_steps=4"])
    assert cfg.optim["generator"]["lr"] == 2.0e-4 and cfg.train.ema_decay == 0.999
    full, part = tmp_path / "full", tmp_path / "part"
    Trainer(cfg, output_dir=full).fit()
    Trainer(load_config(ROOT / "tasks/realesrnet_x4.yaml", TINY + ["train.max_steps=2"]), output_dir=part).fit()
    Trainer(cfg, output_dir=part, resume=True).fit()
    a = {r["step"]: r["g/pixel"] for r in read_metrics(full) if "g/pixel" in r}
    b = {r["step"]: r["g/pixel"] for r in read_metrics(part) if "g/pixel" in r}
    assert sorted(a) == [1, 2, 3, 4] and all(v > 0 for v in a.values())
    # steps 3, 4 draw from the pool filled in steps 1, 2 and from the restored degradation stream
    assert [b[s] for s in (3, 4)] == [a[s] for s in (3, 4)]


def test_few_steps_of_realesrgan_training(tmp_path: Path) -> None:
    """The GAN stage: L1 + perceptual (random-weight VGG here) + GAN against the U-Net discriminator."""
    over = TINY + ["train.max_steps=2", "models.discriminator.width=4", "losses.content.weights=null"]
    cfg = load_config(ROOT / "tasks/realesrgan_x4.yaml", over)
    assert cfg.losses["content"]["layers"] == "realesrgan" and cfg.losses["adversarial"]["weight"] == 0.1
    Trainer(cfg, output_dir=tmp_path).fit()
    rows = [r for r in read_metrics(tmp_path) if "g/total" in r]
    assert [r["step"] for r in rows] == [1, 2]
    for r in rows:
        assert {"g/pixel", "g/content", "g/adv", "d/real", "d/fake", "d/loss"} <= set(r)
        assert r["g/total"] == pytest.approx(r["g/pixel"] + r["g/content"] + r["g/adv"], rel=1e-5)


def test_export_meta_names_the_degradation_and_the_input_multiple() -> None:
    for scale, multiple in ((4, 1), (2, 2), (1, 4)):
        r = RealESRGAN({"pixel": L1Loss()}, scale=scale, gt_size=32)
        r.setup({"generator": RRDBNet(scale=scale, width=4, num_blocks=0, growth=2)}, None)
        meta = r.export_meta()
        assert meta["scale"] == scale and meta["multiple"] == multiple and meta["degradation"] == "realesrgan"


def _photos_and_pairs(tmp: Path) -> tuple[Path, Path]:
    """Two HR photos (photos/) and two real LR/HR pairs (pairs/hr, pairs/lr), 64² HR at ×4."""
    import numpy as np

    from i2i.data.io import save_image

    rng = np.random.default_rng(0)
    photos, pairs = tmp / "photos", tmp / "pairs"
    for d in (photos, pairs / "hr", pairs / "lr"):
        d.mkdir(parents=True)
    for k in range(2):
        save_image(photos / f"p{k}.png", rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
        save_image(pairs / "hr" / f"q{k}.png", rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
        save_image(pairs / "lr" / f"q{k}.png", rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    return photos, pairs


def test_sr_realworld_mixes_photos_and_real_pairs(tmp_path: Path) -> None:
    from i2i.data.io import read_image
    from i2i.data.super_resolution import SRRealWorld

    photos, pairs = _photos_and_pairs(tmp_path)
    ds = SRRealWorld(str(photos), "train", paired_root=str(pairs), patch_size=32, repeat=2, paired_repeat=3)
    assert len(ds) == 2 * 2 + 2 * 3 and ds.names == ["p0", "p1", "q0", "q1"]
    flags = [bool(ds[i]["paired"]) for i in range(len(ds))]
    assert flags == [False] * 4 + [True] * 6
    item = ds[4]  # the first pair, cropped at one aligned position: its LR is the file's own pixels
    assert item["lr"].shape == (3, 8, 8) and item["hr"].shape == (3, 32, 32) and int(item["index"]) == 2
    lr_file = torch.from_numpy(read_image(pairs / "lr" / "q0.png").copy()).permute(2, 0, 1).float() / 255
    windows = lr_file.unfold(1, 8, 1).unfold(2, 8, 1)  # every 8×8 window of the LR file (all 8 orientations checked)
    found = any(torch.equal(torch.rot90(o, r, (1, 2)), windows[:, a, b]) for a in range(9) for b in range(9)
                for o in (item["lr"], item["lr"].transpose(1, 2)) for r in range(4))
    assert found
    assert torch.equal(ds[(5, 7)]["lr"], ds[(5, 7)]["lr"])  # (index, seed): deterministic
    only_pairs = SRRealWorld(None, "train", paired_root=str(pairs), patch_size=32)
    assert only_pairs.names == ["q0", "q1"] and all(bool(only_pairs[i]["paired"]) for i in range(2))
    with pytest.raises(ConfigError, match="no such folder"):
        SRRealWorld(str(photos), "train", paired_root=str(tmp_path / "missing"), patch_size=32)


def test_prepare_batch_keeps_a_real_pairs_lr_and_degrades_only_the_photos() -> None:
    r = RealESRGAN({"pixel": L1Loss()}, scale=4, gt_size=32, queue_size=0, seed=5, gt_usm=False)
    hr = hr_batch(3)
    own_lr = torch.rand(3, 3, 16, 16)
    paired = torch.tensor([False, True, False])
    out = r.prepare_batch({"hr": hr, "lr": own_lr, "paired": paired, "index": torch.arange(3)})
    assert "paired" not in out and "index" not in out
    g = torch.Generator().manual_seed(5)
    expect = own_lr.clone()
    expect[[0, 2]] = degrade(hr[[0, 2]], g, DegradationConfig(scale=4))  # only the photos draw from the stream
    top, left = int(torch.randint(9, (), generator=g)), int(torch.randint(9, (), generator=g))
    assert torch.equal(out["lr"], expect[..., top:top + 8, left:left + 8])
    assert torch.equal(out["lr"][1], own_lr[1, :, top:top + 8, left:left + 8])


def test_a_small_gt_size_warns_of_the_known_collapse(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="i2i.recipes.real_esrgan"):
        RealESRGAN({"pixel": L1Loss()}, scale=4, gt_size=64)
    assert "gt_size 64 is below 128" in caplog.text and "#793" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="i2i.recipes.real_esrgan"):
        RealESRGAN({"pixel": L1Loss()}, scale=4, gt_size=128)
    assert caplog.text == ""


def test_fine_tune_a_compact_file_on_photos_and_pairs_and_export_it_back(tmp_path: Path) -> None:
    """The README's fine-tune command in small: a realesr-general-x4v3-layout file (`params`), HR photos mixed
    with real pairs (sr_realworld), two steps, exported back with --format peer and read by spandrel."""
    from spandrel import ModelLoader

    from i2i.cli import run
    from i2i.commands import export_main
    from i2i.inference import load_model
    from i2i.nn.srvgg import SRVGGNetCompact

    photos, pairs = _photos_and_pairs(tmp_path)
    torch.manual_seed(2)
    peer = tmp_path / "realesr-general-x4v3.pth"
    torch.save({"params": SRVGGNetCompact(scale=4, width=8, num_conv=2).state_dict()}, peer)
    over = [o for o in TINY if not o.startswith("models.generator")] + [
        "models.generator={type: srvgg_compact, scale: 4, width: 8, num_conv: 2}", f"train.init.generator={peer}",
        "data.type=sr_realworld", f"data.root={photos}", f"data.paired_root={pairs}", "data.val_root=null",
        "data.patch_size=32", "train.max_steps=2"]
    out_dir = tmp_path / "run"
    Trainer(load_config(ROOT / "tasks/realesrnet_x4.yaml", over), output_dir=out_dir).fit()
    tuned = load_model(out_dir, device="cpu").generator
    back = tmp_path / "tuned.pth"
    assert run(export_main, [str(out_dir), "--format", "peer", "-o", str(back)]) == 0
    x = torch.rand(1, 3, 10, 12)
    with torch.no_grad():
        assert (ModelLoader().load_from_file(back)(x) - tuned(x).clamp(0, 1)).abs().max().item() <= 1e-5
