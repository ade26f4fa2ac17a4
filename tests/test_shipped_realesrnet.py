"""The shipped real-world model, ``realesrnet_x4``: its card, and its claim on degraded photos it never saw.

The README's table: on six photos no shipped model trained on (scikit-image's brick, chelsea, coffee,
coins; scikit-learn's china and flower), degraded by Real-ESRGAN's second-order model with
``tools/degrade.py --seed 0``, ``realesrnet_x4`` is at least 0.5 dB PSNR-Y above bicubic and above
``srresnet_x4`` (issue 25, point 6). This test rebuilds that set and re-measures it.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import load_tool

from i2i.cli import run
from i2i.data.io import save_image
from i2i.inference import SHIPPED_MODELS, load_model
from i2i.card import receptive_radius

HELD_OUT = ("brick", "chelsea", "coffee", "coins", "china", "flower")


def write_held_out(folder: Path) -> None:
    """The six held-out photos as RGB PNGs (grey ones repeated to three channels)."""
    from skimage import data
    from sklearn.datasets import load_sample_image

    folder.mkdir(parents=True)
    for name in HELD_OUT:
        img = load_sample_image(f"{name}.jpg") if name in ("china", "flower") else getattr(data, name)()
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        save_image(folder / f"{name}.png", img)


def test_the_shipped_realesrnet_card() -> None:
    folder = SHIPPED_MODELS["realesrnet_x4"]
    model = load_model(folder, device="cpu")
    card = model.card
    assert (card.task, card.scale, card.tiling) == ("sr", 4, "exact")
    assert card.receptive_radius == receptive_radius(model.generator) == 18  # 18 3×3 convolutions at LR
    assert card.provenance.architecture == {"generator": "srvgg_compact"} and card.provenance.recipe == "realesr"
    digest = hashlib.sha256((folder / "generator.safetensors").read_bytes()).hexdigest()
    assert card.provenance.sha256 == {"generator.safetensors": digest}
    config = json.loads((folder / "config.json").read_text())
    assert config["meta"]["degradation"] == "realesrgan"


def test_realesrnet_beats_bicubic_and_srresnet_on_degraded_held_out_photos(tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture) -> None:
    write_held_out(tmp_path / "photos")
    deg = tmp_path / "deg"
    assert run(load_tool("degrade").main, [str(tmp_path / "photos"), "-o", str(deg / "lr"), "--hr", str(deg / "hr"), "--seed", "0"]) == 0
    gains = {}
    for name in ("realesrnet_x4", "srresnet_x4"):
        capsys.readouterr()
        assert run(load_tool("eval").main, ["--task", "sr", "--model", name, "--data", str(deg), "--device", "cpu", "--json"]) == 0
        result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert result["num_images"] == 6
        gains[name] = result["gain/psnr_y"]
    assert gains["realesrnet_x4"] >= 0.5, gains
    assert gains["realesrnet_x4"] > gains["srresnet_x4"], gains
