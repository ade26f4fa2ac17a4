"""Crash-safe checkpoints and self-describing exports.

Layout of a run directory::

    runs/<name>/
      config.yaml                 resolved config (what produced this run)
      metrics.jsonl               every logged value, one JSON object per log step
      checkpoints/step_00000500/  models.safetensors  state.pt  rng_<rank>.pt  config.yaml
      export/                     config.json  generator.safetensors  [discriminator.safetensors]
      samples/  plots/  wandb/

A checkpoint is written into ``checkpoints/.tmp-step_…``, every file flushed and fsync'ed,
then the folder is renamed into place (atomic on POSIX) and the parent fsync'ed: a folder
named ``step_…`` is always complete, so a SIGKILL at any moment loses at most one interval.
Weights are safetensors; the rest (optimizer/scheduler/scaler/RNG state: tensors and
numbers only) is ``torch.save``'d and read back with ``weights_only=True`` — loading a
checkpoint can never run code.
"""
from __future__ import annotations

import errno
import json
import os
import random
import re
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..errors import CheckpointError

STEP_RE = re.compile(r"^step_(\d{8})$")


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """A failed write as one line naming the file. A full disk reaches us as OSError(ENOSPC),
    or from ``torch.save``'s zip writer as ``RuntimeError: [enforce fail at inline_container.cc]
    unexpected pos`` / ``file write failed``: both are said as "the disk is full"."""
    try:
        yield
    except OSError as e:
        reason = "no space left on the device (disk full)" if e.errno == errno.ENOSPC else (e.strerror or str(e))
        raise CheckpointError(f"{path}: cannot write: {reason}") from None
    except RuntimeError as e:
        if "unexpected pos" in str(e) or "file write failed" in str(e):
            raise CheckpointError(f"{path}: cannot write: no space left on the device (disk full)") from None
        raise


def save_tensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    with writing(path):
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path), metadata=metadata)
        _fsync_file(path)


def torch_save(obj: Any, path: Path) -> None:
    with writing(path), open(path, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())


def write_text(path: Path, text: str) -> None:
    with writing(path):
        path.write_text(text)
        _fsync_file(path)


def all_finite(tensors: list[torch.Tensor]) -> bool:
    """Every floating-point value finite: one reduction on the device, one host read."""
    flags = [torch.isfinite(t).all() for t in tensors if t.is_floating_point() and t.numel()]
    return bool(torch.stack(flags).all()) if flags else True


def load_fitting(module: torch.nn.Module, sd: dict[str, torch.Tensor], where: str) -> None:
    """``load_state_dict(strict=True)`` with the differences in one line (missing, unexpected,
    shapes) instead of PyTorch's multi-line report."""
    own = module.state_dict()
    missing = sorted(set(own) - set(sd))
    extra = sorted(set(sd) - set(own))
    shapes = [f"{k} {list(sd[k].shape)} vs {list(own[k].shape)}" for k in own if k in sd and sd[k].shape != own[k].shape]
    parts = [f"missing {', '.join(missing[:5])}" if missing else "", f"unexpected {', '.join(extra[:5])}" if extra else "",
             f"shapes (saved vs model) {'; '.join(shapes[:5])}" if shapes else ""]
    problems = [p for p in parts if p]
    if problems:
        raise CheckpointError(f"{where}: weights do not fit {type(module).__name__}: {'; '.join(problems)}")
    module.load_state_dict(sd, strict=True)


def read_config(path: Path) -> dict[str, Any]:
    """A checkpoint's ``config.yaml`` as a mapping, or one line naming the file."""
    from ..config import load_yaml_text
    from ..errors import ConfigError

    if not path.is_file():
        raise CheckpointError(f"{path}: missing (not a complete i2i checkpoint)")
    try:
        value = load_yaml_text(path.read_text(errors="replace"), str(path))
    except ConfigError as e:
        raise CheckpointError(str(e)) from None
    if not isinstance(value, dict) or not value:
        raise CheckpointError(f"{path}: expected the run's config (a mapping), got {'nothing' if value is None else type(value).__name__}")
    return value


def safe_torch_load(path: str | Path) -> Any:
    """``torch.load(weights_only=True)``: a pickle that would execute code is refused."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: file not found") from None
    except Exception as e:  # UnpicklingError for unsafe globals, RuntimeError for corrupt zips
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: refused to load (not a plain tensor/number checkpoint: {first})") from None


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: file not found") from None
    except Exception as e:
        raise CheckpointError(f"{path}: not a valid safetensors file ({e})") from None


# ----------------------------------------------------------------------------- RNG state
def rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ----------------------------------------------------------------------------- checkpoints
def list_checkpoints(run_dir: str | Path) -> list[Path]:
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if p.is_dir() and STEP_RE.match(p.name)), key=lambda p: p.name)


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    ckpts = list_checkpoints(run_dir)
    return ckpts[-1] if ckpts else None


def write_checkpoint(tmp: Path, final: Path, tensors: dict[str, torch.Tensor], state: dict[str, Any],
                     config_text: str, keep_last: int) -> None:
    """Main process: write the shared files into ``tmp`` (rng files already there), then publish."""
    save_tensors(tensors, tmp / "models.safetensors")
    torch_save(state, tmp / "state.pt")
    write_text(tmp / "config.yaml", config_text)
    _fsync_dir(tmp)
    if os.environ.get("I2I_FAULT_SLOW_SAVE"):  # fault-injection hook for the tests: widen the kill window
        import time

        time.sleep(float(os.environ["I2I_FAULT_SLOW_SAVE"]))
    if final.exists():  # re-saving a step (after a resume): replace the old copy
        shutil.rmtree(final)
    os.rename(tmp, final)
    _fsync_dir(final.parent)
    ckpts = list_checkpoints(final.parent.parent)
    for old in ckpts[: max(0, len(ckpts) - keep_last)]:
        shutil.rmtree(old, ignore_errors=True)


def read_checkpoint(path: str | Path, rank: int) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any] | None]:
    path = Path(path)
    if not (path / "state.pt").is_file() or not (path / "models.safetensors").is_file():
        raise CheckpointError(f"{path}: not a complete i2i checkpoint (needs models.safetensors and state.pt)")
    tensors = load_tensors(path / "models.safetensors")
    state = safe_torch_load(path / "state.pt")
    rng_path = path / f"rng_{rank}.pt"
    rng = safe_torch_load(rng_path) if rng_path.is_file() else None
    return tensors, state, rng


def sub_state(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    p = prefix + "."
    return {k[len(p):]: v for k, v in tensors.items() if k.startswith(p)}


# ----------------------------------------------------------------------------- export
def write_export(export_dir: Path, weights: dict[str, dict[str, torch.Tensor]], info: dict[str, Any]) -> None:
    """Write ``config.json`` + ``<slot>.safetensors`` into a temp folder, then swap it in.

    The swap is two renames (``export`` → ``export.old``, ``export.tmp`` → ``export``): a kill
    between them leaves a complete ``export.old``, which :func:`resolve_export_dir` serves. So
    ``export.old`` is only deleted while a complete ``export`` exists.
    """
    tmp = export_dir.with_name(export_dir.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for slot, sd in weights.items():
        save_tensors(sd, tmp / f"{slot}.safetensors", metadata={"format": "pt", "i2i_slot": slot})
    write_text(tmp / "config.json", json.dumps(info, indent=2))
    _fsync_dir(tmp)
    old = export_dir.with_name(export_dir.name + ".old")
    if export_dir.exists():
        if old.exists():
            shutil.rmtree(old)
        os.rename(export_dir, old)
        if os.environ.get("I2I_FAULT_SLOW_EXPORT_SWAP"):  # fault-injection hook: widen the window between the renames
            import time

            time.sleep(float(os.environ["I2I_FAULT_SLOW_EXPORT_SWAP"]))
    os.rename(tmp, export_dir)
    _fsync_dir(export_dir.parent)
    if old.exists():
        shutil.rmtree(old)


def resolve_export_dir(path: str | Path) -> Path:
    """The export to read at ``path``: itself, or ``<path>.old`` when a save was killed mid-swap
    (only ``export.old/`` and ``export.tmp/`` left). Loaders call this before reading."""
    path = Path(path)
    old = path.with_name(path.name + ".old")
    if not (path / "config.json").is_file() and (old / "config.json").is_file():
        return old
    return path


# ----------------------------------------------------------------------------- run lock
class RunLock:
    """``<run>/train.lock`` holding "PID host": one training per run directory.

    Created with ``O_EXCL`` (atomic); a lock left by a dead process on this host is taken
    over; a lock from another host cannot be checked and is refused (the message says how to
    remove it). Released by :meth:`release` (end of run, failure) or at interpreter exit.
    """

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / "train.lock"
        self.held = False

    def acquire(self) -> None:
        import atexit

        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = f"{os.getpid()} {socket.gethostname()}"
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                pid, host = self._owner()
                if host == socket.gethostname() and pid is not None and not _alive(pid):
                    self.path.unlink(missing_ok=True)  # stale: its process is gone
                    continue
                owner = f"process {pid} on {host}" if pid is not None else "an unreadable lock"
                raise CheckpointError(f"{self.path}: this run directory is in use by {owner}; choose another "
                                      f"--output-dir (or delete the lock if that training is gone)") from None
            with os.fdopen(fd, "w") as f:
                f.write(me)
            self.held = True
            atexit.register(self.release)
            return

    def _owner(self) -> tuple[int | None, str]:
        try:
            pid, host = self.path.read_text().split(maxsplit=1)
            return int(pid), host.strip()
        except (OSError, ValueError):
            return None, "?"

    def release(self) -> None:
        if self.held:
            self.held = False
            self.path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True
