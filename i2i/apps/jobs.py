"""Big jobs: one :class:`~i2i.apps.common.FileLoop` run spread over the processes of an Accelerate launch.

    accelerate launch --cpu --num_processes 2 tools/infer.py --task sr photos/ -o out/
    accelerate launch --num_processes 8 -m i2i.commands infer --task sr photos/ -o out/   # 8 GPUs

Every process of the launch parses the same command line, so every process builds the
same list of (input, output) pairs; Accelerate's ``PartialState.split_between_processes``
gives each a contiguous share, so every input is processed exactly once, by the same
per-image code (and the same bytes) as in one process. ``--resume`` drops the pairs whose
output already exists before the split. The main process shows one progress bar for the
whole job (the processes count finished files in the process group's key-value store), and
prints the one summary of the whole job from the gathered results; every process returns the
same exit code.

Outputs of a multi-process or ``--resume`` run are written under a temporary name
(``.<stem>.part<suffix>``) and renamed when complete, so that a killed job leaves no file
that ``--resume`` would take for finished.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Job", "atomic_writer"]


_RUNS = 0


def _world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


@dataclass
class Job:
    """This process's place in the job: ``rank`` of ``size`` processes (1 without a launcher)."""

    size: int = 1
    rank: int = 0
    state: Any = None

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def current(cls) -> Job:
        if _world_size() <= 1:
            return cls()
        from accelerate import PartialState

        from ..distributed import use_cpu

        state = PartialState(cpu=use_cpu())
        return cls(state.num_processes, state.process_index, state)

    def share(self, items: list) -> list:
        """This process's contiguous share of ``items`` (all of them in one process)."""
        if self.size == 1:
            return list(items)
        with self.state.split_between_processes(list(items)) as mine:
            return list(mine)

    def gather(self, items: list) -> list:
        """Every process's ``items``, concatenated in process order (the input order for shares)."""
        if self.size == 1:
            return list(items)
        from accelerate.utils import gather_object

        return list(gather_object(list(items)))

    def progress(self, bar: Any) -> Any:
        """A progress object for :class:`FileLoop`: one bar on the main process for the whole job."""
        global _RUNS
        _RUNS += 1  # the same sequence in every process: the same store key
        return bar if self.size == 1 else _SharedBar(bar, f"i2i_files_done_{_RUNS}")


class _SharedBar:
    """``update``/``write`` like tqdm's; the count is the job's, from the process group's store."""

    def __init__(self, bar: Any, key: str):
        import torch.distributed as dist

        self.bar, self.key = bar, key
        try:
            self.store = dist.distributed_c10d._get_default_store()
        except (RuntimeError, AttributeError, ValueError):  # no store: each process counts its own
            self.store = None

    def update(self, n: int = 1) -> None:
        done = self.store.add(self.key, n) if self.store is not None else None
        if self.bar is not None:
            if done is None:
                self.bar.update(n)
            else:
                self.bar.n = done
                self.bar.refresh()

    def write(self, line: str, file: Any = None) -> None:
        if self.bar is not None:
            self.bar.write(line, file=file)
        else:
            print(line, file=file or sys.stdout)


def part_name(dst: Path) -> Path:
    """``out/cat_x4.png`` -> ``out/.cat_x4.part.png`` (the suffix kept: writers pick the format by it)."""
    return dst.with_name(f".{dst.stem}.part{dst.suffix}")


def atomic_writer(write: Callable[[Path, Path, Any], str | None]) -> Callable[[Path, Path, Any], str | None]:
    """``write`` into :func:`part_name` and rename to ``dst`` once it returned (a killed run leaves only the part)."""

    def atomic(src: Path, dst: Path, result: Any) -> str | None:
        tmp = part_name(dst)
        try:
            line = write(src, tmp, result)
            os.replace(tmp, dst)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return line.replace(str(tmp), str(dst)) if line else line

    return atomic
