"""Every family issue 24 lists, in its peer's exact on-disk layout (random weights, fixed seed, tiny
sizes), through ``i2i.inference.load_model(FILE)`` and the SR pipeline (what ``i2i-infer`` runs),
against the peer's own procedure with the peer network (spandrel's architecture classes): within
the issue's parity bar in 8-bit levels (mean |diff| <= 0.5, 99.9th percentile <= 2).

The peers' procedures, written here from their published description:
- ESRGAN ``test.py`` / Real-ESRGAN ``RealESRGANer``: the image / 255 through the network, clamped to
  [0, 1], × 255, rounded; Real-ESRGAN's ×2 (pixel-unshuffle) models first pad the bottom/right by
  reflection to a multiple of 2 (×1: 4) and crop the output back.
- SwinIR ``main_test_swinir.py``: the LR image is padded to the next multiple of the window size
  above its side ((h // window + 1) · window: a whole extra window when h is a multiple already) by
  appending its flipped copy along H, then along W, cut to the padded size; the output is cropped to
  h·scale × w·scale.
- HAT's test code: reflection padding (bottom/right) to a multiple of the window size, cropped back.
- DAT, OmniSR, SPAN, SRVGGNetCompact: the whole image through the network.
- BasicSR's MSRResNet and EDSR (``basicsr/test.py``): the whole image; spandrel has no class for them,
  so the reference is their published structure written as functions of the state dict here.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("spandrel")

from spandrel.architectures.Compact import Compact  # noqa: E402
from spandrel.architectures.DAT.__arch.DAT import DAT  # noqa: E402
from spandrel.architectures.ESRGAN.__arch.RRDB import RRDBNet as PeerRRDB  # noqa: E402
from spandrel.architectures.HAT.__arch.HAT import HAT  # noqa: E402
from spandrel.architectures.OmniSR.__arch.OmniSR import OmniSR  # noqa: E402
from spandrel.architectures.SPAN.__arch.span import SPAN  # noqa: E402
from spandrel.architectures.SwinIR.__arch.SwinIR import SwinIR  # noqa: E402

from i2i.basicsr_files import BASICSR_LICENCE  # noqa: E402
from i2i.foreign import LICENCES  # noqa: E402
from i2i.inference import load_model  # noqa: E402
from i2i.pipelines import pipeline_for  # noqa: E402

MEAN_BAR, P999_BAR = 0.5, 2.0
"""Issue 24's parity bar, in 8-bit levels."""


def _image(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _perturb(net: torch.nn.Module, seed: int, std: float = 0.05) -> torch.nn.Module:
    """Random weights beyond the default init (layer norms, tiny init scales), so that a wrong
    padding or a wrongly detected hyperparameter shows in the output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=g) * std)
    return net.eval()


def _levels(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    d = np.abs(a.astype(np.float64) - b.astype(np.float64))
    return float(d.mean()), float(np.percentile(d, 99.9))


def _peer_run(net: torch.nn.Module, img: np.ndarray, scale: int, pad: str | None = None, multiple: int = 1) -> np.ndarray:
    """The peer's procedure on an (H, W, 3) uint8 image: [0, 1] floats, optional bottom/right padding
    to ``multiple`` (``flip``: the image followed by its mirror, SwinIR; ``reflect``: reflection without
    the edge pixel, Real-ESRGAN / HAT), the network, the crop, clamp, × 255, round."""
    h, w = img.shape[:2]
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0
    ph, pw = (-h) % multiple, (-w) % multiple
    if pad == "flip":  # SwinIR's own count: the next multiple above, always
        ph, pw = (h // multiple + 1) * multiple - h, (w // multiple + 1) * multiple - w
        x = torch.cat([x, torch.flip(x, [2])], 2)[:, :, : h + ph, :]
        x = torch.cat([x, torch.flip(x, [3])], 3)[:, :, :, : w + pw]
    elif pad == "reflect":
        x = F.pad(x, (0, pw, 0, ph), mode="reflect")
    with torch.no_grad():
        y = net(x)[..., : h * scale, : w * scale].clamp(0, 1)
    return y[0].permute(1, 2, 0).mul(255.0).round().to(torch.uint8).numpy()


def esrgan_new_layout(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """spandrel's (= the original ESRGAN repository's) ×4 RRDBNet keys renamed to BasicSR's /
    Real-ESRGAN's: model.0 -> conv_first, model.1.sub.N.RDBk.convj.0 -> body.N.rdbk.convj, the last
    model.1.sub entry -> conv_body, model.3 / 6 / 8 / 10 -> conv_up1 / conv_up2 / conv_hr / conv_last."""
    fixed = {"model.0": "conv_first", "model.3": "conv_up1", "model.6": "conv_up2", "model.8": "conv_hr", "model.10": "conv_last"}
    out = {}
    for k, v in sd.items():
        stem, kind = k.rsplit(".", 1)
        if m := re.fullmatch(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0", stem):
            out[f"body.{m[1]}.rdb{m[2]}.conv{m[3]}.{kind}"] = v
        elif re.fullmatch(r"model\.1\.sub\.\d+", stem):
            out[f"conv_body.{kind}"] = v
        else:
            out[f"{fixed[stem]}.{kind}"] = v
    return out


def esrgan_trunk_layout(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The ESRGAN repository's later ``RRDBNet_arch.py`` names: BasicSR's with ``RRDB_trunk.N.RDBk``,
    ``trunk_conv``, ``upconv1/2``, ``HRconv`` (``conv_first`` and ``conv_last`` as they are)."""
    names = {"body.": "RRDB_trunk.", "conv_body.": "trunk_conv.", "conv_up1.": "upconv1.", "conv_up2.": "upconv2.",
             "conv_hr.": "HRconv."}
    out = {}
    for k, v in esrgan_new_layout(sd).items():
        for new, was in names.items():
            if k.startswith(new):
                k = was + k[len(new):]
                break
        out[k.replace(".rdb", ".RDB")] = v
    return out


class _BasicSRReference(torch.nn.Module):
    """BasicSR's MSRResNet / EDSR forward, written from their published structure
    (``basicsr/archs/srresnet_arch.py``, ``edsr_arch.py``) as plain functions of a state dict in
    their key layout: spandrel has no class for them."""

    def __init__(self, kind: str, scale: int, width: int, blocks: int, seed: int):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.kind, self.scale, self.width = kind, scale, width
        shapes = {"conv_first": (width, 3)}
        for i in range(blocks):
            shapes |= {f"body.{i}.conv1": (width, width), f"body.{i}.conv2": (width, width)}
        step = 2 if scale in (2, 4, 8) else 3
        if kind == "MSRResNet":
            shapes |= {"upconv1": (width * (4 if scale == 4 else scale * scale), width), "conv_hr": (width, width)}
            shapes |= {"upconv2": (width * 4, width)} if scale == 4 else {}
        else:
            shapes |= {"conv_after_body": (width, width)}
            for j in range(1 if step == 3 else int(np.log2(scale))):
                shapes |= {f"upsample.{2 * j}": (width * step * step, width)}
        shapes |= {"conv_last": (3, width)}
        self.sd = {}
        for name, (cout, cin) in shapes.items():
            self.sd[f"{name}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) / (9 * cin) ** 0.5
            self.sd[f"{name}.bias"] = torch.randn(cout, generator=g) * 0.02

    def state_dict(self, *args, **kwargs) -> dict[str, torch.Tensor]:  # type: ignore[override]
        return dict(self.sd)

    def _conv(self, name: str, t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, self.sd[f"{name}.weight"], self.sd[f"{name}.bias"], padding=1)

    def _blocks(self, t: torch.Tensor, res_scale: float) -> torch.Tensor:
        i = 0
        while f"body.{i}.conv1.weight" in self.sd:  # x + res_scale · conv2(ReLU(conv1(x)))
            t = t + self._conv(f"body.{i}.conv2", F.relu(self._conv(f"body.{i}.conv1", t))) * res_scale
            i += 1
        return t

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "MSRResNet":  # LReLU 0.1; pixel-shuffle upsampling; + bilinear ×s of the input
            out = self._blocks(F.leaky_relu(self._conv("conv_first", x), 0.1), 1.0)
            for name in ["upconv1", "upconv2"] if self.scale == 4 else ["upconv1"]:
                out = F.leaky_relu(F.pixel_shuffle(self._conv(name, out), 2 if self.scale == 4 else self.scale), 0.1)
            out = self._conv("conv_last", F.leaky_relu(self._conv("conv_hr", out), 0.1))
            return out + F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        mean = torch.tensor([0.4488, 0.4371, 0.4040]).view(1, 3, 1, 1)  # EDSR: DIV2K mean, pixels × 255
        res_scale = 0.1 if self.width >= 256 else 1.0  # EDSR-L (f256) 0.1, EDSR-M 1 (BasicSR's configs)
        feat = self._conv("conv_first", (x - mean) * 255.0)
        out = self._conv("conv_after_body", self._blocks(feat, res_scale)) + feat
        j = 0
        while f"upsample.{2 * j}.weight" in self.sd:
            out = F.pixel_shuffle(self._conv(f"upsample.{2 * j}", out), 3 if self.scale == 3 else 2)
            j += 1
        return self._conv("conv_last", out) / 255.0 + mean


# family -> (file name, peer network, the file's content from the network's state dict, scale, peer padding, multiple)
Family = tuple[str, Callable[[], torch.nn.Module], Callable[[dict], dict], int, str | None, int]
FAMILIES: dict[str, Family] = {
    "esrgan_old_layout": ("RRDB_ESRGAN_x4.pth", lambda: PeerRRDB(num_filters=8, num_blocks=2, scale=4),
                          lambda sd: sd, 4, None, 1),  # the original repository's bare state dict, model.0.weight, …
    "esrgan_trunk_layout": ("RRDB_PSNR_x4.pth", lambda: PeerRRDB(num_filters=8, num_blocks=2, scale=4),
                            esrgan_trunk_layout, 4, None, 1),  # the ESRGAN repository's later release layout
    "realesrgan_x4plus": ("RealESRGAN_x4plus.pth", lambda: PeerRRDB(num_filters=8, num_blocks=2, scale=4),
                          lambda sd: {"params_ema": esrgan_new_layout(sd)}, 4, None, 1),
    "realesrgan_x2plus": ("RealESRGAN_x2plus.pth",  # pixel-unshuffled input: 12 channels into the first conv
                          lambda: PeerRRDB(num_filters=8, num_blocks=1, scale=4, in_nc=12, shuffle_factor=2),
                          lambda sd: {"params_ema": esrgan_new_layout(sd)}, 2, "reflect", 2),
    "realesrgan_anime_6B": ("RealESRGAN_x4plus_anime_6B.pth", lambda: PeerRRDB(num_filters=8, num_blocks=6, scale=4),
                            lambda sd: {"params_ema": esrgan_new_layout(sd)}, 4, None, 1),
    "compact_general_x4v3": ("realesr-general-x4v3.pth", lambda: Compact(num_feat=8, num_conv=4, upscale=4),
                             lambda sd: {"params": sd}, 4, None, 1),
    "swinir": ("001_classicalSR_DF2K_s64w8_SwinIR-M_x2.pth",
               lambda: SwinIR(embed_dim=12, depths=[2], num_heads=[2], window_size=4, upscale=2, upsampler="pixelshuffle",
                              img_size=16),
               lambda sd: {"params": sd}, 2, "flip", 4),
    "swinir_lightweight": ("002_lightweightSR_DIV2K_s64w8_SwinIR-S_x2.pth",
                           lambda: SwinIR(embed_dim=12, depths=[1], num_heads=[2], window_size=4, upscale=2,
                                          upsampler="pixelshuffledirect", img_size=16),
                           lambda sd: {"params": sd}, 2, "flip", 4),
    "swinir_realsr_x4": ("003_realSR_BSRGAN_DFO_s64w8_SwinIR-M_x4_GAN.pth",
                         lambda: SwinIR(embed_dim=12, depths=[1], num_heads=[2], window_size=4, upscale=4,
                                        upsampler="nearest+conv", img_size=16),
                         lambda sd: {"params_ema": sd}, 4, "flip", 4),
    "hat": ("HAT_SRx2.pth", lambda: HAT(embed_dim=12, depths=[1], num_heads=[2], window_size=4, upscale=2, num_feat=8,
                                        img_size=16, compress_ratio=3, squeeze_factor=4),
            lambda sd: {"params_ema": sd}, 2, "reflect", 4),
    "dat": ("DAT_x2.pth", lambda: DAT(embed_dim=16, depth=[1], num_heads=[2], split_size=[2, 4], upscale=2, img_size=16),
            lambda sd: {"params": sd}, 2, None, 1),
    "omnisr": ("OmniSR_X2_DIV2K.pth", lambda: OmniSR(num_feat=8, block_num=1, window_size=4, up_scale=2, res_num=1),
               lambda sd: sd, 2, None, 1),
    "span": ("spanx2_ch8.pth", lambda: SPAN(num_in_ch=3, num_out_ch=3, feature_channels=8, upscale=2),
             lambda sd: {"params": sd}, 2, None, 1),
    "basicsr_msrresnet_x4": ("net_g_1000000.pth", lambda: _BasicSRReference("MSRResNet", 4, 8, 2, seed=21),
                             lambda sd: {"params": sd}, 4, None, 1),  # BasicSR's training snapshot name
    "basicsr_msrresnet_x3": ("MSRResNet_x3.pth", lambda: _BasicSRReference("MSRResNet", 3, 8, 1, seed=22),
                             lambda sd: {"params": sd}, 3, None, 1),
    "basicsr_edsr_Mx4": ("EDSR_Mx4_f64b16_DIV2K_official.pth", lambda: _BasicSRReference("EDSR", 4, 8, 2, seed=23),
                         lambda sd: {"params": sd}, 4, None, 1),
    "basicsr_edsr_Lx3": ("EDSR_Lx3_f256b32_DIV2K_official.pth", lambda: _BasicSRReference("EDSR", 3, 256, 1, seed=24),
                         lambda sd: {"params_ema": sd}, 3, None, 1),  # 256 features: residual scaling 0.1
}
ARCH = {"esrgan_old_layout": "ESRGAN", "esrgan_trunk_layout": "ESRGAN", "swinir_realsr_x4": "SwinIR", "realesrgan_x4plus": "ESRGAN", "realesrgan_x2plus": "ESRGAN",
        "realesrgan_anime_6B": "ESRGAN", "compact_general_x4v3": "Compact", "swinir": "SwinIR",
        "swinir_lightweight": "SwinIR", "hat": "HAT", "dat": "DAT", "omnisr": "OmniSR", "span": "SPAN",
        "basicsr_msrresnet_x4": "MSRResNet", "basicsr_msrresnet_x3": "MSRResNet", "basicsr_edsr_Mx4": "EDSR",
        "basicsr_edsr_Lx3": "EDSR"}
LICENCE = {**LICENCES, "MSRResNet": BASICSR_LICENCE, "EDSR": BASICSR_LICENCE}


def _write(tmp_path: Path, family: str, seed: int = 0) -> tuple[Path, torch.nn.Module, int, str | None, int]:
    name, build, layout, scale, pad, multiple = FAMILIES[family]
    torch.manual_seed(seed)
    net = _perturb(build(), seed)
    f = tmp_path / name
    torch.save(layout(net.state_dict()), f)
    return f, net, scale, pad, multiple


def test_the_layouts_are_the_peers() -> None:
    """The test's files hold the key names of the peers' own releases (facts from their repositories)."""
    old = PeerRRDB(num_filters=8, num_blocks=1, scale=4).state_dict()
    assert {"model.0.weight", "model.1.sub.0.RDB1.conv1.0.weight", "model.1.sub.1.weight", "model.10.bias"} <= set(old)
    new = esrgan_new_layout(old)
    assert {"conv_first.weight", "body.0.rdb1.conv1.weight", "conv_body.weight", "conv_up2.bias", "conv_hr.weight",
            "conv_last.bias"} <= set(new) and len(new) == len(old)
    from i2i.nn.rrdbnet import RRDBNet

    assert set(new) == set(RRDBNet(scale=4, width=8, num_blocks=1, growth=32).state_dict())  # BasicSR's keys


@pytest.mark.parametrize("family", list(FAMILIES))
def test_each_family_gives_the_peers_own_result(tmp_path: Path, family: str) -> None:
    f, net, scale, pad, multiple = _write(tmp_path, family)
    model = load_model(f, device="cpu")
    card = model.card
    assert card.task == "sr" and card.scale == scale and card.provenance.architecture == {"generator": ARCH[family]}
    assert card.provenance.licence == LICENCE[ARCH[family]]  # every listed family's licence is known
    img = _image(18, 21, seed=1)  # not a multiple of any window or unshuffle factor here, above spandrel's minimum side
    got = pipeline_for(model)(img)  # i2i-infer's defaults
    want = _peer_run(net, img, scale, pad, multiple)
    assert got.shape == want.shape == (18 * scale, 21 * scale, 3)
    mean, p999 = _levels(got, want)
    assert mean <= MEAN_BAR and p999 <= P999_BAR, f"{family}: mean {mean:.3f}, p99.9 {p999:.3f} levels"


@pytest.mark.parametrize("family", ["swinir", "swinir_lightweight"])
def test_swinir_on_a_window_multiple_gets_its_scripts_extra_window(tmp_path: Path, family: str) -> None:
    """main_test_swinir.py pads a 16 × 20 image (window 4) to 20 × 24 — a whole flipped window more —
    and that window reaches the output through the shifted windows and convolutions."""
    f, net, scale, pad, multiple = _write(tmp_path, family)
    img = _image(16, 20, seed=8)
    got = pipeline_for(load_model(f, device="cpu"))(img)
    want = _peer_run(net, img, scale, pad, multiple)
    mean, p999 = _levels(got, want)
    assert mean <= MEAN_BAR and p999 <= P999_BAR, f"{family}: mean {mean:.3f}, p99.9 {p999:.3f}"
    unpadded = _peer_run(net, img, scale)  # the network on the image as it is: another result
    assert max(_levels(unpadded, want)) > P999_BAR


@pytest.mark.parametrize(("family", "mode", "to"), [("swinir", "reflect", 4), ("hat", "replicate", 4),
                                                   ("realesrgan_x2plus", "reflect", 4)])
def test_the_padding_matters_so_the_parity_check_can_fail(tmp_path: Path, family: str, mode: str, to: int) -> None:
    """Another padding than the peer's leaves the bar, so the parity test above measures it: SwinIR
    reflected instead of flipped (what the network's own forward would add), HAT with its edge
    replicated, Real-ESRGAN x2 reflected to a multiple of 4 (spandrel's stated requirement) instead of 2."""
    f, net, scale, pad, multiple = _write(tmp_path, family)
    img = _image(18, 21, seed=1)
    want = _peer_run(net, img, scale, pad, multiple)
    h, w = img.shape[:2]
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0
    other = F.pad(x, (0, (-w) % to, 0, (-h) % to), mode=mode)
    with torch.no_grad():
        wrong = net(other)[..., : h * scale, : w * scale].clamp(0, 1)[0].permute(1, 2, 0).mul(255).round().to(torch.uint8).numpy()
    mean, p999 = _levels(wrong, want)
    assert mean > MEAN_BAR or p999 > P999_BAR, f"{family}: padding invisible (mean {mean:.3f}, p99.9 {p999:.3f})"
    assert load_model(f, device="cpu").card.notes["padding"].startswith("flip" if pad == "flip" else "reflect")


@pytest.mark.parametrize("wrapper", ["params_ema", "params", "state_dict", "module.", "state_dict+module.", "net_g_5000.pth"])
def test_the_wrappers_files_come_in(tmp_path: Path, wrapper: str) -> None:
    """``params_ema``, ``params``, ``state_dict``, a ``module.`` prefix (DataParallel), and BasicSR's
    training snapshot ``net_g_<iter>.pth`` holding both ``params`` and ``params_ema``: the EMA weights
    are the ones run (as Real-ESRGAN's and BasicSR's test scripts pick them)."""
    torch.manual_seed(3)
    net = _perturb(Compact(num_feat=8, num_conv=2, upscale=2), seed=3)
    sd = net.state_dict()
    prefixed = {f"module.{k}": v for k, v in sd.items()}
    other_net = _perturb(Compact(num_feat=8, num_conv=2, upscale=2), seed=4)
    other = other_net.state_dict()  # not the EMA weights
    content = {"params_ema": {"params_ema": sd}, "params": {"params": sd}, "state_dict": {"state_dict": sd},
               "module.": prefixed, "state_dict+module.": {"state_dict": prefixed, "epoch": 3},
               "net_g_5000.pth": {"params": other, "params_ema": sd}}[wrapper]
    f = tmp_path / (wrapper if wrapper.endswith(".pth") else "model.pth")
    torch.save(content, f)
    img = _image(9, 11, seed=5)
    got = pipeline_for(load_model(f, device="cpu"))(img)
    want = _peer_run(net, img, 2)
    mean, p999 = _levels(got, want)
    assert mean <= MEAN_BAR and p999 <= P999_BAR, f"{wrapper}: mean {mean:.3f}, p99.9 {p999:.3f}"
    if wrapper == "net_g_5000.pth":  # the check can fail: the non-EMA weights give another image
        assert _levels(_peer_run(other_net, img, 2), want)[0] > MEAN_BAR


def test_outscale_on_a_real_esrgan_file_is_realesrganers(tmp_path: Path) -> None:
    """``i2i-infer --checkpoint RealESRGAN_x4plus.pth --outscale 3.5``: Real-ESRGAN's ``RealESRGANer``
    runs the ×4 network, rounds to 8 bits, then resizes with OpenCV's Lanczos-4 to
    int(w · 3.5) × int(h · 3.5) (truncated, not rounded)."""
    import cv2
    from conftest import load_tool

    from i2i.cli import run
    from i2i.data.io import read_image, save_image

    f, net, scale, pad, multiple = _write(tmp_path, "realesrgan_x4plus", seed=6)
    img = _image(13, 15, seed=7)  # 13 · 3.5 = 45.5: int() gives 45 where round() would give 46
    src = save_image(tmp_path / "in.png", img)
    dst = tmp_path / "out.png"
    assert run(load_tool("infer").main, ["--checkpoint", str(f), "--device", "cpu", "--outscale", "3.5", str(src),
                                         "-o", str(dst)]) == 0
    got = read_image(dst, "RGB")
    x4 = _peer_run(net, img, scale, pad, multiple)
    want = cv2.resize(x4, (int(15 * 3.5), int(13 * 3.5)), interpolation=cv2.INTER_LANCZOS4)
    assert got.shape == want.shape == (45, 52, 3)
    mean, p999 = _levels(got, want)
    assert mean <= MEAN_BAR and p999 <= P999_BAR, f"outscale: mean {mean:.3f}, p99.9 {p999:.3f}"
    from i2i.data.resize import imresize

    bicubic = imresize(x4, size=(45, 52))  # i2i's own models' resize: not what Real-ESRGAN gives
    assert _levels(bicubic, want)[1] > P999_BAR


@pytest.mark.parametrize("family", ["basicsr_msrresnet_x4", "basicsr_edsr_Mx4"])
def test_basicsr_families_tile_exactly_and_fine_tune(tmp_path: Path, family: str) -> None:
    """MSRResNet / EDSR are convolutions and pixel shuffles: the card gives the radius that makes tiles
    exact (i2i.foreign.staged_radius; MSRResNet ×4 with B blocks: 2B + 3, EDSR ×4: 2B + 4), and
    ``train.init.generator: FILE`` starts i2i's ``msrresnet`` / ``edsr`` from the file."""
    from i2i.engine.build import load_init
    from i2i.nn.msrresnet import EDSR, MSRResNet
    from i2i.pipelines.super_resolution import SuperResolutionPipeline

    f, net, _, _, _ = _write(tmp_path, family)
    model = load_model(f, device="cpu")
    blocks = 2
    assert model.card.tiling == "exact" and model.card.receptive_radius == (2 * blocks + (3 if "msrresnet" in family else 4))
    x = torch.rand(1, 3, 29, 23)
    whole = SuperResolutionPipeline(model, tile=0).tensor(x)
    assert (whole - SuperResolutionPipeline(model, tile=8).tensor(x)).abs().max().item() <= 1e-5
    assert (whole - SuperResolutionPipeline(model, tile=8, overlap=0).tensor(x)).abs().max().item() > 1e-4  # can fail
    own = (MSRResNet if "msrresnet" in family else EDSR)(scale=4, width=8, num_blocks=blocks).eval()
    load_init({"generator": own}, {"generator": str(f)})
    with torch.no_grad():
        assert (own(x) - net(x)).abs().max().item() <= 1e-4


def test_pad_targets() -> None:
    """PadToSize's target sides: the next multiple (or, ``beyond``, SwinIR's next multiple above),
    never below spandrel's minimum."""
    from i2i.foreign import PadToSize

    net = torch.nn.Identity()
    assert PadToSize(net, 1, 4, 16).target(18, 21) == (20, 24)
    assert PadToSize(net, 1, 4, 16).target(16, 20) == (16, 20)
    assert PadToSize(net, 1, 4, 16, mode="symmetric", beyond=True).target(16, 20) == (20, 24)
    assert PadToSize(net, 1, 4, 16, mode="symmetric", beyond=True).target(10, 7) == (16, 16)
    assert PadToSize(net, 1, 8, 16, mode="symmetric", beyond=True).target(18, 5) == (24, 16)
    seen = []

    class Record(torch.nn.Module):
        def forward(self, t: torch.Tensor) -> torch.Tensor:
            seen.append(t)
            return t

    x = torch.arange(3.0).view(1, 1, 1, 3)
    y = PadToSize(Record(), 1, 8, 0, mode="symmetric")(x)  # the edge repeated, as many times as needed
    assert seen[0].shape == (1, 1, 8, 8) and seen[0][0, 0, 0].tolist() == [0, 1, 2, 2, 1, 0, 0, 1]
    assert torch.equal(y, x) and torch.equal(seen[0][0, 0, :, 0], torch.zeros(8))  # one row, mirrored: itself


def test_onnx_export_of_a_pixel_unshuffled_real_esrgan_file(tmp_path: Path) -> None:
    """RealESRGAN_x2plus takes 3-channel images although its first convolution sees 12 (pixel-unshuffled):
    the export traces it with the card's channels and onnxruntime agrees on another size."""
    pytest.importorskip("onnxruntime")
    from i2i.onnx_export import TOLERANCE, export_onnx

    f, *_ = _write(tmp_path, "realesrgan_x2plus")
    done = export_onnx(load_model(f, device="cpu"), tmp_path / "onnx")
    assert [d.slot for d in done] == ["generator"] and done[0].max_abs_diff <= TOLERANCE * done[0].value_range
