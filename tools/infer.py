#!/usr/bin/env python
"""Run a trained model (the body is :func:`i2i.commands.infer_main`, installed as ``i2i-infer``). The checkpoint carries its architecture: no model flags.

    python tools/infer.py --task cgan --checkpoint runs/acgan_mnist-… --label 7 -n 64 -o grid.png
    python tools/infer.py --task sr photo.png -o out/            # the shipped ×4 SRResNet
    python tools/infer.py --task sketch2photo --checkpoint RUN sketch.png -o photo.png
    python tools/infer.py --task seg --checkpoint RUN image.png -o mask.png --overlay
    python tools/infer.py --task cyclegan --checkpoint RUN --direction BtoA zebra.png -o horse.png

``--checkpoint`` takes a run directory, its ``export/`` folder, or a checkpoint folder.
``--device`` defaults to CUDA when present (``--device cpu`` forces the CPU).
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without install

from i2i.cli import run  # noqa: E402
from i2i.commands import infer_main as main  # noqa: E402

if __name__ == "__main__":
    from i2i.distributed import relaunch_cpu_workers, worker_exit

    code = relaunch_cpu_workers(__file__, sys.argv[1:])  # accelerate launch --cpu --num_processes N
    sys.exit(code if code is not None else worker_exit(run(main)))
