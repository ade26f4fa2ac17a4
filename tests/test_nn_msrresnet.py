"""i2i's MSRResNet and EDSR (BasicSR's keys): sizes counted layer by layer, settings checked."""
from __future__ import annotations

import pytest
import torch

from i2i.errors import ConfigError
from i2i.nn.msrresnet import EDSR, MSRResNet
from i2i.registry import GENERATORS


def _count(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def conv(cin: int, cout: int) -> int:
    return cin * cout * 9 + cout  # a 3×3 convolution with bias


def test_parameter_counts_are_the_papers() -> None:
    """MSRResNet ×4 (64 features, 16 blocks) and EDSR baseline ×4: 1.5 M each (Lim et al. 2017,
    Table 1: "1.5M" for the baseline); EDSR ×4 (256, 32 blocks): 43 M (same table)."""
    body64 = 16 * 2 * conv(64, 64)
    msr = conv(3, 64) + body64 + 2 * conv(64, 256) + conv(64, 64) + conv(64, 3)
    edsr_m = conv(3, 64) + body64 + conv(64, 64) + 2 * conv(64, 256) + conv(64, 3)
    edsr_l = conv(3, 256) + 32 * 2 * conv(256, 256) + conv(256, 256) + 2 * conv(256, 1024) + conv(256, 3)
    with torch.device("meta"):
        assert _count(MSRResNet()) == msr == 1_517_571
        assert _count(GENERATORS.build({"type": "edsr"})) == edsr_m == 1_517_571
        assert _count(EDSR(width=256, num_blocks=32, res_scale=0.1)) == edsr_l == 43_089_923


def test_keys_and_shapes_are_basicsrs() -> None:
    keys = set(MSRResNet(scale=3, width=8, num_blocks=2).state_dict())
    assert keys == {f"{n}.{t}" for n in ("conv_first", "body.0.conv1", "body.0.conv2", "body.1.conv1", "body.1.conv2",
                                         "upconv1", "conv_hr", "conv_last") for t in ("weight", "bias")}
    sd = EDSR(scale=8, width=8, num_blocks=1).state_dict()
    assert [k for k in sd if k.startswith("upsample")] == [f"upsample.{i}.{t}" for i in (0, 2, 4) for t in ("weight", "bias")]
    assert "mean" not in sd  # not in BasicSR's files either
    x = torch.rand(2, 3, 5, 7)
    assert MSRResNet(scale=3, width=8, num_blocks=1)(x).shape == (2, 3, 15, 21)
    assert EDSR(scale=3, width=8, num_blocks=1)(x).shape == (2, 3, 15, 21)


def test_msrresnet_adds_the_bilinear_input_and_edsr_its_mean() -> None:
    """With every weight zero the networks return the bilinear ×s input (MSRResNet) and the DIV2K
    mean (EDSR): the two things the files do not hold."""
    m, e = MSRResNet(scale=2, width=8, num_blocks=1), EDSR(scale=2, width=8, num_blocks=1)
    with torch.no_grad():
        for p in [*m.parameters(), *e.parameters()]:
            p.zero_()
    x = torch.rand(1, 3, 6, 4)
    want = torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    assert torch.allclose(m(x), want)
    assert torch.allclose(e(x), torch.tensor([0.4488, 0.4371, 0.4040]).view(1, 3, 1, 1).expand(1, 3, 12, 8))


@pytest.mark.parametrize(("build", "key"), [(lambda: MSRResNet(scale=8), "scale"), (lambda: EDSR(scale=6), "scale"),
                                            (lambda: EDSR(in_channels=1, out_channels=1), "in_channels"),
                                            (lambda: MSRResNet(out_channels=1), "out_channels"),
                                            (lambda: MSRResNet(width=0), "width")])
def test_bad_settings_are_one_line(build, key: str) -> None:
    with pytest.raises(ConfigError) as e:
        build()
    assert e.value.key == key and "\n" not in str(e.value)
