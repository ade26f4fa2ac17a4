#!/usr/bin/env python
"""Evaluate a trained model; with --json the last stdout line is one JSON object.

    python tools/eval.py --task cgan --checkpoint runs/acgan_mnist-… --json
    python tools/eval.py --task sr --checkpoint RUN --data datasets/Set5 --json
    accelerate launch --cpu --num_processes 2 tools/eval.py --task seg --checkpoint RUN --json

``--data`` defaults to the recipe's own validation/test split.
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
    from i2i.apps import get_app
    from i2i.inference import TASK_ALIASES, load_model

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--task")
    pre.add_argument("--checkpoint")
    pre.add_argument("--fast", action="store_true",
                     help="fastest measured configuration: BN folded, channels_last, autocast (bf16 where native)")
    known, _ = pre.parse_known_args(argv)
    task = TASK_ALIASES.get(known.task, known.task) if known.task else None
    model = None
    if task is None:
        if known.checkpoint is None:
            pre.error("give --task and/or --checkpoint")
        model = load_model(known.checkpoint)
        task = model.task
    app = get_app(task)
    p = argparse.ArgumentParser(description=f"i2i evaluation ({task})", parents=[pre])
    p.add_argument("--data", help="data folder (default: the recipe's own validation/test split)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last stdout line")
    p.add_argument("--debug", action="store_true")
    app.add_eval_args(p)
    args = p.parse_args(argv)
    if model is None:
        model = load_model(args.checkpoint, task=args.task, with_discriminator=True)
    if args.fast:  # BN with batch statistics (pix2pix --batch-stats) must stay a BN
        model.fast(fold_bn=not getattr(args, "batch_stats", False))
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
