"""i2i.apps.jobs: a folder shared over the processes of ``accelerate launch --cpu --num_processes 2``,
and ``--resume``.

Two processes must write the same files, byte for byte, as one; print one summary for the
whole job; agree on the exit code (one bad file: 1); and a resumed run must skip complete
outputs and rewrite nothing.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from i2i.apps.jobs import Job, atomic_writer, part_name
from i2i.cli import run
from i2i.commands import infer_main
from i2i.nn.srresnet import SRResNet
from i2i.runs import write_export

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    net = SRResNet(scale=2, width=8, num_blocks=1).eval()
    out = tmp_path_factory.mktemp("export") / "export"
    spec = {"type": "srresnet", "scale": 2, "width": 8, "num_blocks": 1, "batch_norm": True}
    info = {"format": "i2i-export", "version": 1, "task": "sr", "recipe": {"type": "sr", "scale": 2},
            "models": {"generator": spec}, "meta": {"scale": 2}, "config": {}}
    write_export(out, {"generator": net.state_dict()}, info)
    return out


def _folder(root: Path, n: int = 7) -> Path:
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray((rng.random((12 + i, 10, 3)) * 255).astype(np.uint8)).save(root / f"{i:02d}.png")
    (root / "03b_bad.png").write_bytes(b"not a png")  # in the second process's share
    return root


@pytest.mark.slow  # two launches of a gloo world (~25 s on 2 cores)
def test_two_processes_write_the_same_bytes_and_one_summary(export: Path, tmp_path: Path) -> None:
    src = _folder(tmp_path / "in")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    base = [str(ROOT / "tools" / "infer.py"), "--task", "sr", "--checkpoint", str(export), "--device", "cpu", str(src)]
    one = subprocess.run([sys.executable, *base, "-o", str(tmp_path / "one")], capture_output=True, text=True, env=env,
                         timeout=300, check=False)
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "2", "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(29500 + os.getpid() % 500)]
    two = subprocess.run([*launch, *base, "-o", str(tmp_path / "two")], capture_output=True, text=True, env=env,
                         timeout=300, cwd=tmp_path, check=False)
    assert one.returncode == 1 and two.returncode == 1, (one.stderr + two.stderr)[-2000:]  # the bad file, agreed
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert len(names) == 7 and names == sorted(p.name for p in (tmp_path / "two").iterdir())  # no .part left
    for n in names:
        assert (tmp_path / "one" / n).read_bytes() == (tmp_path / "two" / n).read_bytes(), n
    summary = [line for line in two.stdout.splitlines() if line.startswith("wrote")]
    assert summary == [f"wrote 7 image(s) ×2 to {tmp_path / 'two'}; 1 failed"], two.stdout
    # one line for the bad file (accelerate's simple launcher repeats a failed child's stderr after
    # "RuntimeError:"); torchrun's own ChildFailedError report is gone (i2i.distributed.worker_exit)
    said = two.stderr.split("RuntimeError:")[0]
    assert sum("03b_bad.png" in line for line in said.splitlines() if "error:" in line) == 1, two.stderr
    assert "ChildFailedError" not in two.stderr, two.stderr


def test_resume_skips_complete_outputs(export: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = _folder(tmp_path / "in", 3)
    (src / "03b_bad.png").unlink()
    out = tmp_path / "out"
    out.mkdir()
    (out / "00_x2.png").write_bytes(b"kept")  # a complete output from an earlier run
    (out / ".01_x2.part.png").write_bytes(b"half")  # what a killed run leaves
    assert run(infer_main, ["--task", "sr", "--checkpoint", str(export), "--device", "cpu", str(src), "-o", str(out),
                            "--resume"]) == 0
    text = capsys.readouterr().out
    assert "skipped 1 complete output(s)" in text and "wrote 2 image(s)" in text
    assert (out / "00_x2.png").read_bytes() == b"kept"
    assert Image.open(out / "01_x2.png").size == (20, 26) and Image.open(out / "02_x2.png").size == (20, 28)


def test_atomic_writer_leaves_only_the_part_on_failure(tmp_path: Path) -> None:
    def write(src: Path, dst: Path, result: bytes) -> str:
        dst.write_bytes(result[:2])
        if result == b"boom":
            raise OSError("disk full")
        return f"{src} -> {dst}"

    w = atomic_writer(write)
    dst = tmp_path / "a.png"
    assert w(Path("s.png"), dst, b"fine") == f"s.png -> {dst}" and dst.read_bytes() == b"fi"
    with pytest.raises(OSError):
        w(Path("s.png"), tmp_path / "b.png", b"boom")
    assert not (tmp_path / "b.png").exists() and not part_name(tmp_path / "b.png").exists()


def test_single_process_job_is_the_identity() -> None:
    job = Job.current()
    assert (job.size, job.rank, job.main) == (1, 0, True)
    assert job.share([3, 1, 2]) == [3, 1, 2] and job.gather([5]) == [5]
