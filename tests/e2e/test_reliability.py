"""Issue 15: what a hostile or unlucky user broke in the engine — each test failed before its fix."""
from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from conftest import ROOT, TINY_CGAN, tool
from i2i.config import load_config
from i2i import runs as ckpt
from i2i.engine.tracking import read_metrics
from i2i.engine.trainer import Trainer, TrainingError
from i2i.errors import CheckpointError

FAST = TINY_CGAN


def cfg(*extra: str):  # noqa: ANN201
    return load_config(ROOT / "tasks/cgan_mnist.yaml", FAST + list(extra))


@pytest.fixture
def run(tiny_cgan_run: Path, tmp_path: Path) -> Path:
    """A copy of conftest's 4-step run (checkpoints at 2 and 4)."""
    shutil.copytree(tiny_cgan_run, tmp_path / "run")
    return tmp_path / "run"


def all_weights_finite(files: list[Path]) -> bool:
    return all(torch.isfinite(v.float()).all() for f in files for v in ckpt.load_tensors(f).values())


# ---- bug 3: non-finite weights are never saved ------------------------------------------------
def test_a_diverged_run_never_saves_non_finite_weights(tmp_path: Path) -> None:
    t = Trainer(cfg("train.max_steps=30", "train.ckpt_every=2", "train.log_every=1", "train.max_nonfinite=3",
                    "optim.generator.lr=1.0e+30", "optim.discriminator.lr=1.0e+30"), output_dir=tmp_path)
    with pytest.raises(TrainingError, match=r"non-finite|not finite") as e:
        t.fit()
    assert "non-finite weights not saved" in str(e.value) or "last good state saved to" in str(e.value)
    files = [p / "models.safetensors" for p in ckpt.list_checkpoints(tmp_path)] + list((tmp_path / "export").glob("*.safetensors"))
    assert all_weights_finite(files), str(e.value)
    last = ckpt.latest_checkpoint(tmp_path)
    assert (str(last) in str(e.value)) if last is not None else "no earlier checkpoint" in str(e.value)


def test_save_writes_nothing_for_non_finite_weights(run: Path) -> None:
    t = Trainer(cfg("train.max_steps=6", "train.ckpt_every=2"), output_dir=run, resume=True)
    before = sorted(p.name for p in ckpt.list_checkpoints(run))
    with torch.no_grad():
        next(iter(t.bare["generator"].buffers())).fill_(float("nan"))  # e.g. a BatchNorm running mean
    assert t.save() is None
    assert sorted(p.name for p in ckpt.list_checkpoints(run)) == before
    with pytest.raises(TrainingError, match=r"weights not finite at the end \(step 4\); non-finite weights not saved; "
                                            r"last finite checkpoint: .*step_00000004"):
        t.finish()
    assert all_weights_finite(list((run / "export").glob("*.safetensors")))


# ---- bug 4: reloads compound and are bounded ---------------------------------------------------
def test_non_finite_reloads_compound_and_stop_after_max_reloads(tmp_path: Path) -> None:
    t = Trainer(cfg("train.max_steps=8", "train.ckpt_every=2", "train.log_every=1", "train.max_nonfinite=2",
                    "train.on_nonfinite=reload", "train.max_reloads=3"), output_dir=tmp_path)
    real_g_loss = t.recipe.g_loss
    poisoned = {"n": 0}

    def g_loss(D, batch, out):  # noqa: ANN001  (bad from step 2 on; bounded, so the old endless loop ends too)
        loss, logs = real_g_loss(D, batch, out)
        if t.step >= 2 and poisoned["n"] < 40:
            poisoned["n"] += 1
            return loss * float("nan"), logs
        return loss, logs

    t.recipe.g_loss = g_loss
    with pytest.raises(TrainingError, match=r"again after 3 reloads \(train.max_reloads\) with learning rates at ×0.125"):
        t.fit()
    assert t.reloads == 3 and t.lr_scale == 0.125
    assert t.opts["generator"].param_groups[0]["lr"] == pytest.approx(2e-4 * 0.125)
    assert poisoned["n"] == 8  # 2 bad steps per attempt: the first try and 3 reloads


# ---- bug 5: changed optimizer settings are used on resume ------------------------------------
def test_resume_applies_a_changed_learning_rate(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t = Trainer(cfg("train.max_steps=6", "train.log_every=1", "optim.generator.lr=0.1", "optim.generator.betas=[0.9, 0.99]"),
                output_dir=run, resume=True)
    group = t.opts["generator"].param_groups[0]
    assert group["lr"] == pytest.approx(0.1) and tuple(group["betas"]) == (0.9, 0.99)
    assert "optim.generator changed since the checkpoint; in use now:" in capsys.readouterr().out
    t.fit()
    rows = {r["step"]: r for r in read_metrics(run) if "lr/generator" in r}
    assert rows[5]["lr/generator"] == pytest.approx(0.1) and rows[6]["lr/generator"] == pytest.approx(0.1)
    assert rows[5]["lr/discriminator"] == pytest.approx(2e-4)


def test_resume_refuses_a_changed_optimizer_type(run: Path) -> None:
    with pytest.raises(CheckpointError, match=r"step_00000004: optim.generator.type was 'adam' there, now 'sgd'"):
        Trainer(cfg("train.max_steps=6", "optim.generator={type: sgd, lr: 0.01}"), output_dir=run, resume=True)
    assert not (run / "train.lock").exists()  # a refused start releases the run directory


# ---- bug 6: one training per run directory --------------------------------------------------
def test_a_second_training_into_the_same_directory_is_refused(tmp_path: Path) -> None:
    first = Trainer(cfg("train.max_steps=2"), output_dir=tmp_path)
    with pytest.raises(CheckpointError, match=rf"{tmp_path}/train.lock: this run directory is in use by process "
                                              rf"{os.getpid()} on "):
        Trainer(cfg("train.max_steps=2", "train.seed=1"), output_dir=tmp_path)
    p = subprocess.run(tool("train") + ["tasks/cgan_mnist.yaml", *FAST, "train.max_steps=2", "--output-dir", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 2 and p.stderr.strip().startswith(f"error: {tmp_path}/train.lock: this run directory is in use"), p.stderr
    first.fit()
    assert not (tmp_path / "train.lock").exists()
    assert ckpt.read_config(ckpt.latest_checkpoint(tmp_path) / "config.yaml")["train"]["seed"] == 0


def test_a_stale_lock_from_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    import socket

    (tmp_path / "train.lock").write_text(f"{dead.pid} {socket.gethostname()}")
    Trainer(cfg("train.max_steps=1"), output_dir=tmp_path).fit()
    assert (tmp_path / "export" / "config.json").is_file() and not (tmp_path / "train.lock").exists()


# ---- error messages naming the file -----------------------------------------------------------
@pytest.mark.parametrize("text,reason", [("\x00\x01garbage: [", "not valid YAML"), ("", "got nothing"),
                                         ("42\n", "got int"), (None, "missing")])
def test_a_bad_checkpoint_config_is_one_line_naming_it(run: Path, text: str | None, reason: str) -> None:
    for p in ckpt.list_checkpoints(run):
        if text is None:
            (p / "config.yaml").unlink()
        else:
            (p / "config.yaml").write_text(text)
    with pytest.raises(CheckpointError) as e:
        Trainer(cfg("train.max_steps=6"), output_dir=run, resume=str(run / "checkpoints" / "step_00000004"))
    msg = str(e.value)
    assert msg.startswith(f"{run}/checkpoints/step_00000004/config.yaml") and reason in msg and "\n" not in msg, msg


def test_a_bad_checkpoint_config_from_the_cli(run: Path) -> None:
    for p in ckpt.list_checkpoints(run):
        (p / "config.yaml").write_text("7")
    p = subprocess.run(tool("train") + ["tasks/cgan_mnist.yaml", *FAST, "train.max_steps=6", "--output-dir", str(run),
                                        "--resume"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("error: ")]
    assert p.returncode == 2 and len(lines) == 1 and "config.yaml: expected the run's config" in lines[0], p.stderr


def test_wrong_weight_shapes_say_which(run: Path) -> None:
    last = ckpt.latest_checkpoint(run)
    tensors = ckpt.load_tensors(last / "models.safetensors")
    key = next(k for k in tensors if k.startswith("generator.") and tensors[k].dim() > 1)
    tensors[key] = torch.zeros(3, 3)
    ckpt.save_tensors(tensors, last / "models.safetensors")
    with pytest.raises(CheckpointError) as e:
        Trainer(cfg("train.max_steps=6"), output_dir=run, resume=str(last))
    short = key.removeprefix("generator.")
    assert "models.safetensors (generator): weights do not fit" in str(e.value)
    assert f"shapes (saved vs model) {short} [3, 3] vs [" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("failure", [RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 4480 vs 4374"),
                                     OSError(errno.ENOSPC, "No space left on device")])
def test_a_full_disk_during_save_is_one_line(run: Path, monkeypatch: pytest.MonkeyPatch, failure: Exception) -> None:
    t = Trainer(cfg("train.max_steps=6"), output_dir=run, resume=True)

    def full(*a, **k):  # noqa: ANN002, ANN003, ANN202
        raise failure

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(CheckpointError, match=r"/checkpoints/.tmp-step_00000004/rng_0.pt: cannot write: no space left on "
                                              r"the device \(disk full\)$"):
        t.save()
    monkeypatch.undo()
    monkeypatch.setattr(ckpt, "save_file", full)
    with pytest.raises(CheckpointError, match=r"models.safetensors: cannot write: no space left on the device"):
        t.save()
    assert [p.name for p in ckpt.list_checkpoints(run)] == ["step_00000002", "step_00000004"]


# ---- smaller gaps -------------------------------------------------------------------------------


def test_resume_falls_back_past_a_corrupt_latest_checkpoint(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (run / "checkpoints" / "step_00000004" / "models.safetensors").write_bytes(b"\x00" * 100)
    t = Trainer(cfg("train.max_steps=6", "train.ckpt_every=2", "train.keep_last=1"), output_dir=run, resume=True)
    out = capsys.readouterr().out
    assert "skipping unreadable checkpoint:" in out and f"resumed from {run}/checkpoints/step_00000002 at step 2" in out
    assert t.step == 2
    t.fit()
    assert [p.name for p in ckpt.list_checkpoints(run)] == ["step_00000006"]  # keep_last=1 pruned the older ones
    assert len(list((run / "checkpoints").glob("corrupt-step_00000004-*"))) == 1  # moved aside, never resumed again
