"""The README's super-resolution picture: bicubic | srresnet_x4_small | srresnet_x4 | HR.

    python docs/make_sr_example.py            # -> docs/images/sr_example.png, and PSNR-Y per crop

Two 128² HR crops of scikit-image photos that neither shipped model trained on (``coins``,
``chelsea``: the small model's validation photos; the paper-size one trained on the photo
corpus only). LR = MATLAB bicubic ¼ of the crop (the models' own degradation); every cell is
shown ×2 with nearest-neighbour. PSNR-Y with a 4-px border, as ``tools/eval.py``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from skimage import data

from i2i.data.paired import to_channels
from i2i.data.resize import imresize
from i2i.inference import load_model, shipped_model
from i2i.metrics.image import psnr
from i2i.pipelines.super_resolution import upscale

CROPS = {"coins": (data.coins, 10, 30), "chelsea": (data.chelsea, 55, 105)}   # (loader, top, left)
MODELS = ("srresnet_x4_small", "srresnet_x4")
GAP = 4


def _psnr_y(pred: np.ndarray, hr: np.ndarray) -> float:
    t = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255  # noqa: E731
    return float(psnr(t(pred), t(hr), crop_border=4, y_channel=True))


def main() -> None:
    models = {name: load_model(shipped_model(name), task="sr", device="cpu") for name in MODELS}
    rows = []
    for name, (loader, top, left) in CROPS.items():
        hr = to_channels(loader(), 3)[top:top + 128, left:left + 128]
        lr = imresize(hr, 0.25)
        cells = {"bicubic": imresize(lr, 4.0)} | {m: upscale(models[m], lr) for m in MODELS} | {"HR": hr}
        print(name, {k: round(_psnr_y(v, hr), 2) for k, v in cells.items() if k != "HR"})
        big = [np.kron(c, np.ones((2, 2, 1), np.uint8)) for c in cells.values()]
        gap = np.full((256, GAP, 3), 255, np.uint8)
        rows.append(np.concatenate([x for c in big for x in (c, gap)][:-1], axis=1))
    hgap = np.full((GAP, rows[0].shape[1], 3), 255, np.uint8)
    out = Path(__file__).parent / "images" / "sr_example.png"
    Image.fromarray(np.concatenate([rows[0], hgap, rows[1]])).save(out, optimize=True)
    print("wrote", out)


if __name__ == "__main__":
    main()
