#!/usr/bin/env python
"""Write a Real-ESRGAN-degraded copy of a photo folder (the body is :mod:`i2i.apps.degrade`).

    python tools/degrade.py photos/ -o photos_lr/ --seed 0                 # ×4, the paper's parameters
    python tools/degrade.py photos/ -o lr/ --hr hr/ --scale 2              # aligned HR/LR pairs at ×2
    python tools/degrade.py photos/ -o lr/ --config my_degradation.yaml    # Real-ESRGAN's key names

Same seed, same bits; each file's randomness depends only on the seed and its relative path.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without install

from i2i.apps.degrade import main  # noqa: E402
from i2i.cli import run  # noqa: E402

if __name__ == "__main__":
    sys.exit(run(main))
