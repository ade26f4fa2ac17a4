"""SRVGGNetCompact (Real-ESRGAN realesr-*v3): shapes, parameter count, key layout, spandrel round trip."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from i2i.errors import ConfigError
from i2i.nn.srvgg import SRVGGNetCompact
from i2i.registry import GENERATORS


def nparams(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_general_x4v3_parameter_count() -> None:
    # first conv 3·64·9 + 64 = 1,792, PReLU 64
    # 32 × (conv 64·64·9 + 64 = 36,928, PReLU 64)  = 1,183,744
    # last conv 64·48·9 + 48                       =    27,696
    # total                                        = 1,213,296
    assert nparams(GENERATORS.build({"type": "srvgg_compact"})) == 1_213_296
    # realesr-animevideov3: 16 convs
    assert nparams(SRVGGNetCompact(num_conv=16)) == 1_213_296 - 16 * 36_992


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_shapes_and_nearest_residual(scale: int) -> None:
    net = SRVGGNetCompact(scale=scale, width=8, num_conv=2)
    x = torch.rand(2, 3, 5, 7)
    assert net(x).shape == (2, 3, 5 * scale, 7 * scale)
    # with the last conv zeroed the network is exactly nearest-neighbour upsampling
    with torch.no_grad():
        net.body[-1].weight.zero_()
        net.body[-1].bias.zero_()
    assert torch.equal(net(x), F.interpolate(x, scale_factor=scale, mode="nearest"))


def test_key_layout_is_real_esrgan() -> None:
    # realesrgan/archs/srvgg_arch.py: body = [conv, PReLU, (conv, PReLU) × num_conv, conv]
    expected = ["body.0.weight", "body.0.bias", "body.1.weight"]
    for k in range(2):
        expected += [f"body.{2 + 2 * k}.weight", f"body.{2 + 2 * k}.bias", f"body.{3 + 2 * k}.weight"]
    expected += ["body.6.weight", "body.6.bias"]
    assert list(SRVGGNetCompact(width=8, num_conv=2).state_dict()) == expected
    # ReLU / LeakyReLU have no parameters: the convs keep their even indices
    assert list(SRVGGNetCompact(width=8, num_conv=2, act="relu").state_dict()) == [k for k in expected if "weight" not in k
                                                                                   or int(k.split(".")[1]) % 2 == 0]


def test_spandrel_detects_it_and_gives_the_same_output() -> None:
    import spandrel  # a [dev] dependency: the reference loader of the peers' formats

    torch.manual_seed(0)
    for scale in (2, 4):
        net = SRVGGNetCompact(scale=scale, width=16, num_conv=4).eval()
        desc = spandrel.ModelLoader().load_from_state_dict(net.state_dict())
        assert desc.architecture.id == "Compact" and desc.scale == scale
        x = torch.rand(1, 3, 8, 8)
        with torch.no_grad():
            assert torch.equal(desc.model.eval()(x), net(x))


def test_errors() -> None:
    with pytest.raises(ConfigError, match="^act: must be"):
        SRVGGNetCompact(act="gelu")
    with pytest.raises(ConfigError, match="^out_channels: must equal in_channels"):
        SRVGGNetCompact(in_channels=1, out_channels=3)
