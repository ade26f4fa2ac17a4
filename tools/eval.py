#!/usr/bin/env python
"""Evaluate a trained model; with --json the last stdout line is one JSON object.

    python tools/eval.py --task cgan --checkpoint runs/acgan_mnist-… --json
    python tools/eval.py --task sr --checkpoint RUN --data datasets/Set5 --json
    python tools/eval.py --task cyclegan --checkpoint RUN --json       # cycle_a, cycle_b, sharpness_ab, ...
    accelerate launch --cpu --num_processes 2 tools/eval.py --task seg --checkpoint RUN --json

``--data`` defaults to the recipe's own validation/test split; ``--device`` to CUDA when
present (``--device cpu`` forces the CPU).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from i2i.cli import run  # noqa: E402


def _print_table(metrics: dict) -> None:
    width = max((len(k) for k in metrics), default=0)
    for k, v in metrics.items():
        if isinstance(v, (list, dict)):
            continue
        print(f"{k:<{width}}  {v:.4f}" if isinstance(v, float) else f"{k:<{width}}  {v}")


def main(argv: list[str]) -> int:
    from i2i.apps import prepare

    def tool_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data", help="data folder (default: the recipe's own validation/test split)")
        p.add_argument("--json", action="store_true", help="print one JSON object as the last stdout line")

    ready = prepare(argv, "eval", tool_args)
    if ready is None:
        return 0
    app, model, args, task = ready
    metrics = app.evaluate(model, args)
    metrics = {"task": task, "checkpoint": str(model.path), **metrics}
    if int(os.environ.get("RANK", "0")) != 0:  # multi-process: the main process reports
        return 0
    if args.json:
        print(json.dumps(metrics))
    else:
        _print_table(metrics)
    return 0


if __name__ == "__main__":
    from i2i.distributed import relaunch_cpu_workers

    code = relaunch_cpu_workers(__file__, sys.argv[1:])  # accelerate launch --cpu --num_processes N
    sys.exit(code if code is not None else run(main))
