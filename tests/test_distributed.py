"""i2i.distributed: re-launching ``accelerate launch --cpu --num_processes N`` as N gloo workers,
and leaving a process group cleanly."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from i2i import distributed

WORLD = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


@pytest.fixture
def parent(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """Pretend our parent process is one whose command line we choose (a real process's
    /proc/<pid>/cmdline), in the environment ``accelerate launch --cpu`` leaves."""
    procs: list[subprocess.Popen] = []

    def with_args(*args: str) -> None:
        p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", *args])
        procs.append(p)
        deadline = time.monotonic() + 10
        while b"time.sleep" not in Path(f"/proc/{p.pid}/cmdline").read_bytes():  # empty until the exec is done
            assert time.monotonic() < deadline, "the stand-in parent never started"
            time.sleep(0.01)
        monkeypatch.setattr(distributed.os, "getppid", lambda: p.pid)

    monkeypatch.setenv("ACCELERATE_USE_CPU", "true")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    for v in WORLD:
        monkeypatch.delenv(v, raising=False)
    yield with_args
    for p in procs:
        p.kill()
        p.wait()


@pytest.mark.parametrize("args, n", [(("accelerate", "launch", "--cpu", "--num_processes", "3", "t.py"), 3),
                                     (("--num-processes=4",), 4), (("--num_processes=2",), 2),
                                     (("--num_processes", "x"), 1), (("launch", "t.py"), 1)])
def test_the_requested_number_comes_from_the_launchers_command_line(parent, args: tuple[str, ...], n: int) -> None:  # noqa: ANN001
    parent(*args)
    assert distributed.requested_cpu_processes() == n


def test_nothing_to_do_outside_that_situation(parent, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    parent("--num_processes", "3")
    assert distributed.requested_cpu_processes() == 3
    monkeypatch.setenv("WORLD_SIZE", "3")  # torchrun / a real multi-process launch: already a world
    assert distributed.requested_cpu_processes() == 1
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.delenv("MASTER_ADDR")  # a plain `python tool.py`
    assert distributed.requested_cpu_processes() == 1
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("ACCELERATE_USE_CPU", "0")  # a GPU launch
    assert distributed.requested_cpu_processes() == 1 and not distributed.use_cpu()
    for yes in ("1", "true", "YES"):
        monkeypatch.setenv("ACCELERATE_USE_CPU", yes)
        assert distributed.use_cpu()


def test_relaunch_runs_torch_distributed_with_n_workers(parent, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    calls: list[tuple[list[str], dict[str, str]]] = []
    monkeypatch.setattr(distributed.subprocess, "call", lambda cmd, env: calls.append((cmd, env)) or 7)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("MASTER_PORT", "29611")
    parent("--num_processes", "2")
    assert distributed.relaunch_cpu_workers("tools/train.py", ["a.yaml", "x=1"]) == 7  # the workers' exit code
    assert distributed.relaunch_cpu_workers(None, ["--task", "seg"], module="i2i.commands.eval") == 7
    base = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
            "--master_port", "29611"]
    assert calls[0][0] == base + ["tools/train.py", "a.yaml", "x=1"]
    assert calls[1][0] == base + ["-m", "i2i.commands.eval", "--task", "seg"]
    assert calls[0][1]["ACCELERATE_USE_CPU"] == "true" and calls[0][1]["OMP_NUM_THREADS"] == "1"
    parent("launch")  # no N: nothing is re-launched
    assert distributed.relaunch_cpu_workers("tools/train.py", []) is None and len(calls) == 2


def test_shutdown_leaves_a_process_group_and_is_harmless_without_one(tmp_path: Path) -> None:
    import torch.distributed as dist

    distributed.shutdown()  # none: nothing happens
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    assert dist.is_initialized()
    distributed.shutdown()
    assert not dist.is_initialized()
