"""Fault injection: SIGKILL a real training process at random moments, during a save and during the
export swap; resume each time.

A crash may cost at most one checkpoint interval, and must never leave a checkpoint that
resume would pick up half-written.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import ROOT, tool
from i2i import runs as ckpt
from i2i.engine.tracking import read_metrics

ARGS = ["tasks/cgan_mnist.yaml", "train.ckpt_every=5", "train.log_every=1", "logging.tracker=none",
        "logging.progress=false", "eval.every=0", "eval.at_end=false", "logging.sample_every=0",
        "models.generator.base_channels=8", "models.discriminator.base_channels=8", "data.batch_size=8"]


def start(out: Path, max_steps: int, resume: bool, env: dict | None = None, extra: list[str] | None = None) -> subprocess.Popen:
    cmd = (tool("train") + ARGS + (extra or []) + [f"train.max_steps={max_steps}", "--output-dir", str(out)]
           + (["--resume"] if resume else []))
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env={**os.environ, **(env or {})})


def logged_steps(out: Path) -> list[int]:
    try:
        return [r["step"] for r in read_metrics(out) if "g/total" in r]
    except (FileNotFoundError, ValueError):
        return []


@pytest.mark.slow
def test_random_kills_and_a_kill_during_save_then_resume(tmp_path: Path) -> None:
    out = tmp_path / "run"
    rng = random.Random(0)
    total = 60
    resume = False
    for attempt in range(3):  # three kills at random moments of the loop
        proc = start(out, total, resume)
        target = rng.randint(6, 40)
        deadline = time.time() + 300
        while time.time() < deadline and (not logged_steps(out) or logged_steps(out)[-1] < target) and proc.poll() is None:
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        last = ckpt.latest_checkpoint(out)
        assert last is not None, f"attempt {attempt}: no checkpoint after reaching step {target}"
        reached = logged_steps(out)[-1]
        saved = int(last.name.split("_")[1])
        assert reached - saved < 5 + 2, "lost more than one checkpoint interval"
        assert (out / "train.lock").is_file()  # left by the killed process: the next start takes it over
        if saved >= 10:  # an earlier save's export completed: readable even if this kill hit the export swap
            assert (ckpt.resolve_export_dir(out / "export") / "config.json").is_file()
        resume = True

    # a kill while a checkpoint is being written: the save is slowed down to widen the window
    proc = start(out, total, resume=True, env={"I2I_FAULT_SLOW_SAVE": "30"})
    before = {p.name for p in ckpt.list_checkpoints(out)}
    deadline = time.time() + 300
    while time.time() < deadline and not list((out / "checkpoints").glob(".tmp-step_*/models.safetensors")):
        time.sleep(0.05)
    assert list((out / "checkpoints").glob(".tmp-step_*")), "never caught a save in progress"
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert {p.name for p in ckpt.list_checkpoints(out)} == before  # the half-written one is not a checkpoint

    # a kill between the export swap's two renames: infer reads export.old/, and the resume heals it
    proc = start(out, total, resume=True, env={"I2I_FAULT_SLOW_EXPORT_SWAP": "30"})
    deadline = time.time() + 300
    while time.time() < deadline and not ((out / "export.old").is_dir() and not (out / "export").exists()):
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert (out / "export.old").is_dir() and not (out / "export").exists(), "never caught the export swap"
    p = subprocess.run(tool("infer") + ["--task", "cgan", "--checkpoint", str(out), "--device", "cpu", "--label", "3",
                                        "-n", "2", "-o", str(tmp_path / "three.png")], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0 and (tmp_path / "three.png").is_file(), p.stderr

    proc = start(out, total, resume=True)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-2000:]
    steps = logged_steps(out)
    assert steps == list(range(1, total + 1)), "the final history must be one clean run of every step"
    assert not list((out / "checkpoints").glob(".tmp-step_*"))  # the stale temp folder was cleaned by the next save
    assert (out / "export" / "config.json").is_file() and not (out / "export.old").exists()
    assert not (out / "train.lock").exists()  # released at the end of the run


@pytest.mark.slow
def test_a_kill_right_after_a_non_finite_reload_then_resume(tmp_path: Path) -> None:
    """train.on_nonfinite=reload goes back to the step-10 checkpoint after two NaN steps; a SIGKILL
    right after the reload leaves a run that resumes to one clean history."""
    out, total = tmp_path / "run", 20
    proc = start(out, total, resume=False, extra=["train.on_nonfinite=reload", "train.max_nonfinite=2"],
                 env={"I2I_FAULT_NAN_STEPS": "12-13"})
    deadline, seen = time.time() + 300, ""
    while time.time() < deadline and "reloaded" not in seen:
        line = proc.stdout.readline()
        if not line:
            break
        seen += line
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert "reloaded" in seen and "step_00000010" in seen, seen[-2000:]
    proc = start(out, total, resume=True)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-2000:]
    assert logged_steps(out) == list(range(1, total + 1))
    assert not (out / "train.lock").exists() and (out / "export" / "config.json").is_file()
