"""Issue 15: what a hostile or unlucky user broke in the engine — each test failed before its fix."""
from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from conftest import ROOT, tool
from i2i.config import load_config
from i2i import runs as ckpt
from i2i.engine.tracking import read_metrics
from i2i.engine.trainer import Trainer, TrainingError
from i2i.errors import CheckpointError

FAST = ["logging.tracker=none", "logging.progress=false", "eval.every=0", "eval.at_end=false", "logging.sample_every=0",
        "models.generator.base_channels=8", "models.discriminator.base_channels=8", "data.batch_size=8"]


def cfg(*extra: str):  # noqa: ANN201
    return load_config(ROOT / "tasks/cgan_mnist.yaml", FAST + list(extra))


@pytest.fixture(scope="module")
def run4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 steps, checkpoints at 2 and 4; tests copy it before changing anything."""
    out = tmp_path_factory.mktemp("run4")
    Trainer(cfg("train.max_steps=4", "train.ckpt_every=2"), output_dir=out).fit()
    return out


@pytest.fixture
def run(run4: Path, tmp_path: Path) -> Path:
    shutil.copytree(run4, tmp_path / "run")
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
def test_a_kill_during_the_export_swap_leaves_a_readable_export(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    export = run / "export"
    assert ckpt.resolve_export_dir(export) == export
    real_rename = os.rename

    def killed_after_first(src, dst):  # noqa: ANN001, ANN202  (SIGKILL between the two renames)
        real_rename(src, dst)
        if str(dst).endswith("export.old"):
            raise KeyboardInterrupt

    monkeypatch.setattr(ckpt.os, "rename", killed_after_first)
    with pytest.raises(KeyboardInterrupt):
        ckpt.write_export(export, {"generator": {"w": torch.ones(2)}}, {"format": "i2i-export"})
    monkeypatch.undo()
    assert not export.exists() and (run / "export.tmp").is_dir()
    assert ckpt.resolve_export_dir(export) == run / "export.old"
    assert (ckpt.resolve_export_dir(export) / "generator.safetensors").is_file()
    from i2i.inference import load_model

    for where in (run, export):  # infer/eval read the run through the fallback
        assert load_model(where, device="cpu").path == run / "export.old"
    ckpt.write_export(export, {"generator": {"w": torch.ones(2)}}, {"format": "i2i-export"})  # the next save heals it
    assert ckpt.resolve_export_dir(export) == export and not (run / "export.old").exists()


def test_resume_falls_back_past_a_corrupt_latest_checkpoint(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (run / "checkpoints" / "step_00000004" / "models.safetensors").write_bytes(b"\x00" * 100)
    t = Trainer(cfg("train.max_steps=6", "train.ckpt_every=2", "train.keep_last=1"), output_dir=run, resume=True)
    out = capsys.readouterr().out
    assert "skipping unreadable checkpoint:" in out and f"resumed from {run}/checkpoints/step_00000002 at step 2" in out
    assert t.step == 2
    t.fit()
    assert [p.name for p in ckpt.list_checkpoints(run)] == ["step_00000006"]  # keep_last=1 pruned the older ones
    assert len(list((run / "checkpoints").glob("corrupt-step_00000004-*"))) == 1  # moved aside, never resumed again


# ---- exports that were damaged or tampered with -----------------------------------------------
@pytest.mark.parametrize("text, message", [
    ("{not json", r"config.json: not valid JSON \(JSONDecodeError"),
    ("[1, 2]", r"config.json: expected a JSON object \(an i2i export's config\), got list"),
    ('{"recipe": {"type": "acgan"}}', r"config.json: missing models \(not an i2i export\)"),
    ('{"models": {"generator": 3}, "recipe": {"type": "acgan"}}', r"config.json: 'models' must map each slot"),
])
def test_a_broken_export_config_is_one_line(run: Path, text: str, message: str) -> None:
    from i2i.inference import load_model

    (run / "export" / "config.json").write_text(text)
    with pytest.raises(CheckpointError, match=message):
        load_model(run, device="cpu")


def test_tampered_export_weights_are_refused(run: Path) -> None:
    from safetensors.torch import save_file

    from i2i.inference import load_model

    path = run / "export" / "generator.safetensors"
    good = ckpt.load_tensors(path)
    load_model(run, device="cpu")  # as written: loads
    name = next(k for k, v in good.items() if v.is_floating_point() and v.numel() > 1)
    for dtype in (torch.float64, torch.float16):
        save_file({k: (v.to(dtype) if v.is_floating_point() else v) for k, v in good.items()}, str(path))
        with pytest.raises(CheckpointError, match=r"generator.safetensors: wrong tensor dtypes: .* \(expected float32\)"):
            load_model(run, device="cpu")
    poisoned = dict(good)
    poisoned[name] = good[name].clone()
    poisoned[name].view(-1)[0] = float("nan")
    save_file(poisoned, str(path))
    with pytest.raises(CheckpointError, match=r"generator.safetensors: holds NaN or infinite weights"):
        load_model(run, device="cpu")
    p = subprocess.run(tool("infer") + ["--task", "acgan", "--checkpoint", str(run), "--device", "cpu", "-n", "1",
                                        "-o", str(run / "x.png")], capture_output=True, text=True, timeout=300)
    assert p.returncode == 2 and p.stderr.strip().count("\n") == 0 and "holds NaN or infinite weights" in p.stderr


def test_a_huge_width_in_an_export_config_is_refused_before_allocating(run: Path) -> None:
    import json

    from i2i.inference import load_model

    path = run / "export" / "config.json"
    info = json.loads(path.read_text())
    info["models"]["generator"]["base_channels"] = 1_000_000_000
    path.write_text(json.dumps(info))
    with pytest.raises(CheckpointError, match=r"export: models.generator (would have [\d,]+ parameters|cannot be built)"):
        load_model(run, device="cpu")
