"""i2i.pipelines.digits: labels + count -> images, checked against the generator run by hand."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from i2i.data.io import save_image
from i2i.errors import ConfigError
from i2i.inference import LoadedModel
from i2i.nn.dcgan import DCGANDiscriminator, DCGANGenerator
from i2i.pipelines.digits import DigitsPipeline, image_grid

LOSSES = {"adversarial": {"type": "adversarial", "objective": "non_saturating", "weight": 1.0}}


def _model(conditional: bool = True, with_d: bool = True) -> LoadedModel:
    torch.manual_seed(0)
    k = 10 if conditional else 0
    nets = {"generator": DCGANGenerator(z_dim=8, base_channels=4, num_classes=k).eval()}
    if with_d:
        nets["discriminator"] = DCGANDiscriminator(base_channels=4, num_classes=k).eval()
    recipe = {"type": "cgan" if conditional else "gan", "num_classes": 10}
    return LoadedModel(nets=nets, task="digits", recipe=recipe, meta={}, config={"losses": LOSSES}, path=Path("."))


def test_images_are_the_generator_on_seeded_noise() -> None:
    model = _model()
    imgs = DigitsPipeline(model)([3, 5], num=2, seed=7)
    assert imgs.shape == (4, 1, 28, 28) and imgs.dtype == torch.float32
    z = torch.randn(4, 8, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        want = model.generator(z, torch.tensor([3, 3, 5, 5])).add(1).div(2).clamp(0, 1)
    torch.testing.assert_close(imgs, want)
    assert DigitsPipeline(model)(None, num=1).shape[0] == 10  # every class once


def test_rank_by_discriminator_of_one_candidate_is_plain_generation() -> None:
    pipe = DigitsPipeline(_model())
    torch.testing.assert_close(pipe([1, 4], num=3, seed=2, rank_by_discriminator=1), pipe([1, 4], num=3, seed=2))
    ranked = pipe([1, 4], num=3, seed=2, rank_by_discriminator=4)
    assert ranked.shape == (6, 1, 28, 28) and not torch.equal(ranked, pipe([1, 4], num=3, seed=2))


def test_bad_requests_are_config_errors_naming_the_parameter() -> None:
    cases = [(_model(), {"labels": [10]}, "labels"), (_model(), {"num": 0}, "num"),
             (_model(conditional=False), {"labels": [1]}, "labels"),
             (_model(with_d=False), {"labels": [1], "rank_by_discriminator": 2}, "rank_by_discriminator")]
    for model, kwargs, key in cases:
        with pytest.raises(ConfigError) as e:
            DigitsPipeline(model)(**kwargs)
        assert e.value.key == key
    unconditional = DigitsPipeline(_model(conditional=False))
    assert not unconditional.conditional and unconditional(num=5).shape == (5, 1, 28, 28)


def test_grid_writes_the_pixels_of_torchvisions_writer(tmp_path: Path) -> None:
    import torchvision

    imgs = DigitsPipeline(_model())([0, 1, 2], num=2, seed=0)
    grid = image_grid(imgs, nrow=2)
    assert grid.shape == (3 * 30 + 2, 2 * 30 + 2, 3) and grid.dtype == np.uint8
    assert (grid[:2] == 255).all() and (grid[:, 30:32] == 255).all()  # white padding
    torchvision.utils.save_image(imgs, tmp_path / "tv.png", nrow=2, padding=2, pad_value=1.0)
    save_image(tmp_path / "ours.png", grid)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "ours.png")), np.asarray(Image.open(tmp_path / "tv.png")))
