"""The README's real-world SR picture: bicubic | srresnet_x4 | realesrnet_x4 | HR on degraded photos.

    python tools/degrade.py heldout -o heldout_deg/lr --hr heldout_deg/hr --seed 0   # once (see docs/realworld_sr.md)
    python docs/make_realworld_example.py heldout_deg     # -> docs/images/realworld_sr_example.png, PSNR-Y per crop

``heldout_deg`` holds aligned ``hr/`` and ``lr/`` images written by ``tools/degrade.py`` (Real-ESRGAN's
second-order degradation, seeded): photos no shipped model trained on. Two 192² HR crops (48² LR),
each cell shown at its HR size. PSNR-Y of the crop with a 4-px border, as ``tools/eval.py``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from i2i.data.io import read_image
from i2i.data.resize import imresize
from i2i.inference import load_model, shipped_model
from i2i.metrics.image import psnr
from i2i.pipelines.super_resolution import upscale

CROPS = {"chelsea": (20, 30), "coffee": (40, 60)}   # LR (top, left) of a 48² crop
MODELS = ("srresnet_x4", "realesrnet_x4")
LR_SIDE, SCALE, GAP = 48, 4, 4


def _psnr_y(pred: np.ndarray, hr: np.ndarray) -> float:
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].float() / 255  # noqa: E731
    return float(psnr(t(pred), t(hr), crop_border=4, y_channel=True))


def main(folder: Path) -> None:
    models = {name: load_model(shipped_model(name), task="sr", device="cpu") for name in MODELS}
    rows = []
    for name, (top, left) in CROPS.items():
        lr_full = read_image(folder / "lr" / f"{name}.png", "RGB")
        hr_full = read_image(folder / "hr" / f"{name}.png", "RGB")
        # the models see the whole LR image (no crop-border effects); the picture shows one window
        outs = {"bicubic": imresize(lr_full, float(SCALE))} | {m: upscale(models[m], lr_full) for m in MODELS}
        window = (slice(top * SCALE, (top + LR_SIDE) * SCALE), slice(left * SCALE, (left + LR_SIDE) * SCALE))
        hr = hr_full[window]
        cells = {k: v[window] for k, v in outs.items()} | {"HR": hr}
        print(name, {k: round(_psnr_y(v, hr), 2) for k, v in cells.items() if k != "HR"})
        side = LR_SIDE * SCALE
        gap = np.full((side, GAP, 3), 255, np.uint8)
        rows.append(np.concatenate([x for c in cells.values() for x in (c, gap)][:-1], axis=1))
    hgap = np.full((GAP, rows[0].shape[1], 3), 255, np.uint8)
    out = Path(__file__).parent / "images" / "realworld_sr_example.png"
    Image.fromarray(np.concatenate([rows[0], hgap, rows[1]])).save(out, optimize=True)
    print("wrote", out)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "heldout_deg"))
