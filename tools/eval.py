#!/usr/bin/env python
"""Evaluate a trained model (:func:`i2i.commands.eval_main`, installed as ``i2i-eval``); with --json the last stdout line is one JSON object.

    python tools/eval.py --task cgan --checkpoint runs/acgan_mnist-… --json
    python tools/eval.py --task sr --checkpoint RUN --data datasets/Set5 --json
    python tools/eval.py --task cyclegan --checkpoint RUN --json       # cycle_a, cycle_b, sharpness_ab, ...
    accelerate launch --cpu --num_processes 2 tools/eval.py --task seg --checkpoint RUN --json

``--data`` defaults to the recipe's own validation/test split; ``--device`` to CUDA when
present (``--device cpu`` forces the CPU).
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without install

from i2i.cli import run  # noqa: E402
from i2i.commands import eval_main as main  # noqa: E402

if __name__ == "__main__":
    from i2i.distributed import relaunch_cpu_workers

    code = relaunch_cpu_workers(__file__, sys.argv[1:])  # accelerate launch --cpu --num_processes N
    sys.exit(code if code is not None else run(main))
