"""The saved-run format, owned here alone: crash-safe checkpoints, self-describing exports.

The engine writes through this module and every loader (inference, ``train.init``, the
tools) reads through it; it sits below both (it imports only the registries, the config
reader and the recipes' slot declarations). Layout of a run directory::

    runs/<name>/
      config.yaml                 resolved config (what produced this run)
      metrics.jsonl               every logged value, one JSON object per log step
      checkpoints/step_00000500/  models.safetensors  state.pt  rng_<rank>.pt  config.yaml
      export/                     config.json  <slot>.safetensors (one per network slot)
      samples/  plots/  wandb/

``models.safetensors`` holds every slot's state dict under ``<slot>.<key>`` and each EMA
copy under ``ema.<slot>.<key>``; an export holds one file per slot (the EMA weights where
the slot has them) and ``config.json`` (:func:`export_info`).

A checkpoint is written into ``checkpoints/.tmp-step_…``, every file flushed and fsync'ed,
then the folder is renamed into place (atomic on POSIX) and the parent fsync'ed: a folder
named ``step_…`` is always complete, so a SIGKILL at any moment loses at most one interval.
Weights are safetensors; the rest (optimizer/scheduler/scaler/RNG state: tensors and
numbers only) is ``torch.save``'d and read back with ``weights_only=True`` — loading a
checkpoint can never run code.
"""
from __future__ import annotations

import json
import math
import os
import random
import re
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from .errors import CheckpointError, OutputError, short_repr, write_error
from .registry import MAX_PARAMETERS  # noqa: F401  (re-exported: the loader's bound)

STEP_RE = re.compile(r"^step_(\d{8})$")
MAX_CONFIG_BYTES = 16 * 2**20
"""Largest ``config.json``/``config.yaml`` a loader reads: a run's full config is a few KB; a
damaged or hostile file of gigabytes is refused before it is read (one line naming it)."""


def read_small_text(path: Path, what: str = "config") -> str:
    """A config file's text, refused in one line when larger than :data:`MAX_CONFIG_BYTES`."""
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise CheckpointError(f"{path}: {size:,} bytes is too large for a {what} file "
                                  f"(at most {MAX_CONFIG_BYTES:,}): the file is damaged")
        with open(path, "rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)  # a file that grows while read is still bounded
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({e.strerror or e})") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise CheckpointError(f"{path}: too large for a {what} file (more than {MAX_CONFIG_BYTES:,} bytes): the file is damaged")
    return data.decode("utf-8", errors="replace")


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
    """A failed write as one line naming the file: ``<path>: cannot write: <reason>``
    (:func:`i2i.errors.write_error`: ``OSError``, safetensors' ``SafetensorError``, ``torch.save``'s
    "unexpected pos" for a full disk). Anything else passes through."""
    try:
        yield
    except Exception as e:
        err = write_error(path, e)
        if err is None:
            raise
        raise err from None


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
    from .config import load_yaml_text
    from .errors import ConfigError

    if not path.is_file():
        raise CheckpointError(f"{path}: missing (not a complete i2i checkpoint)")
    try:
        value = load_yaml_text(read_small_text(path), str(path))
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


def process_state(recipe_state: dict[str, Any]) -> dict[str, Any]:
    """What ``rng_<rank>.pt`` holds: this process's RNG streams and its recipe's training state
    (:meth:`i2i.recipes.base.Recipe.train_state`, e.g. CycleGAN's image pools)."""
    return {**rng_state(), "recipe": recipe_state}


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


def resolve_run_dir(name: str, output_dir: str | Path | None, resume: bool | str | None, stamp: str) -> Path:
    """The run directory: ``--output-dir``; a named checkpoint's run; with ``--resume`` alone the
    newest ``runs/<name>-*`` holding a checkpoint; else a new ``runs/<name>-<stamp>``."""
    if output_dir is not None:
        return Path(output_dir)
    if isinstance(resume, str):
        p = Path(resume)
        return p.parent.parent if STEP_RE.match(p.name) else p
    if resume:
        runs = sorted(Path("runs").glob(f"{name}-*"), key=lambda p: p.stat().st_mtime)
        runs = [r for r in runs if latest_checkpoint(r) is not None]
        if not runs:
            raise CheckpointError(f"--resume: no run of {name!r} with a checkpoint under runs/; pass --output-dir or a path")
        return runs[-1]
    return Path("runs") / f"{name}-{stamp}"


RUN_FILES = ("checkpoints", "metrics.jsonl", "config.yaml", "export", "samples", "plots", "wandb", "tensorboard")


def run_files(folder: Path) -> list[str]:
    """What in ``folder`` a training run made (its lock aside): a new run never mixes into them."""
    return [n for n in RUN_FILES if (Path(folder) / n).exists()]


def move_aside(folder: Path, stamp: str) -> Path:
    """``--overwrite``: rename an earlier run to ``<folder>.old-<stamp>`` (never deleted); returns it."""
    aside = folder.with_name(f"{folder.name}.old-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = folder.with_name(f"{folder.name}.old-{stamp}-{n}")
    with writing(aside):
        os.rename(folder, aside)
    return aside


def resume_candidates(run_dir: Path, resume: bool | str | None) -> list[Path]:
    """The checkpoints to try, newest first (one when a checkpoint was named); without
    ``resume`` a run directory holding checkpoints is refused (nothing is overwritten)."""
    if not resume:
        if latest_checkpoint(run_dir) is not None:
            raise CheckpointError(f"{run_dir} already holds checkpoints: add --resume to continue it, --overwrite to move "
                                  "it aside and start afresh, or choose another --output-dir")
        found = run_files(run_dir)
        if found:
            raise CheckpointError(f"{run_dir} already holds another run ({', '.join(found)}): add --overwrite to move it "
                                  "aside and start afresh (nothing is deleted), or choose another --output-dir")
        return []
    p = Path(resume) if isinstance(resume, str) else run_dir
    if STEP_RE.match(p.name):
        if not p.is_dir():
            raise CheckpointError(f"--resume: {p} does not exist")
        return [p]
    found = list_checkpoints(p)[::-1]  # at most keep_last (+1 mid-save) of them
    if not found:
        raise CheckpointError(f"--resume: no checkpoint in {p / 'checkpoints'}")
    return found


def _spec_diff(a: Any, b: Any, prefix: str) -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(set(a) | set(b))
        return [d for k in keys for d in _spec_diff(a.get(k), b.get(k), f"{prefix}.{k}")]
    return [] if a == b else [prefix]


def check_same_architecture(saved: dict[str, Any], config: dict[str, Any], path: Path) -> None:
    """A checkpoint's weights fit only the recipe and networks that made it: one line naming the differences."""
    diff = _spec_diff(saved.get("models"), config["models"], "models")
    if saved.get("recipe") != config["recipe"]:
        diff.insert(0, "recipe")
    if diff:
        raise CheckpointError(f"{path}: checkpoint was made with a different architecture; differing keys: {', '.join(diff)}")


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


def checkpoint_tensors(models: dict[str, torch.nn.Module], emas: dict[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    """One flat mapping for ``models.safetensors``: ``<slot>.<key>`` and ``ema.<slot>.<key>``."""
    tensors = {f"{s}.{k}": v for s, m in models.items() for k, v in m.state_dict().items()}
    tensors.update({f"ema.{s}.{k}": v for s, m in emas.items() for k, v in m.state_dict().items()})
    return tensors


def slot_weights(tensors: dict[str, torch.Tensor], slot: str, ema: bool = True) -> dict[str, torch.Tensor]:
    """A slot's state dict from ``models.safetensors``: its EMA copy when it has one and ``ema``."""
    return (sub_state(tensors, f"ema.{slot}") if ema else {}) or sub_state(tensors, slot)


# ----------------------------------------------------------------------------- export
EXPORT_FORMAT = {"format": "i2i-export", "version": 1}


def export_info(task: str, config: dict[str, Any], slots: list[str], meta: dict[str, Any], step: int,
                ema_slots: list[str]) -> dict[str, Any]:
    """An export's ``config.json``: everything a loader needs to rebuild the networks."""
    return {**EXPORT_FORMAT, "task": task, "recipe": config["recipe"], "models": {s: config["models"][s] for s in slots},
            "meta": meta, "step": step, "ema": bool(ema_slots), "ema_slots": list(ema_slots), "config": config}


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
    publish_folder(tmp, export_dir)


def publish_folder(tmp: Path, final: Path) -> None:
    """Swap the complete folder ``tmp`` in as ``final``, crash-safe.

    Two renames (``final`` → ``final.old``, ``tmp`` → ``final``), then ``final.old`` is deleted:
    a kill between them leaves a complete ``final.old``, which :func:`resolve_export_dir` serves.
    So ``final.old`` is only deleted while a complete ``final`` exists, and the previous folder
    is never removed before the new one is complete.
    """
    old = final.with_name(final.name + ".old")
    with writing(final):
        if final.exists():
            if old.exists():
                shutil.rmtree(old)
            os.rename(final, old)
            if os.environ.get("I2I_FAULT_SLOW_EXPORT_SWAP"):  # fault-injection hook: widen the window between the renames
                import time

                time.sleep(float(os.environ["I2I_FAULT_SLOW_EXPORT_SWAP"]))
        os.rename(tmp, final)
        _fsync_dir(final.parent)
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)


def resolve_export_dir(path: str | Path) -> Path:
    """The export to read at ``path``: itself, or ``<path>.old`` when a save was killed mid-swap
    (only ``export.old/`` and ``export.tmp/`` left). Loaders call this before reading."""
    path = Path(path)
    old = path.with_name(path.name + ".old")
    if not (path / "config.json").is_file() and (old / "config.json").is_file():
        return old
    return path


# ----------------------------------------------------------------------------- pretrained folders
PRETRAINED_FORMAT = {"format": "i2i-pretrained", "version": 1}
PRETRAINED_WEIGHTS = "model.safetensors"


def write_pretrained(folder: Path, weights: dict[str, dict[str, torch.Tensor]], info: dict[str, Any], card: str) -> None:
    """A Hugging Face-style model folder (the ``save_pretrained`` layout)::

        <folder>/config.json                   the export's config (task, recipe, specs, meta, training config)
        <folder>/<slot>/config.json            the network's {type, **kwargs}
        <folder>/<slot>/model.safetensors      its weights
        <folder>/README.md                     the model card

    Written into ``<folder>.tmp`` and swapped into place like an export (:func:`publish_folder`).
    The caller checks the target first (:func:`check_output_folder` with :func:`is_pretrained_folder`):
    only an earlier pretrained folder is ever replaced.
    """
    tmp = folder.with_name(folder.name + ".tmp")
    with writing(tmp):
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
    try:
        for slot, sd in weights.items():
            with writing(tmp / slot):
                (tmp / slot).mkdir()
            save_tensors(sd, tmp / slot / PRETRAINED_WEIGHTS, metadata={"format": "pt", "i2i_slot": slot})
            write_text(tmp / slot / "config.json", json.dumps(info["models"][slot], indent=2))
        write_text(tmp / "config.json", json.dumps({**info, **PRETRAINED_FORMAT}, indent=2))
        write_text(tmp / "README.md", card)
        _fsync_dir(tmp)
    except Exception:
        shutil.rmtree(tmp, ignore_errors=True)  # ours, incomplete: a full disk gets its space back
        raise
    publish_folder(tmp, folder)


def is_pretrained_folder(folder: Path) -> bool:
    """Only what :func:`write_pretrained` writes: ``config.json`` (format ``i2i-pretrained``),
    ``README.md`` and ``<slot>/{config.json, model.safetensors}`` — nothing else."""
    try:
        info = json.loads(read_small_text(folder / "config.json")) if (folder / "config.json").is_file() else None
    except (CheckpointError, ValueError, RecursionError):
        return False
    if not isinstance(info, dict) or info.get("format") != PRETRAINED_FORMAT["format"]:
        return False
    for entry in folder.iterdir():
        if entry.name in ("config.json", "README.md") and entry.is_file() and not entry.is_symlink():
            continue
        if not entry.is_dir() or entry.is_symlink():
            return False
        if any(f.name not in ("config.json", PRETRAINED_WEIGHTS) or not f.is_file() for f in entry.iterdir()):
            return False
    return True


def is_run_dir(folder: Path) -> bool:
    """A training run: anything the engine writes into one (:data:`RUN_FILES`), or its lock."""
    return bool(run_files(folder)) or (Path(folder) / "train.lock").exists()


def check_output_folder(out: Path, sources: list[Path], is_own: Any, what: str, option: str = "-o") -> None:
    """Refuse an output folder an export could lose something in, in one line.

    ``out`` may not exist yet, be empty, or hold an earlier output of the same kind
    (``is_own(out)``), which is then replaced crash-safe. It may not be (or hold) one of the
    ``sources`` being exported, a training run, a file, or a folder holding anything else.
    """
    target = out.expanduser().resolve()
    for src in sources:
        s = src.expanduser().resolve()
        if s == target or target in s.parents:
            raise OutputError(f"{out}: this is {'the model being exported' if s == target else 'a folder holding the model being exported'}"
                              f" ({src}); {option} must name a new or empty folder")
    if not out.exists() and not out.is_symlink():
        return
    if not out.is_dir() or out.is_symlink():
        raise OutputError(f"{out}: already exists and is not a folder; {option} must name a new or empty folder")
    if is_run_dir(out):
        raise OutputError(f"{out}: is a training run; {option} must name a new or empty folder (nothing was written)")
    if any(out.iterdir()) and not is_own(out):
        names = sorted(p.name for p in out.iterdir())
        shown = ", ".join(names[:4]) + (", …" if len(names) > 4 else "")
        raise OutputError(f"{out}: holds other files ({shown}), not an earlier {what}; {option} must name a new or empty "
                          "folder (nothing was written)")


# ----------------------------------------------------------------------------- reading saved models


@dataclass
class SavedModel:
    """What an export or a checkpoint says about its networks, validated, nothing built yet."""

    path: Path  # the export or checkpoint folder actually read
    task: str
    recipe: dict[str, Any]
    specs: dict[str, dict[str, Any]]  # slot -> {type, **kwargs}
    weights: dict[str, dict[str, torch.Tensor]]  # slot -> state dict (EMA copy where there is one)
    meta: dict[str, Any]
    config: dict[str, Any]
    step: int = 0  # the training step the weights are from (exports; 0 where unknown)

    def registry(self, slot: str) -> Any:
        """The registry a slot's spec names a network of (the recipe's declaration)."""
        from .registry import RECIPES

        return RECIPES.get(self.recipe["type"], "recipe.type").model_slots[slot]


def as_export_dir(path: Path) -> Path:
    """An export or pretrained folder, a run's ``export/``, or (a save killed mid-swap) its
    ``<folder>.old/`` (:func:`publish_folder`)."""
    if (path / "config.json").is_file():
        return path
    export = resolve_export_dir(path / "export")
    if (export / "config.json").is_file():
        return export
    return resolve_export_dir(path)


def _finite_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _whole(lo: int, hi: int) -> Any:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


META_FIELDS: dict[str, tuple[Any, str]] = {
    "scale": (_whole(1, 16), "a whole number from 1 to 16"),
    "multiple": (_whole(1, 4096), "a whole number from 1 to 4096"),
    "value_range": (lambda v: isinstance(v, list) and len(v) == 2 and all(map(_finite_number, v)) and v[0] < v[1],
                    "[low, high], two finite numbers, low < high"),
    "num_classes": (_whole(1, 100_000), "a whole number from 1 to 100000"),
    "z_dim": (_whole(1, 65_536), "a whole number from 1 to 65536"),
    "conditional": (lambda v: isinstance(v, bool), "true or false"),
    "ignore_index": (_whole(-1, 100_000), "a whole number from -1 to 100000"),
    "class_names": (lambda v: isinstance(v, list) and len(v) <= 100_000 and all(isinstance(x, str) for x in v), "a list of names"),
    "palette": (lambda v: isinstance(v, list) and len(v) <= 100_000 and all(
        isinstance(c, list) and len(c) == 3 and all(_whole(0, 255)(x) for x in c) for c in v), "a list of [r, g, b] (0-255)"),
    "directions": (lambda v: isinstance(v, dict) and all(isinstance(k, str) and isinstance(x, str) for k, x in v.items()),
                   "a mapping of direction -> network slot"),
    "image_shape": (lambda v: isinstance(v, list) and len(v) == 3 and all(_whole(1, 4096)(x) for x in v), "[channels, height, width]"),
    **{k: (_whole(1, 64), "a whole number from 1 to 64") for k in ("in_channels", "out_channels", "a_channels", "b_channels")},
}
"""The model-description fields a loader relies on, each with its check and what it expects."""


DATA_FIELDS: dict[str, tuple[Any, str]] = {
    "type": (lambda v: isinstance(v, str), "a data set name"),
    "root": (lambda v: isinstance(v, str), "a path"),
    "val_split": (lambda v: isinstance(v, str), "a split name"),
    "direction": (lambda v: v in ("AtoB", "BtoA"), "AtoB or BtoA"),
    "sketch": (lambda v: isinstance(v, str), "a sketch kind (xdog, canny)"),
    "sketch_channels": (_whole(1, 4), "a whole number from 1 to 4"),
    "sketch_params": (lambda v: isinstance(v, dict), "a mapping"),
    "crop_size": (_whole(1, 65_536), "a whole number from 1 to 65536"),
}
"""The training data fields the running side reads (a pix2pix model sketches a photo as its data set did)."""


def validate_export_info(info: Any, path: Path) -> dict[str, Any]:
    """An export's or pretrained folder's ``config.json``, every field a loader reads checked,
    each failure one line naming the file and the key."""
    from . import recipes  # noqa: F401  (the recipe registry)
    from .registry import RECIPES

    def bad(key: str, expected: str, value: Any) -> CheckpointError:
        return CheckpointError(f"{path}: {key}: expected {expected}, got {short_repr(value, 60)}")

    if not isinstance(info, dict):
        raise CheckpointError(f"{path}: expected a JSON object (an i2i export's config), got {type(info).__name__}")
    missing = [k for k in ("models", "recipe") if k not in info]
    if missing:
        raise CheckpointError(f"{path}: missing {', '.join(missing)} (not an i2i export)")
    recipe, models = info["recipe"], info["models"]
    if not isinstance(recipe, dict) or not isinstance(recipe.get("type"), str):
        raise bad("recipe", "a {type: <recipe name>} mapping", recipe)
    if recipe["type"] not in RECIPES:
        raise CheckpointError(f"{path}: recipe.type: unknown recipe {short_repr(recipe['type'], 60)}; "
                              f"known: {', '.join(RECIPES.list())}")
    declared = RECIPES.get(recipe["type"])
    if not isinstance(models, dict) or not all(isinstance(v, dict) and isinstance(v.get("type"), str) for v in models.values()):
        raise bad("models", "a mapping of each network slot to a {type: …} spec", models)
    unknown = [s for s in models if s not in declared.model_slots]
    if unknown:
        raise CheckpointError(f"{path}: models.{unknown[0]}: not a network of recipe {recipe['type']!r} "
                              f"(it has {', '.join(declared.model_slots)})")
    lacking = [s for s in declared.inference_slots if s not in models]
    if lacking:
        raise CheckpointError(f"{path}: models: missing {', '.join(lacking)} (recipe {recipe['type']!r} runs with "
                              f"{', '.join(declared.inference_slots)})")
    task = info.get("task", declared.task)
    if task != declared.task:
        raise CheckpointError(f"{path}: task: recipe {recipe['type']!r} is for task {declared.task!r}, "
                              f"the file says {short_repr(task, 40)}")
    step = info.get("step", 0)
    if step is None:
        step = 0
    if not _whole(0, 2**62)(step):
        raise bad("step", "a whole number >= 0", step)
    meta = info.get("meta", {})
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise bad("meta", "a mapping", meta)
    for key, (ok, expected) in META_FIELDS.items():
        if key in meta and not ok(meta[key]):
            raise bad(f"meta.{key}", expected, meta[key])
    config = info.get("config", {})
    if config is not None and not isinstance(config, dict):
        raise bad("config", "a mapping (the training config)", config)
    for section in ("data", "losses", "models", "recipe"):  # the sections the running side reads
        if (config or {}).get(section) is not None and not isinstance(config[section], dict):
            raise bad(f"config.{section}", "a mapping", config[section])
    data = (config or {}).get("data") or {}
    for key, (ok, expected) in DATA_FIELDS.items():
        if data.get(key) is not None and not ok(data[key]):
            raise bad(f"config.data.{key}", expected, data[key])
    return {**info, "task": task, "step": step, "meta": meta, "config": config or {}}


def _read_export_info(path: Path) -> dict[str, Any]:
    """An export's ``config.json`` (size-bounded), checked by :func:`validate_export_info`."""
    text = read_small_text(path)
    try:
        info = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({type(e).__name__}: {str(e)[:120]})") from None
    return validate_export_info(info, path)


def _weights_file(folder: Path, slot: str) -> Path | None:
    """A slot's weights in an export (``<slot>.safetensors``) or a pretrained folder (``<slot>/model.safetensors``)."""
    for f in (folder / f"{slot}.safetensors", folder / slot / PRETRAINED_WEIGHTS):
        if f.is_file():
            return f
    return None


def read_saved(path: str | Path) -> SavedModel:
    """A run directory (its ``export/``), an export folder (``config.json`` + ``<slot>.safetensors``),
    a pretrained folder (:func:`write_pretrained`) or a checkpoint folder (``config.yaml`` +
    ``models.safetensors``, EMA weights preferred)."""
    from . import recipes  # noqa: F401  (the recipe registry, for a checkpoint's task)
    from .registry import RECIPES

    p = as_export_dir(Path(path).expanduser())
    if not p.exists():
        raise CheckpointError(f"{path}: no such run, export or checkpoint directory")
    if (p / "config.json").is_file():
        info = _read_export_info(p / "config.json")
        specs = info["models"]
        weights = {s: load_tensors(f) for s in specs if (f := _weights_file(p, s)) is not None}
        return SavedModel(p, info["task"], info["recipe"], specs, weights, info["meta"], info["config"], info["step"])
    if (p / "models.safetensors").is_file() and (p / "config.yaml").is_file():
        config = read_config(p / "config.yaml")
        if not isinstance(config.get("models"), dict) or not isinstance(config.get("recipe"), dict):
            raise CheckpointError(f"{p / 'config.yaml'}: needs 'models' and 'recipe' mappings")
        tensors = load_tensors(p / "models.safetensors")
        specs = config["models"]
        weights = {s: w for s in specs if (w := slot_weights(tensors, s))}
        task = RECIPES.get(config["recipe"]["type"], "recipe.type").task
        return SavedModel(p, task, config["recipe"], specs, weights, {}, config)
    raise CheckpointError(f"{path}: neither an export (config.json) nor a checkpoint (config.yaml + models.safetensors)")


def _bound_parameters(registry: Any, spec: dict[str, Any], key: str, where: Path) -> None:
    """Depth and size of a saved network bounded before it is built for real
    (:func:`i2i.registry.check_network_size`): one line naming the file and key."""
    from .errors import ConfigError
    from .registry import check_network_size

    try:
        check_network_size(registry, spec, key)
    except ConfigError as e:
        raise CheckpointError(f"{where}: {e}") from None


def _check_weights(weights: dict[str, torch.Tensor], net: torch.nn.Module, path: Path) -> None:
    """Tampered exports are refused: each tensor's dtype must be the network's own (a float64,
    fp16 or int8 copy would load and run silently), and floating-point values finite."""
    own = net.state_dict()
    wrong = [f"{k} {str(v.dtype).removeprefix('torch.')} (expected {str(own[k].dtype).removeprefix('torch.')})"
             for k, v in weights.items() if k in own and v.dtype != own[k].dtype]
    if wrong:
        raise CheckpointError(f"{path}: wrong tensor dtypes: {'; '.join(wrong[:3])}{' …' if len(wrong) > 3 else ''}")
    if not all_finite(list(weights.values())):
        raise CheckpointError(f"{path}: holds NaN or infinite weights")


def build_network(saved: SavedModel, slot: str, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The slot's network, rebuilt from its spec (size-bounded first), weights checked and loaded
    strictly, in eval mode on ``device``."""
    if slot not in saved.specs:
        raise CheckpointError(f"{saved.path}: no network {slot!r} (it has {', '.join(saved.specs)})")
    registry = saved.registry(slot)
    _bound_parameters(registry, saved.specs[slot], f"models.{slot}", saved.path)
    net = registry.build(saved.specs[slot], f"models.{slot}")
    if slot not in saved.weights:
        raise CheckpointError(f"{saved.path}: no weights for {slot}")
    _check_weights(saved.weights[slot], net, saved.path / f"{slot}.safetensors")
    load_fitting(net, saved.weights[slot], f"{saved.path}: {slot}")
    return net.eval().to(device)


def load_slot_weights(path: str | Path, slot: str) -> dict[str, torch.Tensor]:
    """Weights of one slot from a run/export/checkpoint (for ``train.init``)."""
    from .config import resolve_path

    p = as_export_dir(resolve_path(str(path)))
    if (p / f"{slot}.safetensors").is_file():
        return load_tensors(p / f"{slot}.safetensors")
    if (p / "models.safetensors").is_file():
        sd = slot_weights(load_tensors(p / "models.safetensors"), slot)
        if sd:
            return sd
    raise CheckpointError(f"{path}: no {slot} weights (expected {slot}.safetensors in an export or a checkpoint)")


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
