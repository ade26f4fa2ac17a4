#!/usr/bin/env python
"""Train a recipe.

    python tools/train.py tasks/acgan_mnist.yaml train.max_steps=200 data.root=/path
    accelerate launch --cpu --num_processes 2 tools/train.py tasks/acgan_mnist.yaml --output-dir runs/x
    python tools/train.py tasks/acgan_mnist.yaml --output-dir runs/x --resume      # latest checkpoint
    python tools/train.py --list                                                   # registered names
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without install

from i2i.cli import run  # noqa: E402


def list_registries() -> None:
    import i2i
    from i2i.registry import ALL, describe

    del i2i
    for kind, reg in ALL.items():
        print(f"{kind}:")
        for name in reg.list():
            print(f"  {name}({describe(reg.get(name))})")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description="Train an i2i recipe (see README).")
    p.add_argument("config", nargs="?", help="tasks/<recipe>.yaml")
    p.add_argument("overrides", nargs="*", help="dotted overrides: train.max_steps=200 data.root=/path")
    p.add_argument("--output-dir", help="run directory (default runs/<name>-<time>)")
    p.add_argument("--resume", nargs="?", const=True, default=None,
                   help="continue from the latest checkpoint of --output-dir, or from PATH (run dir or checkpoint)")
    p.add_argument("--list", action="store_true", help="list registered networks, losses, datasets, recipes")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    args = p.parse_intermixed_args(argv)
    if args.list:
        list_registries()
        return 0
    if not args.config:
        p.error("a config file is required (or --list)")
    from i2i.config import load_config
    from i2i.engine.trainer import Trainer

    cfg = load_config(args.config, args.overrides)
    trainer = Trainer(cfg, output_dir=args.output_dir, resume=args.resume)
    run_dir = trainer.fit()
    if trainer.is_main:
        print(f"run directory: {run_dir}")
    return 0


if __name__ == "__main__":
    from i2i.distributed import relaunch_cpu_workers

    code = relaunch_cpu_workers(__file__, sys.argv[1:])  # accelerate launch --cpu --num_processes N
    sys.exit(code if code is not None else run(main))
