#!/usr/bin/env python
"""Run a trained model. The checkpoint carries its architecture: no model flags.

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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from i2i.cli import run  # noqa: E402


def main(argv: list[str]) -> int:
    from i2i.apps import prepare

    ready = prepare(argv, "infer")
    if ready is None:
        return 0
    app, model, args, task = ready
    return app.infer(model, args)


if __name__ == "__main__":
    sys.exit(run(main))
