"""Segmentors: shapes at odd sizes, backward, timm backbones with and without a local weight file."""
from __future__ import annotations

import pytest
import torch

from i2i.errors import ConfigError
from i2i.nn.segmentor import SmallSegmentor, TimmSegmentor
from i2i.registry import GENERATORS

BACKBONE = "mobilenetv3_small_050"  # the smallest common timm backbone: fast on CPU


@pytest.mark.parametrize("size", [(17, 23), (32, 32), (33, 47)])
@pytest.mark.parametrize("depth", [1, 3])
def test_small_segmentor_shape_and_backward(size, depth):
    torch.manual_seed(0)
    net = GENERATORS.get("small_segmentor")(num_classes=5, width=4, depth=depth)
    x = torch.rand(2, 3, *size, requires_grad=True)
    y = net(x)
    assert y.shape == (2, 5, *size)
    assert torch.isfinite(y).all()
    y.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize("decoder", ["fcn", "unet"])
def test_timm_segmentor_shape_and_backward(decoder):
    torch.manual_seed(0)
    net = GENERATORS.get("timm_fcn")(num_classes=3, backbone=BACKBONE, pretrained=None, decoder=decoder)
    x = torch.rand(2, 3, 37, 45)
    y = net(x)
    assert y.shape == (2, 3, 37, 45)
    y.mean().backward()
    head = [p for n, p in net.named_parameters() if n.startswith("decoder")]
    assert head and all(p.grad is not None and torch.isfinite(p.grad).all() for p in head)


def test_timm_segmentor_resnet18_fcn():
    net = TimmSegmentor(num_classes=4, backbone="resnet18", decoder="fcn").eval()  # batch 1: BN in eval
    with torch.no_grad():
        assert net(torch.rand(1, 3, 31, 29)).shape == (1, 4, 31, 29)


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_timm_segmentor_loads_local_weights(tmp_path, suffix):
    import timm

    torch.manual_seed(1)
    full = timm.create_model(BACKBONE, pretrained=False)  # a "downloaded" classifier checkpoint
    sd = {k: v.contiguous() for k, v in full.state_dict().items()}
    path = tmp_path / f"weights{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(sd, str(path))
    else:
        torch.save({"state_dict": sd}, path)
    net = TimmSegmentor(num_classes=3, backbone=BACKBONE, pretrained=str(path))
    assert torch.equal(net.backbone.state_dict()["conv_stem.weight"], sd["conv_stem.weight"])
    fresh = TimmSegmentor(num_classes=3, backbone=BACKBONE, pretrained=None)
    assert not torch.equal(fresh.backbone.state_dict()["conv_stem.weight"], sd["conv_stem.weight"])


def test_missing_weight_file_names_it(tmp_path):
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(ConfigError, match="nope.safetensors") as e:
        TimmSegmentor(num_classes=3, backbone=BACKBONE, pretrained=str(missing))
    assert e.value.key == "pretrained"


def test_wrong_architecture_weights_rejected(tmp_path):
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ConfigError, match="missing"):
        TimmSegmentor(num_classes=3, backbone=BACKBONE, pretrained=str(tmp_path / "other.pth"))


def test_bad_config_values():
    with pytest.raises(ConfigError, match="backbone"):
        TimmSegmentor(num_classes=3, backbone="no_such_model_xyz")
    with pytest.raises(ConfigError, match="num_classes"):
        SmallSegmentor(num_classes=0)


def test_input_shape_checked():
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        SmallSegmentor(num_classes=2, width=4)(torch.rand(1, 1, 8, 8))
