"""junyanz pix2pix/CycleGAN generator files (i2i.junyanz): their on-disk key layout, made by a small
re-implementation of their ``models/networks.py`` generators below (written from the layout, not
copied), read onto i2i's U-Net / ResNet generators and compared with that reference's forward in
eval mode (their ``test.py --eval``)."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("spandrel")

from i2i.errors import CheckpointError  # noqa: E402
from i2i.inference import load_model  # noqa: E402


# --- the reference: their generator structure (junyanz/pytorch-CycleGAN-and-pix2pix, models/networks.py) -----
def _norm(kind: str):
    if kind == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)


class RefUnetBlock(nn.Module):
    """One nested level: ``model`` is a Sequential; outermost ``[down, sub, relu, up, tanh]``, middle
    ``[lrelu, down, norm, sub, relu, up, norm(, dropout)]``, innermost ``[lrelu, down, relu, up, norm]``;
    non-outermost levels return ``cat([x, model(x)])``. Conv biases only with InstanceNorm."""

    def __init__(self, outer: int, inner: int, cin: int | None = None, sub: nn.Module | None = None,
                 outermost: bool = False, innermost: bool = False, norm: str = "batch", dropout: bool = False):
        super().__init__()
        self.outermost = outermost
        bias = norm == "instance"
        cin = outer if cin is None else cin
        n = _norm(norm)
        down = nn.Conv2d(cin, inner, 4, 2, 1, bias=bias)
        if outermost:
            layers = [down, sub, nn.ReLU(True), nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1), nn.Tanh()]
        elif innermost:
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True), nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=bias),
                      n(outer)]
        else:
            layers = [nn.LeakyReLU(0.2, True), down, n(inner), sub, nn.ReLU(True),
                      nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1, bias=bias), n(outer)]
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class RefUnet(nn.Module):
    def __init__(self, cin: int, cout: int, num_downs: int, ngf: int, norm: str, dropout: bool = True):
        super().__init__()
        b = RefUnetBlock(ngf * 8, ngf * 8, innermost=True, norm=norm)
        for _ in range(num_downs - 5):
            b = RefUnetBlock(ngf * 8, ngf * 8, sub=b, norm=norm, dropout=dropout)
        b = RefUnetBlock(ngf * 4, ngf * 8, sub=b, norm=norm)
        b = RefUnetBlock(ngf * 2, ngf * 4, sub=b, norm=norm)
        b = RefUnetBlock(ngf, ngf * 2, sub=b, norm=norm)
        self.model = RefUnetBlock(cout, ngf, cin=cin, sub=b, outermost=True, norm=norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class RefResBlock(nn.Module):
    def __init__(self, dim: int, norm: str, dropout: bool):
        super().__init__()
        bias = norm == "instance"
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), _norm(norm)(dim), nn.ReLU(True)]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), _norm(norm)(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class RefResnet(nn.Module):
    def __init__(self, cin: int, cout: int, ngf: int, n_blocks: int, norm: str, dropout: bool = False):
        super().__init__()
        bias = norm == "instance"
        n = _norm(norm)
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(cin, ngf, 7, bias=bias), n(ngf), nn.ReLU(True)]
        for i in range(2):
            m = 2**i
            layers += [nn.Conv2d(ngf * m, ngf * m * 2, 3, 2, 1, bias=bias), n(ngf * m * 2), nn.ReLU(True)]
        layers += [RefResBlock(ngf * 4, norm, dropout) for _ in range(n_blocks)]
        for i in range(2):
            m = 2 ** (2 - i)
            layers += [nn.ConvTranspose2d(ngf * m, ngf * m // 2, 3, 2, 1, output_padding=1, bias=bias), n(ngf * m // 2),
                       nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, cout, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _randomise(net: nn.Module, seed: int) -> nn.Module:
    """Random weights everywhere, BN running statistics included (so eval mode is really tested)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for k, t in net.state_dict().items():
            if t.is_floating_point():
                fan_in = t[0].numel() if t.dim() > 1 else 1  # weights ~ N(0, 1/fan_in): activations stay O(1)
                t.copy_(torch.rand(t.shape, generator=g) + 0.5 if "running_var" in k else
                        torch.randn(t.shape, generator=g) * (fan_in**-0.5 if t.dim() > 1 else 0.1))
    return net.eval()


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)  # the test inputs


def _forward(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return net(x)


# --- tests ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("num_downs,norm", [(7, "batch"), (8, "instance"), (7, "instance")])
def test_unet_files_give_their_generators_output(tmp_path: Path, num_downs: int, norm: str) -> None:
    ref = _randomise(RefUnet(3, 3, num_downs, 4, norm), seed=num_downs)
    f = tmp_path / "latest_net_G.pth"
    torch.save(ref.state_dict(), f)
    model = load_model(f, device="cpu")  # no task: the file's name and tensors say what it is
    card = model.card
    assert (card.task, card.in_channels, card.out_channels, card.multiple_of) == ("sketch2photo", 3, 3, 2**num_downs)
    assert card.value_range == (-1.0, 1.0) and card.provenance.format == "junyanz"
    assert card.provenance.architecture == {"generator": f"unet_{2**num_downs}"}
    assert card.provenance.licence == "BSD-2-Clause"
    x = torch.rand(2, 3, 2**num_downs, 2**num_downs) * 2 - 1
    diff = (_forward(model.generator, x) - _forward(ref, x)).abs().max().item()
    assert diff <= 1e-5


@pytest.mark.parametrize("n_blocks,norm,dropout", [(6, "instance", False), (9, "batch", True), (2, "instance", True)])
def test_resnet_files_give_their_generators_output(tmp_path: Path, n_blocks: int, norm: str, dropout: bool) -> None:
    ref = _randomise(RefResnet(3, 3, 4, n_blocks, norm, dropout), seed=n_blocks)
    f = tmp_path / "latest_net_G.pth"
    torch.save(ref.state_dict(), f)
    model = load_model(f, device="cpu")
    assert model.card.provenance.architecture == {"generator": f"resnet_{n_blocks}blocks"} and model.card.multiple_of == 4
    x = torch.rand(1, 3, 20, 12) * 2 - 1
    assert (_forward(model.generator, x) - _forward(ref, x)).abs().max().item() <= 1e-5


def test_old_instance_norm_running_stats_are_ignored_as_their_code_does(tmp_path: Path) -> None:
    ref = _randomise(RefResnet(1, 3, 4, 2, "instance"), seed=11)
    sd = ref.state_dict()
    for i in (2, 5, 8):  # a file written by PyTorch < 0.4: InstanceNorm2d had running statistics
        sd[f"model.{i}.running_mean"] = torch.randn(sd[f"model.{i - 1}.weight"].shape[0])
        sd[f"model.{i}.running_var"] = torch.rand(sd[f"model.{i - 1}.weight"].shape[0]) + 1
    sd["model.10.conv_block.2.running_mean"] = torch.randn(16)
    f = tmp_path / "old_net_G.pth"
    torch.save(sd, f)
    model = load_model(f, device="cpu")
    assert model.card.in_channels == 1
    x = torch.rand(1, 1, 8, 8) * 2 - 1
    assert (_forward(model.generator, x) - _forward(ref, x)).abs().max().item() <= 1e-5


def test_cyclegan_files_give_one_direction_through_i2i_infer(tmp_path: Path) -> None:
    from conftest import load_tool

    from i2i.cli import run
    from i2i.data.io import read_image, save_image

    ref = _randomise(RefResnet(3, 3, 4, 2, "instance"), seed=5)
    img = np.random.default_rng(0).integers(0, 256, (12, 16, 3), dtype=np.uint8)
    src = save_image(tmp_path / "in.png", img)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 127.5 - 1
    want = _forward(ref, x)[0].add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    for name, direction in (("latest_net_G_A.pth", "AtoB"), ("latest_net_G_B.pth", "BtoA")):
        f = tmp_path / name
        torch.save(ref.state_dict(), f)
        card = load_model(f, device="cpu").card
        assert card.task == "cyclegan" and list(card.directions.slots) == [direction]
        dst = tmp_path / f"out_{direction}.png"
        assert run(load_tool("infer").main, ["--checkpoint", str(f), "--device", "cpu", str(src), "-o", str(dst)]) == 0
        assert np.abs(read_image(dst, "RGB").astype(int) - want.astype(int)).max() <= 1
    with pytest.raises(Exception, match="holds the BtoA generator only, not AtoB"):
        from i2i.pipelines.cyclegan import CycleGANPipeline

        CycleGANPipeline(load_model(tmp_path / "latest_net_G_B.pth", device="cpu"), direction="AtoB")


def test_pix2pix_file_runs_through_i2i_infer_with_no_task(tmp_path: Path) -> None:
    from conftest import load_tool

    from i2i.cli import run
    from i2i.data.io import read_image, save_image

    ref = _randomise(RefUnet(3, 3, 7, 4, "batch"), seed=9)
    f = tmp_path / "latest_net_G.pth"
    torch.save(ref.state_dict(), f)
    img = np.random.default_rng(1).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    src = save_image(tmp_path / "sketch.png", img)
    dst = tmp_path / "photo.png"
    assert run(load_tool("infer").main, ["--checkpoint", str(f), "--device", "cpu", str(src), "-o", str(dst)]) == 0
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 127.5 - 1
    want = _forward(ref, x)[0].add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    assert np.abs(read_image(dst, "RGB").astype(int) - want.astype(int)).max() <= 1


def test_a_renamed_file_is_still_recognised_and_a_wrong_one_is_one_line(tmp_path: Path) -> None:
    ref = _randomise(RefResnet(3, 3, 4, 2, "instance"), seed=3)
    f = tmp_path / "horse2zebra.pth"  # spandrel's reader sees their layout and hands it over
    torch.save(ref.state_dict(), f)
    assert load_model(f, device="cpu").card.provenance.format == "junyanz"
    bad = tmp_path / "latest_net_G.pth"
    sd = ref.state_dict()
    sd["model.10.conv_block.1.weight"] = torch.zeros(16, 16, 5, 5)
    torch.save(sd, bad)
    with pytest.raises(CheckpointError, match=r"^.*latest_net_G.pth: model.10.conv_block.1.weight has shape \(16, 16, 5, 5\)"):
        load_model(bad, device="cpu")
    other = tmp_path / "x_net_G.pth"
    torch.save({"conv.weight": torch.zeros(1)}, other)
    with pytest.raises(CheckpointError, match="not a pix2pix/CycleGAN generator"):
        load_model(other, device="cpu")
