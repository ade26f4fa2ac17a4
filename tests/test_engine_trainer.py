"""i2i.engine.trainer on real digit data: few-step runs, exact resume, checkpoints, non-finite handling, the sampler.

The step itself: tests/test_engine_step.py; the saved-run format: tests/test_runs.py; trackers: tests/test_engine_tracking.py."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from i2i.config import load_config
from i2i import runs as ckpt
from i2i.engine.tracking import read_metrics
from i2i.engine.trainer import ResumableBatchSampler, Trainer, TrainingError
from i2i.errors import CheckpointError, ConfigError

ROOT = Path(__file__).resolve().parent.parent
FAST = ["logging.tracker=none", "logging.progress=false", "eval.every=0", "eval.at_end=false", "logging.sample_every=0",
        "models.generator.base_channels=16", "models.discriminator.base_channels=16", "data.batch_size=16"]


def train(task: str, out: Path, extra: list[str], resume: bool | str | None = None) -> Trainer:
    cfg = load_config(ROOT / "tasks" / f"{task}.yaml", FAST + extra)
    t = Trainer(cfg, output_dir=out, resume=resume)
    t.fit()
    return t


def test_resume_reproduces_the_uninterrupted_run(tmp_path: Path, train_device: torch.device) -> None:
    """Same seed: losses logged after the resume point equal the uninterrupted run's, bit for bit.
    On CUDA with ``train.deterministic`` (cuDNN/cuBLAS pick run-dependent kernels otherwise)."""
    extra = ["train.max_steps=12", "train.ckpt_every=6", "train.log_every=1", "train.ema_decay=0.9",
             "train.d_steps=2"] + (["train.deterministic=true"] if train_device.type == "cuda" else [])
    full = tmp_path / "full"
    train("acgan_mnist", full, extra)
    part = tmp_path / "part"
    train("acgan_mnist", part, ["train.max_steps=6"] + [e for e in extra if "max_steps" not in e])
    # continue the 6-step run to 12 (the schedule length is part of the config, so resume with the full one)
    cfg = load_config(ROOT / "tasks/acgan_mnist.yaml", FAST + extra)
    resumed = Trainer(cfg, output_dir=part, resume=True)
    assert resumed.acc.device.type == train_device.type
    resumed.fit()
    a = {r["step"]: r for r in read_metrics(full) if "g/total" in r}
    b = {r["step"]: r for r in read_metrics(part) if "g/total" in r}
    assert sorted(b) == list(range(1, 13))
    for step in range(7, 13):
        for k in ("g/total", "d/loss", "d/real", "g/aux"):
            assert a[step][k] == b[step][k], (step, k)
    ea = ckpt.load_tensors(full / "export" / "generator.safetensors")
    eb = ckpt.load_tensors(part / "export" / "generator.safetensors")
    assert all(torch.equal(ea[k], eb[k]) for k in ea)


def test_deterministic_option_sets_the_kernels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    try:
        train("cgan_mnist", tmp_path, ["train.max_steps=1", "train.deterministic=true"])
        import os

        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
        assert not torch.backends.cudnn.benchmark
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[1], before[2]


# Tensor methods that read a tensor's value on the host: on a GPU each one waits for the device.
HOST_READS = {"item", "tolist", "__bool__", "__float__", "__int__", "__index__", "numpy", "cpu"}
SYNC_FREE = {  # tiny versions of one recipe per family; EMA and grad clipping on
    "acgan_mnist": FAST + ["train.ema_decay=0.9", "train.grad_clip=1.0"],
    "pix2pix_sketch2photo": ["models.generator={type: unet, in_channels: 1, num_downs: 4, base_channels: 8}",
                             "models.discriminator.base_channels=8", "models.discriminator.n_layers=1",
                             "data.load_size=40", "data.crop_size=32", "data.repeat=2", "data.batch_size=2"],
    "segmentation_adversarial": ["models.generator.width=4", "models.generator.depth=2", "data.size=24",
                                 "data.num_images=8", "data.batch_size=4"],
    "srresnet": ["data.batch_size=2", "data.patch_size=16", "data.val_patch_size=32", "models.generator.width=8",
                 "models.generator.num_blocks=1", "train.init={}"],
}


@pytest.mark.parametrize("task", sorted(SYNC_FREE))
def test_training_steps_never_wait_for_the_device_except_on_logging_steps(
        task: str, tmp_path: Path, train_device: torch.device) -> None:
    """Every host read of a tensor's value (``.item()``, ``.tolist()``, ``bool(t)``, ``float(t)``,
    ``.cpu()``…) is recorded, through a TorchFunctionMode, with the step it happened in (reads inside
    the DataLoader are host-side work on CPU tensors and are not counted). Steps 0–4 of 6 are not
    logging steps (log_every=6) and must have none; the logging step must have some: the detector works."""
    import traceback

    from torch.overrides import TorchFunctionMode

    quiet = ["logging.tracker=none", "logging.progress=false", "eval.every=0", "eval.at_end=false",
             "logging.sample_every=0", "train.max_steps=6", "train.log_every=6", "train.ckpt_every=0"]
    t = Trainer(load_config(ROOT / "tasks" / f"{task}.yaml", quiet + SYNC_FREE[task]), output_dir=tmp_path)
    t.finish = lambda: None  # the end-of-run save reads tensors by design
    seen: dict[int, list[str]] = {}

    class HostReads(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
            if getattr(func, "__name__", "") in HOST_READS:
                stack = traceback.extract_stack()[:-1]
                if not any("torch/utils/data" in f.filename for f in stack):
                    where = [f"{Path(f.filename).name}:{f.lineno}" for f in stack if "site-packages" not in f.filename]
                    seen.setdefault(t.step, []).append(f"{func.__name__} at {' <- '.join(where[-1:-4:-1])}")
            return func(*args, **(kwargs or {}))

    with HostReads():
        t.fit()
    assert not {s: v for s, v in seen.items() if s < 5}, {s: sorted(set(v)) for s, v in seen.items() if s < 5}
    assert seen.get(6), "the logging step reads the logged values: the detector saw nothing"


def test_checkpoints_keep_last_and_refuse_incompatible_resume(tmp_path: Path) -> None:
    train("cgan_mnist", tmp_path, ["train.max_steps=8", "train.ckpt_every=2", "train.keep_last=2"])
    names = [p.name for p in ckpt.list_checkpoints(tmp_path)]
    assert names == ["step_00000006", "step_00000008"]
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))
    cfg = load_config(ROOT / "tasks/cgan_mnist.yaml", FAST + ["train.max_steps=10", "models.generator.z_dim=64"])
    with pytest.raises(CheckpointError, match=r"different architecture; differing keys: models.generator.z_dim"):
        Trainer(cfg, output_dir=tmp_path, resume=True)
    cfg = load_config(ROOT / "tasks/cgan_mnist.yaml", FAST + ["train.max_steps=10"])
    with pytest.raises(CheckpointError, match="already holds checkpoints: add --resume"):
        Trainer(cfg, output_dir=tmp_path)


def test_non_finite_losses_stop_the_run_with_a_checkpoint(tmp_path: Path) -> None:
    cfg = load_config(ROOT / "tasks/cgan_mnist.yaml", FAST + ["train.max_steps=20", "train.max_nonfinite=3"])
    t = Trainer(cfg, output_dir=tmp_path)
    real_d_loss = t.recipe.d_loss

    def poisoned(D, batch, out):  # noqa: ANN001
        loss, logs = real_d_loss(D, batch, out)
        return loss * float("nan") if t.step >= 2 else loss, logs

    t.recipe.d_loss = poisoned
    before = {k: v.detach().cpu().clone() for k, v in t.bare["discriminator"].state_dict().items()}
    with pytest.raises(TrainingError, match=r"3 non-finite steps in a row at step 4 .*saved to"):
        t.fit()
    last = ckpt.latest_checkpoint(tmp_path)
    assert last is not None
    saved = ckpt.sub_state(ckpt.load_tensors(last / "models.safetensors"), "discriminator")
    assert all(torch.isfinite(v.float()).all() for v in saved.values())
    assert any(not torch.equal(before[k], saved[k]) for k in before)  # the two good steps were kept


def test_sampler_is_sharded_and_restartable() -> None:
    full = ResumableBatchSampler(10, 3, seed=1)
    it = iter(full)
    first = [next(it) for _ in range(7)]
    again = iter(ResumableBatchSampler(10, 3, seed=1, start=4))
    assert [next(again) for _ in range(3)] == first[4:]
    r0 = iter(ResumableBatchSampler(10, 2, seed=1, rank=0, world=2))
    r1 = iter(ResumableBatchSampler(10, 2, seed=1, rank=1, world=2))
    a, b = next(r0), next(r1)
    assert not {i for i, _ in a} & {i for i, _ in b}
    # a global batch larger than the data set is refused (it used to wrap around, and 10**9 never finished)
    with pytest.raises(ConfigError, match=r"^data.batch_size: 8 is more than the 3 training samples; use at most 3$"):
        ResumableBatchSampler(3, 8, seed=0)
    with pytest.raises(ConfigError, match=r"^data.batch_size: 2 × 2 processes is more than the 3 training samples"):
        ResumableBatchSampler(3, 2, seed=0, world=2)
    exact = iter(ResumableBatchSampler(3, 3, seed=0))  # one batch per epoch, a fresh permutation each time
    assert sorted(i for i, _ in next(exact)) == [0, 1, 2] and sorted(i for i, _ in next(exact)) == [0, 1, 2]


def test_a_batch_larger_than_the_training_set_is_refused_before_training(tmp_path: Path) -> None:
    cfg = load_config(ROOT / "tasks/cgan_mnist.yaml", FAST + ["train.max_steps=1", "data.batch_size=1000000000"])
    with pytest.raises(ConfigError, match=r"^data.batch_size: 1000000000 is more than the \d+ training samples"):
        Trainer(cfg, output_dir=tmp_path)


def test_end_of_run_artifacts(tiny_acgan_run: Path) -> None:
    run = tiny_acgan_run
    assert (run / "plots" / "loss_curves.png").stat().st_size > 1000
    assert (run / "plots" / "d_scores.png").stat().st_size > 1000
    info = json.loads((run / "export" / "config.json").read_text())
    assert info["task"] == "digits" and info["models"]["generator"]["type"] == "dcgan"
    assert info["meta"]["num_classes"] == 10


def test_non_finite_reload_policy_goes_back_and_lowers_the_learning_rate(tmp_path: Path) -> None:
    cfg = load_config(ROOT / "tasks/cgan_mnist.yaml", FAST + ["train.max_steps=12", "train.max_nonfinite=2",
                                                              "train.ckpt_every=4", "train.on_nonfinite=reload",
                                                              "train.log_every=1"])
    t = Trainer(cfg, output_dir=tmp_path)
    real_g_loss = t.recipe.g_loss
    poisoned_steps = {6, 7}  # two bad steps in a row once, at steps 6 and 7 (0-based)
    calls = {"n": 0}

    def poisoned(D, batch, out):  # noqa: ANN001
        loss, logs = real_g_loss(D, batch, out)
        bad = t.step in poisoned_steps and calls["n"] < 2
        if bad:
            calls["n"] += 1
        return loss * float("inf") if bad else loss, logs

    t.recipe.g_loss = poisoned
    t.fit()
    assert t.step == 12 and t.lr_scale == 0.5
    rows = {r["step"]: r for r in read_metrics(tmp_path) if "lr/generator" in r}
    assert rows[4]["lr/generator"] == pytest.approx(2e-4)
    assert rows[12]["lr/generator"] == pytest.approx(1e-4)
    state = ckpt.safe_torch_load(ckpt.latest_checkpoint(tmp_path) / "state.pt")
    assert state["lr_scale"] == 0.5


def test_super_resolution_resume_is_exact(tmp_path: Path) -> None:
    """Random crops and flips come from per-sample seeds: a resumed SR run sees the same patches."""
    tiny = ["data.batch_size=2", "data.patch_size=16", "data.val_patch_size=32", "models.generator.width=8",
            "models.generator.num_blocks=1", "logging.tracker=none", "logging.progress=false", "eval.every=0",
            "eval.at_end=false", "logging.sample_every=0", "train.log_every=1", "train.ckpt_every=3",
            "data.num_workers=1"]
    full, part = tmp_path / "full", tmp_path / "part"
    Trainer(load_config(ROOT / "tasks/srresnet.yaml", tiny + ["train.max_steps=6"]), output_dir=full).fit()
    Trainer(load_config(ROOT / "tasks/srresnet.yaml", tiny + ["train.max_steps=3", "data.num_workers=0"]),
            output_dir=part).fit()
    Trainer(load_config(ROOT / "tasks/srresnet.yaml", tiny + ["train.max_steps=6"]), output_dir=part, resume=True).fit()
    a = {r["step"]: r["g/pixel"] for r in read_metrics(full) if "g/pixel" in r}
    b = {r["step"]: r["g/pixel"] for r in read_metrics(part) if "g/pixel" in r}
    assert [b[s] for s in (4, 5, 6)] == [a[s] for s in (4, 5, 6)]


def test_a_recipes_training_state_is_checkpointed_per_process_and_restored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``Recipe.train_state`` (e.g. CycleGAN's image pools) goes into ``rng_<rank>.pt`` with each
    checkpoint and comes back through ``load_train_state`` on resume; a fresh run restores nothing."""
    from i2i.recipes.digits import DigitsRecipe

    given: list[dict] = []
    monkeypatch.setattr(DigitsRecipe, "train_state", lambda self: {"seen": torch.arange(3) * 7, "n": 5}, raising=False)
    monkeypatch.setattr(DigitsRecipe, "load_train_state", lambda self, state: given.append(state), raising=False)
    run = tmp_path / "run"
    train("cgan_mnist", run, ["train.max_steps=2", "train.ckpt_every=1"])
    assert given == []  # a fresh run restores nothing
    saved = ckpt.safe_torch_load(run / "checkpoints" / "step_00000002" / "rng_0.pt")
    assert torch.equal(saved["recipe"]["seen"], torch.tensor([0, 7, 14])) and saved["recipe"]["n"] == 5
    train("cgan_mnist", run, ["train.max_steps=3"], resume=True)
    assert len(given) == 1 and torch.equal(given[0]["seen"], torch.tensor([0, 7, 14])) and given[0]["n"] == 5


@pytest.mark.parametrize("first", [False, True])
def test_logging_first_step_logs_step_one_too(tmp_path: Path, first: bool) -> None:
    """``logging.first_step`` (on in srgan.yaml: the content/adversarial balance before training moves it)."""
    train("cgan_mnist", tmp_path, ["train.max_steps=6", "train.log_every=4", f"logging.first_step={str(first).lower()}"])
    assert [r["step"] for r in read_metrics(tmp_path) if "g/total" in r] == ([1, 4, 6] if first else [4, 6])
    assert load_config(ROOT / "tasks/srgan.yaml").logging.first_step
