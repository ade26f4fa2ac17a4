"""The training engine: Accelerate, optimizers, schedulers, EMA, checkpoints, logging.

Read top to bottom (nanoGPT style): ``Trainer.__init__`` builds everything from the
validated config, ``Trainer.fit`` is the loop. The recipe owns the objective
(:mod:`i2i.recipes.base` documents the calls); this file owns how it is optimised.

The engine knows no network by name: a recipe declares its slots and updates
(:mod:`i2i.recipes.base`), :mod:`i2i.engine.build` builds them, :mod:`i2i.engine.step` runs
one step over them, and :mod:`i2i.runs` owns what is saved. Notes (diffusers' train_vqgan, pix2pix):
* one ``accelerator.prepare(*models, *optimizers, *schedulers)`` call in matched order;
* schedulers step once per optimizer step (``split_batches=True`` stops Accelerate from
  stepping them ``num_processes`` times), so a schedule means the same in 1 or N processes;
* every process draws its own noise (seed + rank); data is sharded by a resumable sampler.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader, Sampler

from .. import perf
from .. import runs as ckpt
from ..card import Provenance, derive_card
from ..config import Config, DataConfig
from ..errors import CheckpointError, ConfigError, I2IError
from ..registry import SCHEDULERS
from .build import build_run
from .optim import build_optimizer
from .step import TrainStep
from .tracking import MetricsLog, log_images, plot_curves, to_floats, wandb_mode


class TrainingError(I2IError):
    """Training cannot go on (e.g. too many non-finite steps); the message says what was saved."""


class ResumableBatchSampler(Sampler[list[tuple[int, int]]]):
    """Infinite, seeded, sharded batches of ``(index, sample_seed)``; restartable at any batch.

    Epoch ``e`` uses permutation ``randperm(n, seed + e)``; process ``r`` of ``w`` takes
    its ``batch_size`` slice of every global batch of ``batch_size × w``. Batch ``b`` is a
    pure function of (seed, b), so a resumed run skips straight to the next unseen batch.
    """

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world: int = 1, start: int = 0):
        self.check_fits(n, batch_size, world)
        self.n, self.bs, self.seed, self.rank, self.world, self.start = n, batch_size, seed, rank, world, start
        self.global_bs = batch_size * world
        self.per_epoch = max(1, n // self.global_bs)

    @staticmethod
    def check_fits(n: int, batch_size: int, world: int) -> None:
        """One global batch must fit in the data set: a batch larger than it would have to repeat
        samples within a batch (and a huge one never finishes building). Data sets that repeat on
        purpose (pix2pix's ``data.repeat``) count their repeats in ``len``."""
        if n == 0:
            raise ConfigError("the training set is empty", "data")
        if batch_size * world > n:
            procs = f" × {world} processes" if world > 1 else ""
            raise ConfigError(f"{batch_size}{procs} is more than the {n} training samples; use at most {n // world}",
                              "data.batch_size")

    def _epoch(self, e: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 100_003 + e)
        return torch.randperm(self.n, generator=g)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        b = self.start
        while True:
            e, pos = divmod(b, self.per_epoch)
            perm = self._epoch(e)
            for p in range(pos, self.per_epoch):
                base = p * self.global_bs + self.rank * self.bs
                idx = perm[base : base + self.bs].tolist()
                seeds = [(self.seed * 1_000_003 + e) * 10_000_019 + base + j for j in range(len(idx))]
                yield [(i, s % (2**63)) for i, s in zip(idx, seeds)]
                b += 1

    def __len__(self) -> int:  # infinite; DataLoader only needs this for len(loader)
        return 2**31


def loader_options(data: DataConfig) -> dict[str, Any]:
    """The training loader's ``DataLoader`` options from ``data:`` (workers, pinning, prefetch)."""
    workers = data.num_workers
    return {"num_workers": workers, "pin_memory": data.pin_memory and torch.cuda.is_available(),
            "prefetch_factor": data.prefetch_factor if workers > 0 else None, "persistent_workers": workers > 0}


def batch_to_device(batch: dict[str, Any], device: torch.device, channels_last: bool = False) -> dict[str, Any]:
    """Move tensors; with ``channels_last`` image batches (4-D float) take the nets' NHWC layout too."""
    out = {}
    for k, v in batch.items():
        if isinstance(v, torch.Tensor):
            v = v.to(device, non_blocking=True)
            if channels_last and v.dim() == 4 and v.is_floating_point():
                v = v.contiguous(memory_format=torch.channels_last)
        out[k] = v
    return out


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v if isinstance(v, (int, float, str, bool)) or v is None else str(v)
    return out


@contextmanager
def _eval_mode(*modules: nn.Module | None):
    """Eval mode and a forked RNG: monitoring never changes what training draws next."""
    states = [(m, m.training) for m in modules if m is not None]
    for m, _ in states:
        m.eval()
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            for m, was in states:
                m.train(was)


def use_deterministic_kernels() -> None:
    """``train.deterministic``: the same kernels and summation orders in every run, so a resumed
    run repeats the uninterrupted one on CUDA as it does on the CPU.

    * cuBLAS: a fixed workspace (``CUBLAS_WORKSPACE_CONFIG=:4096:8``, NVIDIA's documented
      setting for reproducible results); it is read when the first cuBLAS handle is made, so it
      is set before the engine touches CUDA (kept if the user set it);
    * cuDNN: deterministic algorithms and no autotuning (``benchmark`` may time and pick a
      different algorithm in each process);
    * ``torch.use_deterministic_algorithms(warn_only=True)``: deterministic kernels wherever
      PyTorch has one; the few ops without one (on CUDA e.g. ReflectionPad2d's backward, used
      by the ResNet generator) warn once instead of stopping the run.
    """
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)


class NonFiniteGuard:
    """Counts non-finite training steps on the device: no host synchronisation per step.

    Every update reports a 0-d bool "finite" flag (loss and gradient norm finite); a step is
    good when all its updates were. The streak of bad steps, the step at which it first
    reached ``limit`` and the total are kept as device tensors and read only by
    :meth:`read` (logging steps, saves, the end of the run), so a GPU step never waits for
    the host. Bad updates were already skipped on the device (see :mod:`i2i.engine.step`),
    so the weights stay the last finite ones while a check is pending.
    """

    def __init__(self, device: torch.device, limit: int):
        self.limit = limit
        # [streak, step the streak reached the limit (-1: not yet), total bad steps]
        self.state = torch.tensor([0, -1, 0], dtype=torch.int64, device=device)

    def record(self, step: int, finite: torch.Tensor) -> None:
        streak = torch.where(finite, 0, self.state[0] + 1)
        hit = torch.where((streak >= self.limit) & (self.state[1] < 0), step, self.state[1])
        self.state = torch.stack([streak, hit, self.state[2] + (~finite).long()])

    def read(self, acc: Any) -> tuple[int, int, int]:
        """(streak, hit step or -1, total): one device→host copy; the worst over all processes."""
        state = acc.reduce(self.state.clone(), reduction="max") if acc.num_processes > 1 else self.state
        streak, hit, total = state.tolist()
        return streak, hit, total

    def reset(self) -> None:
        self.state = self.state.new_tensor([0, -1, 0])


def _on_main_then_agree(state: Any, action: Any) -> None:
    """``action()`` on the main process; its one-line refusal (a CheckpointError) reaches every
    process, so all of them stop together instead of hanging at the next collective."""
    from accelerate.utils import broadcast_object_list

    refused: list[str | None] = [None]
    if state.is_main_process:
        try:
            action()
        except CheckpointError as e:
            refused = [str(e)]
    if state.num_processes > 1:
        broadcast_object_list(refused)
    if refused[0]:
        raise CheckpointError(refused[0])


class Trainer:
    def __init__(self, cfg: Config, output_dir: str | Path | None = None, resume: bool | str | None = None,
                 overwrite: bool = False):
        from accelerate import PartialState

        self.cfg = cfg
        t = cfg.train
        if t.deterministic:
            use_deterministic_kernels()
        from ..distributed import use_cpu

        state = PartialState(cpu=use_cpu())  # process group first: every process must agree on the run directory
        self.run_dir = self._resolve_run_dir(output_dir, resume)
        self._lock = ckpt.RunLock(self.run_dir)
        if overwrite:
            if resume:
                raise CheckpointError("give --resume or --overwrite, not both")
            self._move_earlier_run_aside(state)
        made = [p for p in (self.run_dir, *self.run_dir.parents) if not p.exists()]  # what a failed start removes again
        self._take_lock(state)
        try:
            self._setup(resume)
        except BaseException:
            self._lock.release()
            if state.is_main_process:  # a run that fails before its first step leaves no empty run folder behind
                for folder in made:
                    try:
                        folder.rmdir()  # only if still empty: never anything a user or the run put there
                    except OSError:
                        break
            raise

    def _move_earlier_run_aside(self, state: Any) -> None:
        """``--overwrite``: an earlier run in the run directory is renamed to ``<dir>.old-<time>``
        (kept, never deleted) once its lock shows that no training is using it."""
        def move() -> None:
            if ckpt.run_files(self.run_dir):
                self._lock.acquire()  # refused while another training holds the folder
                self._lock.release()
                aside = ckpt.move_aside(self.run_dir, time.strftime("%Y%m%d-%H%M%S"))
                print(f"--overwrite: the earlier run in {self.run_dir} is kept as {aside}")

        _on_main_then_agree(state, move)

    def _take_lock(self, state: Any) -> None:
        """The main process locks the run directory; every process learns the outcome (no hang)."""
        _on_main_then_agree(state, self._lock.acquire)

    def _setup(self, resume: bool | str | None) -> None:
        from accelerate import Accelerator, PartialState
        from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, set_seed

        from ..distributed import use_cpu

        cfg, t = self.cfg, self.cfg.train
        trackers = None if cfg.logging.tracker == "none" else [cfg.logging.tracker]
        # train.fast and the explicit keys -> one plan for this device (printed and saved below)
        plan = perf.training_plan(PartialState().device, fast=t.fast, mixed_precision=t.mixed_precision,
                                  channels_last=t.channels_last, compile=t.compile, deterministic=t.deterministic)
        if plan.cudnn_benchmark:
            torch.backends.cudnn.benchmark = True
        self.acc = acc = Accelerator(
            cpu=use_cpu(),
            mixed_precision=plan.mixed_precision,
            log_with=trackers,
            project_config=ProjectConfiguration(project_dir=str(self.run_dir), logging_dir=str(self.run_dir)),
            dataloader_config=DataLoaderConfiguration(split_batches=True),
            step_scheduler_with_optimizer=True,
        )
        self.is_main = acc.is_main_process

        # ---- build (same seed on every process: identical initial weights) ----------
        set_seed(t.seed)
        built = build_run(cfg)
        self.recipe, self.models, self.train_ds, self.val_ds = built.recipe, built.models, built.train_set, built.val_set
        ResumableBatchSampler.check_fits(len(self.train_ds), cfg.data.batch_size, acc.num_processes)  # before any work
        self.updates = self.recipe.updates(list(self.models), t.d_steps)
        self.plan = plan = replace(plan.for_networks(*self.models.values()), mixed_precision=acc.mixed_precision)
        if plan.channels_last:
            for m in self.models.values():
                m.to(memory_format=torch.channels_last)

        self.opts = {s: build_optimizer(cfg.optim[s], f"optim.{s}", [p for p in m.parameters() if p.requires_grad],
                                        fast=plan.fused_optimizers)
                     for s, m in self.models.items()}
        self.scheds = {}
        for s, opt in self.opts.items():  # a schedule spans the slot's optimizer steps over the run
            total = t.max_steps * sum(u.repeat for u in self.updates if s in u.slots)
            spec = cfg.sched.get(s, {"type": "constant"})
            self.scheds[s] = SCHEDULERS.build(spec, f"sched.{s}", optimizer=opt, total_steps=total)

        slots = list(self.models)
        prepared = acc.prepare(*self.models.values(), *self.opts.values(), *self.scheds.values())
        n = len(slots)
        self.wrapped = dict(zip(slots, prepared[:n]))
        self.opts = dict(zip(slots, prepared[n : 2 * n]))
        self.scheds = dict(zip(slots, prepared[2 * n :]))
        self.bare = {s: acc.unwrap_model(m) for s, m in self.wrapped.items()}
        self.recipe.to(acc.device)

        self.emas: dict[str, Any] = {}
        if t.ema_decay is not None:
            from timm.utils import ModelEmaV3

            for s in self.recipe.ema_slots:
                if s in self.bare:
                    self.emas[s] = ModelEmaV3(self.bare[s], decay=t.ema_decay)
                    self.emas[s].module.eval()
        if plan.compile:  # in place: state-dict keys, checkpoints and the EMA copy above are unaffected
            for m in self.bare.values():
                perf.compile_in_place(m, acc.device.type, mode=t.compile_mode)

        # ---- state, possibly from a checkpoint --------------------------------------
        self.step = 0
        self.consumed = 0
        self.nonfinite = 0  # host copy of the non-finite streak, refreshed at each check
        self._guard = NonFiniteGuard(acc.device, t.max_nonfinite)
        # fault-injection hook for the tests (like I2I_FAULT_SLOW_SAVE): "a-b" makes G's loss NaN at steps a..b
        lo, _, hi = os.environ.get("I2I_FAULT_NAN_STEPS", "").partition("-")
        self._fault_nan = range(int(lo), int(hi or lo) + 1) if lo.isdigit() else range(0)
        self._nonfinite_reported = 0
        self.lr_scale = 1.0  # < 1 after non-finite reloads; saved, so a resume keeps the lowered rates
        self.reloads = 0  # non-finite reloads by this process, bounded by train.max_reloads
        self.reload_data = False
        resume_path = self._resume_from(self._find_resume(resume))
        if resume_path is None:
            set_seed(t.seed + acc.process_index)

        self.sampler = ResumableBatchSampler(len(self.train_ds), cfg.data.batch_size, t.seed, acc.process_index,
                                             acc.num_processes, start=self.consumed)
        self.loader = DataLoader(self.train_ds, batch_sampler=self.sampler, **loader_options(cfg.data),
                                 generator=torch.Generator().manual_seed(t.seed))
        self.val_loader = acc.prepare_data_loader(
            DataLoader(self.val_ds, batch_size=cfg.eval.batch_size * acc.num_processes, shuffle=False,
                       num_workers=cfg.data.num_workers))
        self.sample_batch = self._sample_batch()
        self.train_step = TrainStep(
            self.recipe, self.updates, self.wrapped, self.bare, self.opts, self.scheds, autocast=acc.autocast,
            backward=acc.backward, clip_grad_norm=acc.clip_grad_norm_, grad_clip=t.grad_clip,
            scaler=acc.scaler is not None, emas=self.emas)

        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            for stale in (self.run_dir / "checkpoints").glob(".tmp-step_*"):  # a save killed half-way
                shutil.rmtree(stale, ignore_errors=True)
            (self.run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
            # what train.fast / the speed keys resolved to on this device, and why
            (self.run_dir / "train_plan.json").write_text(json.dumps(plan.to_dict(), indent=1) + "\n")
            if t.fast or plan.channels_last or plan.compile or plan.mixed_precision != "no":
                print(plan.summary(), flush=True)
        self.metrics = MetricsLog(self.run_dir / "metrics.jsonl", resume_step=self.step if resume_path else None) if self.is_main else None
        if trackers:
            self._init_trackers()

    # ------------------------------------------------------------------------- setup helpers
    def _resolve_run_dir(self, output_dir: str | Path | None, resume: bool | str | None) -> Path:
        from accelerate.utils import broadcast_object_list

        stamp = [time.strftime("%Y%m%d-%H%M%S")]
        broadcast_object_list(stamp)  # one name for every process
        return ckpt.resolve_run_dir(self.cfg.name or self.cfg.recipe["type"], output_dir, resume, stamp[0])

    def _find_resume(self, resume: bool | str | None) -> list[Path]:
        return ckpt.resume_candidates(self.run_dir, resume)

    def _resume_from(self, candidates: list[Path]) -> Path | None:
        """Load the newest readable candidate. An unreadable newer one (truncated, corrupt) is
        moved aside to ``corrupt-step_…``, so later saves and ``keep_last`` pruning never rank it
        above, or delete, the checkpoint actually used. An incompatible config is not skipped."""
        errors: list[str] = []
        for path in candidates:
            try:
                read = self._read(path)
            except CheckpointError as e:
                if len(candidates) == 1:
                    raise
                errors.append(str(e))
                if self.is_main:
                    print(f"skipping unreadable checkpoint: {e}", flush=True)
                continue
            if errors and self.is_main:
                for bad in candidates[: len(errors)]:
                    aside = bad.with_name(f"corrupt-{bad.name}-{time.strftime('%Y%m%d-%H%M%S')}")
                    os.rename(bad, aside)
                    print(f"moved unreadable {bad.name} aside to {aside.name}", flush=True)
            self._load(path, read)
            return path
        if errors:
            raise CheckpointError(f"--resume: none of the last {len(candidates)} checkpoints is readable; newest: {errors[0]}")
        return None

    def _init_trackers(self) -> None:
        kw: dict[str, Any] = {}
        if self.cfg.logging.tracker == "wandb":
            os.environ.setdefault("WANDB_SILENT", "true")
            id_file = self.run_dir / "wandb_id.txt"
            if self.is_main and not id_file.exists():
                import secrets

                id_file.write_text(secrets.token_hex(4))  # W&B run id: resuming continues the same run
            self.acc.wait_for_everyone()
            kw["wandb"] = {"dir": str(self.run_dir), "mode": wandb_mode(self.cfg.logging.wandb_mode),
                           "name": self.run_dir.name, "id": id_file.read_text().strip(), "resume": "allow"}
        config = _flatten(self.cfg.to_dict()) | _flatten(self.plan.to_dict(), "plan.")
        self.acc.init_trackers(self.cfg.logging.project, config=config, init_kwargs=kw)

    def _sample_batch(self) -> dict[str, Any] | None:
        n = min(self.cfg.logging.num_samples, len(self.val_ds))
        if n == 0:
            return None
        items = [self.val_ds[i] for i in range(n)]
        batch = torch.utils.data.default_collate(items)
        return batch_to_device(batch, self.acc.device)

    # ------------------------------------------------------------------------- checkpoints
    def _state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "consumed": self.consumed,
            "nonfinite": self.nonfinite,
            "lr_scale": self.lr_scale,
            "optimizers": {s: o.state_dict() for s, o in self.opts.items()},
            "schedulers": {s: sc.state_dict() for s, sc in self.scheds.items()},
            "scaler": self.acc.scaler.state_dict() if self.acc.scaler is not None else None,
            "num_processes": self.acc.num_processes,
        }

    def _ema_modules(self) -> dict[str, nn.Module]:
        return {s: e.module for s, e in self.emas.items()}

    def _weights_finite(self) -> bool:
        return ckpt.all_finite(list(ckpt.checkpoint_tensors(self.bare, self._ema_modules()).values()))

    def save(self) -> Path | None:
        """A checkpoint (and the export) of the current state; ``None``, writing nothing, when a
        weight or buffer is not finite: every checkpoint on disk is a state worth going back to."""
        if not self._weights_finite():  # saves may wait for the device: one reduction, one read
            if self.is_main:
                print(f"step {self.step}: weights are not finite; checkpoint and export not written", flush=True)
            return None
        acc = self.acc
        root = self.run_dir / "checkpoints"
        final = root / f"step_{self.step:08d}"
        tmp = root / f".tmp-step_{self.step:08d}"
        if self.is_main:
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir(parents=True)
        acc.wait_for_everyone()
        ckpt.torch_save(ckpt.process_state(self.recipe.train_state()), tmp / f"rng_{acc.process_index}.pt")
        acc.wait_for_everyone()
        if self.is_main:
            tensors = ckpt.checkpoint_tensors(self.bare, self._ema_modules())
            ckpt.write_checkpoint(tmp, final, tensors, self._state(), yaml.safe_dump(self.cfg.to_dict(), sort_keys=False),
                                  self.cfg.train.keep_last)
            self.export()
        acc.wait_for_everyone()
        return final

    def _read(self, path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, Any], dict[str, Any] | None]:
        """Everything a checkpoint holds, read before anything is changed (so a bad one can be skipped)."""
        return (ckpt.read_config(path / "config.yaml"), *ckpt.read_checkpoint(path, self.acc.process_index))

    def _load(self, path: Path, read: tuple | None = None) -> None:
        saved_cfg, tensors, state, rng = read or self._read(path)
        ckpt.check_same_architecture(saved_cfg, self.cfg.to_dict(), path)
        saved_optim = saved_cfg.get("optim") if isinstance(saved_cfg.get("optim"), dict) else {}
        for s in self.opts:
            old = saved_optim.get(s, {}).get("type") if isinstance(saved_optim.get(s), dict) else None
            if old is not None and old != self.cfg.optim[s]["type"]:  # the saved state has another layout
                raise CheckpointError(f"{path}: optim.{s}.type was {old!r} there, now {self.cfg.optim[s]['type']!r}; an "
                                      f"optimizer's state cannot change type: keep {old!r}, or start a new run with "
                                      f"train.init.{s}={self.run_dir}")
        weights = path / "models.safetensors"
        for s, m in self.bare.items():
            ckpt.load_fitting(m, ckpt.sub_state(tensors, s), f"{weights} ({s})")
        for s, e in self.emas.items():  # a checkpoint made without EMA starts the average at the weights
            ckpt.load_fitting(e.module, ckpt.sub_state(tensors, f"ema.{s}") or self.bare[s].state_dict(), f"{weights} (ema.{s})")
        for s, o in self.opts.items():
            o.load_state_dict(state["optimizers"][s])
        for s, sc in self.scheds.items():
            sc.load_state_dict(state["schedulers"][s])
        if self.acc.scaler is not None and state.get("scaler"):
            self.acc.scaler.load_state_dict(state["scaler"])
        self.step, self.consumed = state["step"], state["consumed"]
        self.nonfinite, self._nonfinite_reported = 0, 0  # a resumed or reloaded run starts a fresh streak
        self._guard.reset()
        self.lr_scale = state.get("lr_scale", 1.0)
        used = self._apply_hparams()
        self.recipe.load_train_state(rng.get("recipe", {}) if rng is not None else {})
        if rng is not None:
            ckpt.set_rng_state(rng)
        else:  # a different number of processes than when saved: fresh, but deterministic, streams
            from accelerate.utils import set_seed

            set_seed(self.cfg.train.seed + 7919 * self.step + self.acc.process_index)
        if self.is_main:
            print(f"resumed from {path} at step {self.step}", flush=True)
            for s in self.opts:
                if saved_optim.get(s) != self.cfg.optim[s]:
                    print(f"optim.{s} changed since the checkpoint; in use now: {used[s]}", flush=True)

    def _apply_hparams(self) -> dict[str, str]:
        """The configured optimizer hyperparameters, with lr × ``lr_scale``, into the optimizers and
        schedules just loaded from a checkpoint (``load_state_dict`` restores the saved ones, so a
        changed ``optim.<slot>`` would be recorded but not used). Returns what is used, per slot."""
        used = {}
        for s, opt in self.opts.items():
            probe = build_optimizer(self.cfg.optim[s], f"optim.{s}", [nn.Parameter(torch.zeros(1, device=self.acc.device))])
            hp = {k: v for k, v in probe.defaults.items() if k not in ("fused", "foreach", "differentiable", "capturable")}
            base = float(hp["lr"]) * self.lr_scale
            inner = getattr(opt, "optimizer", opt)
            sched = getattr(self.scheds[s], "scheduler", self.scheds[s])
            for i, group in enumerate(inner.param_groups):
                group.update({k: v for k, v in hp.items() if k in group})
                group["initial_lr"] = base
                group["lr"] = base * (sched.lr_lambdas[i](sched.last_epoch) if hasattr(sched, "lr_lambdas") else 1.0)
            sched.base_lrs = [base] * len(inner.param_groups)
            sched._last_lr = [g["lr"] for g in inner.param_groups]
            used[s] = ", ".join(f"{k}={v}" for k, v in hp.items() if k != "lr") + f", lr={base:g} (now {inner.param_groups[0]['lr']:g})"
        return used

    def export(self) -> Path:
        """``export/``: every slot's weights (its EMA copy where it has one) + config.json."""
        weights = {s: m.state_dict() for s, m in self.eval_nets().items()}
        cfg = self.cfg.to_dict()
        meta = self.recipe.export_meta()
        info = ckpt.export_info(self.recipe.task, cfg, list(self.bare), meta, self.step, list(self.emas))
        # the model card (i2i.card), beside the older ``meta``: what every reader of the export reads
        card = derive_card(self.recipe.task, cfg["recipe"], {s: cfg["models"][s] for s in self.bare}, meta, cfg,
                           self.eval_nets(), Provenance(format="i2i-export", step=self.step))
        info["card"] = card.to_dict()
        out = self.run_dir / "export"
        ckpt.write_export(out, weights, info)
        return out

    # ------------------------------------------------------------------------- monitoring
    def eval_nets(self) -> dict[str, nn.Module]:
        """The networks as evaluated, sampled and exported: EMA copies where a slot has one."""
        return {s: self.emas[s].module if s in self.emas else m for s, m in self.bare.items()}

    def write_samples(self) -> Path | None:
        if self.sample_batch is None or not self.is_main:
            return None
        import torchvision

        nets = self.eval_nets()
        with _eval_mode(*nets.values()), torch.no_grad(), self.acc.autocast():
            imgs = self.recipe.sample_grid(nets, self.sample_batch).float()
        nrow = getattr(self.recipe, "grid_nrow", 8)
        grid = torchvision.utils.make_grid(imgs.cpu(), nrow=nrow, padding=2, pad_value=1.0)
        if grid.shape[0] == 1:
            grid = grid.repeat(3, 1, 1)
        out = self.run_dir / "samples" / f"step_{self.step:08d}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        torchvision.utils.save_image(grid, out)
        if self.cfg.logging.tracker != "none":
            log_images(self.acc, self.cfg.logging.tracker, "samples", grid, self.step)
        return out

    def evaluate(self) -> dict[str, float]:
        limit = self.cfg.eval.max_batches

        def batches() -> Iterator[dict[str, Any]]:
            for i, b in enumerate(self.val_loader):
                if limit is not None and i >= limit:
                    break
                yield b

        nets = self.eval_nets()
        with _eval_mode(*nets.values()), torch.no_grad(), self.acc.autocast():
            metrics = self.recipe.run_evaluation(nets, batches(), self.acc)
        metrics = {f"eval/{k}": float(v) for k, v in metrics.items()}
        if metrics:
            self._log(metrics)
            if self.is_main:
                main = {k: round(v, 4) for k, v in metrics.items() if k.count("/") == 1}
                print(f"step {self.step}: {json.dumps(main)}", flush=True)
        return metrics

    def _log(self, values: dict[str, float]) -> None:
        if self.metrics is not None:
            self.metrics.write(self.step, values)
        if self.cfg.logging.tracker != "none":
            self.acc.log(values, step=self.step)

    # ------------------------------------------------------------------------- the loop
    def _check_nonfinite(self) -> None:
        """Read the device-side guard (logging steps, saves, the end); act on a full streak."""
        streak, hit, total = self._guard.read(self.acc)
        self.nonfinite = streak
        if total > self._nonfinite_reported:
            self._log({"train/nonfinite_steps": float(total)})
            if self.is_main:
                print(f"step {self.step}: {total - self._nonfinite_reported} non-finite step(s) skipped since the last "
                      f"check ({streak} in a row now)", flush=True)
            self._nonfinite_reported = total
        if hit >= 0:
            self._reload_or_stop(f"{self.cfg.train.max_nonfinite} non-finite steps in a row at step {hit} "
                                 f"({streak} by step {self.step})")

    def _reload_or_stop(self, what: str, can_reload: bool = True, weights_finite: bool = True) -> None:
        """``train.on_nonfinite``: back to the last checkpoint with lower rates, or stop, saying
        where the last finite state is (a save of non-finite weights writes nothing)."""
        t = self.cfg.train
        last = ckpt.latest_checkpoint(self.run_dir)
        if can_reload and t.on_nonfinite == "reload" and last is not None:
            if self.reloads >= t.max_reloads:
                raise TrainingError(f"{what}, again after {self.reloads} reloads (train.max_reloads) with learning rates at "
                                    f"×{self.lr_scale:g}; the last checkpoint is {last}. Lower the learning rate or "
                                    f"enable train.grad_clip")
            self.reloads += 1
            scale = self.lr_scale * t.nonfinite_lr_factor  # compounds: _load restores the checkpoint's own scale
            self._load(last)
            self.lr_scale = scale
            self._apply_hparams()
            self.reload_data = True
            if self.is_main:
                print(f"{what}: reloaded {last} (reload {self.reloads} of {t.max_reloads}); learning rates now "
                      f"×{self.lr_scale:g} of the configured values", flush=True)
            return
        self._guard.reset()  # the checkpoint below records the state, not a pending stop
        path = self.save() if weights_finite else None
        if path is not None:
            where = f"last good state saved to {path}"
        else:
            where = (f"non-finite weights not saved; last finite checkpoint: {last}" if last is not None
                     else "non-finite weights not saved, and there is no earlier checkpoint")
        raise TrainingError(f"{what}; {where}. Lower the learning rate, enable train.grad_clip, "
                            f"or set train.on_nonfinite=reload")

    def fit(self) -> Path:
        try:
            return self._fit()
        finally:  # done with the run directory, whichever way the run ended
            self._lock.release()

    def _fit(self) -> Path:
        from tqdm.auto import tqdm

        cfg, t, acc = self.cfg, self.cfg.train, self.acc
        data = iter(self.loader)
        bar = tqdm(total=t.max_steps, initial=self.step, disable=not (self.is_main and cfg.logging.progress),
                   dynamic_ncols=True, desc=self.run_dir.name)
        imgs_since, t_since = 0, time.perf_counter()

        def next_batch() -> dict[str, Any]:
            nonlocal imgs_since
            batch = batch_to_device(next(data), acc.device, self.plan.channels_last)
            self.consumed += 1
            imgs_since += next(v for v in batch.values() if isinstance(v, torch.Tensor)).shape[0] * acc.num_processes
            return batch

        while self.step < t.max_steps:
            if self.reload_data:  # back at a checkpoint: continue the data stream from its position
                self.reload_data = False
                self.sampler.start = self.consumed
                data = iter(self.loader)
                bar.n = self.step
            logs, finite = self.train_step(next_batch, self.step, fault_nan=self.step in self._fault_nan)
            self._guard.record(self.step, finite)
            self.step += 1
            bar.update(1)

            log_now = self.step % t.log_every == 0 or self.step == t.max_steps or (cfg.logging.first_step and self.step == 1)
            save_now = bool(t.ckpt_every) and self.step % t.ckpt_every == 0 and self.step != t.max_steps
            if log_now or save_now:  # the only host syncs: read the guard and the logged values
                self._check_nonfinite()
                if self.reload_data:
                    continue
            if log_now:
                dt = time.perf_counter() - t_since
                values = dict(zip(logs, to_floats(list(logs.values()))))
                values.update({f"lr/{s}": float(o.param_groups[0]["lr"]) for s, o in self.opts.items()})
                values["perf/img_per_s"] = imgs_since / max(dt, 1e-9)
                self._log(values)
                bar.set_postfix({k: f"{values[k]:.3f}" for k in ("g/total", "d/loss") if k in values})
                imgs_since, t_since = 0, time.perf_counter()
            if cfg.logging.sample_every and self.step % cfg.logging.sample_every == 0:
                self.write_samples()
            if cfg.eval.every and self.step % cfg.eval.every == 0 and self.step != t.max_steps:
                self.evaluate()
            if save_now and self.save() is None:  # e.g. buffers gone non-finite while the losses were not
                self._reload_or_stop(f"weights not finite at step {self.step}", weights_finite=False)
        bar.close()
        self.finish()
        return self.run_dir

    def finish(self) -> None:
        if self.save() is None:
            self._reload_or_stop(f"weights not finite at the end (step {self.step})", can_reload=False, weights_finite=False)
        if self.cfg.logging.sample_every:
            self.write_samples()
        if self.cfg.eval.at_end:
            self.evaluate()
        if self.is_main:
            plot_curves(self.run_dir)
        self.acc.end_training()
        self._lock.release()
