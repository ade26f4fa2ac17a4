#!/usr/bin/env python
"""Train a recipe (the body is :func:`i2i.commands.train_main`, also installed as ``i2i-train``).

    python tools/train.py tasks/acgan_mnist.yaml train.max_steps=200 data.root=/path
    accelerate launch --cpu --num_processes 2 tools/train.py tasks/acgan_mnist.yaml --output-dir runs/x
    python tools/train.py tasks/acgan_mnist.yaml --output-dir runs/x --resume      # latest checkpoint
    python tools/train.py tasks/srgan.yaml --fast                                  # train.fast=true
    python tools/train.py --list                                                   # registered names
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without install

from i2i.cli import run  # noqa: E402
from i2i.commands import train_main as main  # noqa: E402

if __name__ == "__main__":
    from i2i.distributed import relaunch_cpu_workers

    code = relaunch_cpu_workers(__file__, sys.argv[1:])  # accelerate launch --cpu --num_processes N
    sys.exit(code if code is not None else run(main))
