"""The ResNet generator and the 70×70 PatchGAN as CycleGAN's appendix 7.2 describes them."""
from __future__ import annotations

from torch import nn

from i2i.nn.patchgan import PatchGAN
from i2i.nn.resnet_generator import ResnetGenerator, resnet_6blocks, resnet_9blocks


def convs(m: nn.Module) -> list[tuple[str, int, int, int]]:
    """(kind, kernel, stride, out_channels) of every convolution, in forward order."""
    return [("u" if isinstance(c, nn.ConvTranspose2d) else "c", c.kernel_size[0], c.stride[0], c.out_channels)
            for c in m.modules() if isinstance(c, (nn.Conv2d, nn.ConvTranspose2d))]


def test_resnet_9blocks_is_c7s1_64_d128_d256_r256x9_u128_u64_c7s1_3() -> None:
    g = resnet_9blocks()
    assert convs(g) == ([("c", 7, 1, 64), ("c", 3, 2, 128), ("c", 3, 2, 256)] + [("c", 3, 1, 256)] * 18
                        + [("u", 3, 2, 128), ("u", 3, 2, 64), ("c", 7, 1, 3)])
    norms = [m for m in g.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert len(norms) == 3 + 18 + 2 and not any(n.affine or n.track_running_stats for n in norms)  # none after the last c7s1
    # reflection padding for the 7×7 convs and inside the residual blocks ("to reduce artifacts")
    assert sum(isinstance(m, nn.ReflectionPad2d) for m in g.modules()) == 2 + 18
    assert isinstance(g.model[-1], nn.Tanh) and g.multiple == 4
    assert len(convs(resnet_6blocks())) == 3 + 12 + 3


def test_parameter_count_matches_the_released_code() -> None:
    """The released code printed 11,388,675 parameters for its resnet_9blocks G when its instance
    norm was affine (pytorch-CycleGAN-and-pix2pix issue #45). Ours differs by exactly what is
    redundant before an affine-free instance norm: the 5,248 conv biases (one per channel of the 23
    normalised convs) and the 10,496 affine scales and shifts (two per channel)."""
    g = resnet_9blocks()
    normalised = 64 + 128 + 256 + 18 * 256 + 128 + 64
    assert normalised == 5248
    assert sum(p.numel() for p in g.parameters()) + normalised + 2 * normalised == 11_388_675


def test_70x70_patchgan_for_cyclegan_is_c64_c128_c256_c512_with_instance_norm_after_the_first() -> None:
    d = PatchGAN(in_channels=3, n_layers=3, norm="instance")
    assert convs(d) == [("c", 4, 2, 64), ("c", 4, 2, 128), ("c", 4, 2, 256), ("c", 4, 1, 512), ("c", 4, 1, 1)]
    layers = list(d.model)
    assert isinstance(layers[1], nn.LeakyReLU) and layers[1].negative_slope == 0.2  # no norm on C64
    assert sum(isinstance(m, nn.InstanceNorm2d) for m in d.modules()) == 3


def test_generator_keeps_the_size_and_range() -> None:
    import torch

    g = ResnetGenerator(1, 1, base_channels=4, n_blocks=1)
    y = g(torch.randn(2, 1, 32, 32) * 3)
    assert y.shape == (2, 1, 32, 32) and y.abs().max() <= 1
