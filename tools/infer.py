#!/usr/bin/env python
"""Run a trained model. The checkpoint carries its architecture: no model flags.

    python tools/infer.py --task cgan --checkpoint runs/acgan_mnist-… --label 7 -n 64 -o grid.png
    python tools/infer.py --task sr photo.png -o out/            # the shipped ×4 SRResNet
    python tools/infer.py --task sketch2photo --checkpoint RUN sketch.png -o photo.png
    python tools/infer.py --task seg --checkpoint RUN image.png -o mask.png --overlay

``--checkpoint`` takes a run directory, its ``export/`` folder, or a checkpoint folder.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from i2i.cli import run  # noqa: E402


def main(argv: list[str]) -> int:
    from i2i.apps import get_app
    from i2i.inference import TASK_ALIASES, load_model

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--task")
    pre.add_argument("--checkpoint")
    pre.add_argument("--fast", action="store_true",
                     help="fastest measured configuration: BN folded, channels_last, autocast (bf16 where native)")
    pre.add_argument("--device", default="cpu")
    known, _ = pre.parse_known_args(argv)
    model = None
    task = TASK_ALIASES.get(known.task, known.task) if known.task else None
    if task is None:
        if known.checkpoint is None:
            if any(a in ("-h", "--help") for a in argv):
                pre.print_help()
                return 0
            pre.error("give --task and/or --checkpoint")
        model = load_model(known.checkpoint, device=known.device, with_discriminator=True)
        task = model.task
    app = get_app(task)
    p = argparse.ArgumentParser(description=f"i2i inference ({task})", parents=[pre])
    p.add_argument("--debug", action="store_true")
    app.add_infer_args(p)
    args = p.parse_args(argv)
    if model is None:
        model = load_model(args.checkpoint, task=args.task, device=args.device, with_discriminator=True)
    if args.fast:  # BN with batch statistics (pix2pix --batch-stats) must stay a BN
        model.fast(fold_bn=not getattr(args, "batch_stats", False))
    return app.infer(model, args)


if __name__ == "__main__":
    sys.exit(run(main))
