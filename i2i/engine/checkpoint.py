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

import json
import os
import random
import re
import shutil
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


def save_tensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path), metadata=metadata)
    _fsync_file(path)


def torch_save(obj: Any, path: Path) -> None:
    with open(path, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())


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
    (tmp / "config.yaml").write_text(config_text)
    _fsync_file(tmp / "config.yaml")
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
    """Write ``config.json`` + ``<slot>.safetensors`` into a temp folder, then swap it in."""
    tmp = export_dir.with_name(export_dir.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for slot, sd in weights.items():
        save_tensors(sd, tmp / f"{slot}.safetensors", metadata={"format": "pt", "i2i_slot": slot})
    (tmp / "config.json").write_text(json.dumps(info, indent=2))
    _fsync_file(tmp / "config.json")
    old = export_dir.with_name(export_dir.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if export_dir.exists():
        os.rename(export_dir, old)
    os.rename(tmp, export_dir)
    _fsync_dir(export_dir.parent)
    if old.exists():
        shutil.rmtree(old)
