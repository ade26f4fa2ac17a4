"""Multi-process CPU launches.

``accelerate launch --cpu --num_processes N script.py`` starts only ONE process: Accelerate's
simple launcher expects ``mpirun`` to spawn the others (huggingface/accelerate#2741). The
tools call :func:`relaunch_cpu_workers` first: when they find themselves in that situation
(CPU requested, a rendezvous address set, no world size) they re-run themselves under
``torch.distributed.run`` with N workers, which Accelerate then sees as a MULTI_CPU (gloo)
world. Every other launch (plain ``python``, torchrun, GPU launches, mpirun) is untouched.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

WORLD_VARS = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


def _flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


def requested_cpu_processes() -> int:
    """N from the parent ``accelerate launch --cpu --num_processes N`` that could not spawn them."""
    if not _flag("ACCELERATE_USE_CPU") or "MASTER_ADDR" not in os.environ or any(v in os.environ for v in WORLD_VARS):
        return 1
    try:
        argv = Path(f"/proc/{os.getppid()}/cmdline").read_bytes().decode(errors="ignore").split("\0")
    except OSError:
        return 1
    for i, a in enumerate(argv):
        for flag in ("--num_processes", "--num-processes"):
            if a == flag and i + 1 < len(argv) and argv[i + 1].isdigit():
                return int(argv[i + 1])
            if a.startswith(flag + "=") and a.split("=", 1)[1].isdigit():
                return int(a.split("=", 1)[1])
    return 1


def relaunch_cpu_workers(script: str | None, argv: list[str], module: str | None = None) -> int | None:
    """Re-run ``script argv`` (or ``python -m module argv``, for the installed commands) as N gloo
    workers if needed; returns their exit code, or None to go on."""
    n = requested_cpu_processes()
    if n <= 1:
        return None
    target = ["-m", module] if module else [str(script)]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(n),
           "--master_addr", os.environ.get("MASTER_ADDR", "127.0.0.1"),
           "--master_port", os.environ.get("MASTER_PORT", "29500"), *target, *argv]
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    import tempfile

    with tempfile.TemporaryDirectory(prefix="i2i_exit_") as d:
        env[EXIT_DIR] = d
        code = subprocess.call(cmd, env=env)
        told = [int(f.read_text()) for f in Path(d).glob("rank*")]
    return max(told) if code == 0 and told else code


EXIT_DIR = "I2I_WORKER_EXIT_DIR"


def worker_exit(code: int) -> int:
    """A relaunched worker's exit status: the tool's ``code`` told to :func:`relaunch_cpu_workers`
    through a file, and 0 to ``torch.distributed.run``, so that an agreed "some files failed"
    (1) or a user error (2) is one line, not the launcher's "ChildFailedError" report. A
    worker that crashes (no file) still fails the launcher as before."""
    d = os.environ.get(EXIT_DIR)
    if not d or not Path(d).is_dir():
        return code
    Path(d, f"rank{os.environ.get('RANK', '0')}").write_text(str(code))
    return 0


def under_accelerate_launcher() -> bool:
    """This process is the one child of ``accelerate launch``'s simple launcher (one process, or
    ``--cpu``): the parent's command line is ``accelerate launch …`` / ``-m accelerate.commands.launch``
    and no process group was set up for us."""
    if any(v in os.environ for v in WORLD_VARS):
        return False
    try:
        argv = Path(f"/proc/{os.getppid()}/cmdline").read_bytes().decode(errors="ignore").split("\0")
    except OSError:
        return False
    argv = [a for a in argv if a]
    if argv[:1] and Path(argv[0]).name.startswith("python"):  # `python /…/bin/accelerate launch …`
        argv = argv[1:]
    if len(argv) >= 2 and Path(argv[0]).name == "accelerate" and argv[1] == "launch":  # `accelerate launch …`
        return True
    # `python -m accelerate.commands.launch …`
    return any(a == "-m" and b == "accelerate.commands.launch" for a, b in zip(argv[:3], argv[1:4]))


def end_launcher_quietly(line: str) -> bool:
    """Say a one-line user error under ``accelerate launch`` without the launcher's traceback.

    Its simple launcher pipes our stderr through itself and re-raises a failed child as
    ``CalledProcessError`` with a 15-line traceback that repeats our line as a ``RuntimeError``.
    So the line is written straight to the launcher's own stderr (``/proc/<ppid>/fd/2``: the
    terminal or file the user sees; nothing goes through the pipe, so nothing can be lost in
    it), then the launcher is asked to stop with SIGTERM, which it handles by exiting with 143,
    quietly. Returns False (the caller prints the line itself) when the parent is not that
    launcher (:func:`under_accelerate_launcher`) or its stderr cannot be opened.
    """
    import signal

    if not under_accelerate_launcher():
        return False
    try:
        with open(f"/proc/{os.getppid()}/fd/2", "w") as err:
            err.write(line + "\n")
            err.flush()
    except OSError:
        return False
    try:
        os.kill(os.getppid(), signal.SIGTERM)
    except OSError:
        pass
    return True


def use_cpu() -> bool:
    return _flag("ACCELERATE_USE_CPU")


def shutdown() -> None:
    """Destroy the default process group if this process joined one (the tools call it on exit).

    Without it a gloo worker can die at interpreter exit with "terminate called without an
    active exception" (SIGABRT) from the process group's threads being torn down by static
    destructors — measured: 6 of 12 two-process ``tools/eval.py --task seg`` runs, after
    they had printed their results; 0 of 8 with this call. Local to this process: no
    collective, cannot hang.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
