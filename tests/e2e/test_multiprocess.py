"""Real processes: DDP with two CPU processes, and SIGKILL followed by --resume."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, tool
from i2i import runs as ckpt
from i2i.engine.tracking import read_metrics

SMALL = ["logging.tracker=none", "logging.progress=false", "eval.every=0", "eval.at_end=false",
         "models.generator.base_channels=16", "models.discriminator.base_channels=16", "data.batch_size=16"]
LAUNCH = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "2", "--num_machines", "1",
          "--mixed_precision", "no", "--dynamo_backend", "no"]


def test_two_process_ddp_training_writes_checkpoint_and_export(tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    cmd = LAUNCH + [str(ROOT / "tools/train.py"), "tasks/acgan_mnist.yaml", "train.max_steps=6", "train.log_every=2",
                    "logging.sample_every=3", *SMALL, "--output-dir", str(out)]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    assert (out / "checkpoints" / "step_00000006" / "rng_0.pt").is_file()
    assert (out / "checkpoints" / "step_00000006" / "rng_1.pt").is_file()
    assert (out / "export" / "generator.safetensors").is_file()
    state = ckpt.safe_torch_load(out / "checkpoints" / "step_00000006" / "state.pt")
    assert state["num_processes"] == 2 and state["consumed"] == 6
    rows = [r for r in read_metrics(out) if "g/total" in r]
    assert [r["step"] for r in rows] == [2, 4, 6]  # only the main process writes
    assert (out / "samples" / "step_00000003.png").is_file()


def test_two_process_evaluation_matches_one_process(tiny_acgan_run: Path) -> None:
    args = [str(ROOT / "tools/eval.py"), "--task", "acgan", "--checkpoint", str(tiny_acgan_run), "--json",
            "--samples-per-class", "20", "--batch-size", "7"]  # 360 test images: an uneven last batch
    one = subprocess.run([sys.executable] + args, cwd=ROOT, capture_output=True, text=True, timeout=600)
    two = subprocess.run(LAUNCH + args, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-2000:]
    assert two.returncode == 0, two.stderr[-2000:]
    a = json.loads(one.stdout.strip().splitlines()[-1])
    b = json.loads(two.stdout.strip().splitlines()[-1])
    assert a["real_accuracy"] == pytest.approx(b["real_accuracy"], abs=1e-12)
    assert a["frechet_distance"] == pytest.approx(b["frechet_distance"], rel=1e-4)
    assert a["label_fidelity"] == b["label_fidelity"]


def test_sigkill_mid_run_then_resume(tmp_path: Path) -> None:
    out = tmp_path / "killed"
    args = ["tasks/cgan_mnist.yaml", "train.max_steps=400", "train.ckpt_every=10", "train.log_every=5",
            "logging.sample_every=0", *SMALL, "--output-dir", str(out)]
    proc = subprocess.Popen(tool("train") + args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and len(ckpt.list_checkpoints(out)) < 2:
        time.sleep(0.2)
    assert len(ckpt.list_checkpoints(out)) >= 2, "training never reached its second checkpoint"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    killed_at = ckpt.latest_checkpoint(out)
    step_at_kill = int(killed_at.name.split("_")[1])
    resumed = subprocess.run(tool("train") + args[:1] + ["train.max_steps=" + str(step_at_kill + 20)] + args[2:] + ["--resume"],
                             cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resumed from {killed_at}" in resumed.stdout
    rows = [r["step"] for r in read_metrics(out) if "g/total" in r]
    assert rows == sorted(set(rows)), "metrics.jsonl has duplicated steps after the resume"
    assert rows[-1] == step_at_kill + 20
