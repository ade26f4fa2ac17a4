"""Single weight files of other projects through spandrel (i2i.foreign): read safely, described by
a card, run by the SR pipeline with the peer network's own output."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

pytest.importorskip("spandrel")

from spandrel.architectures.Compact import Compact  # noqa: E402
from spandrel.architectures.ESRGAN.__arch.RRDB import RRDBNet  # noqa: E402
from spandrel.architectures.SwinIR import SwinIR  # noqa: E402

from i2i.errors import CheckpointError  # noqa: E402
from i2i.inference import load_model  # noqa: E402
from i2i.pipelines import pipeline_for  # noqa: E402
from i2i.pipelines.super_resolution import SuperResolutionPipeline  # noqa: E402


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _reference(net: torch.nn.Module, img: np.ndarray) -> np.ndarray:
    """The peer network's own forward on the whole image, rounded to 8 bits."""
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        y = net.eval()(x).clamp(0, 1)
    return y[0].permute(1, 2, 0).mul(255).round().to(torch.uint8).numpy()


def test_an_esrgan_pth_in_real_esrgans_layout_runs_with_no_task(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = RRDBNet(num_filters=8, num_blocks=1, scale=4)
    f = tmp_path / "RealESRGAN_tiny_x4.pth"
    torch.save({"params_ema": net.state_dict()}, f)  # Real-ESRGAN's release layout
    model = load_model(f, device="cpu")
    card = model.card
    assert (card.task, card.scale, card.in_channels, card.out_channels) == ("sr", 4, 3, 3)
    assert card.provenance.format == "spandrel" and card.provenance.architecture == {"generator": "ESRGAN"}
    assert list(card.provenance.sha256) == [f.name] and card.tiling == "exact" and card.receptive_radius == 15 + 4
    img = _image(13, 17)
    got = pipeline_for(model, tile=0)(img)
    want = _reference(net, img)
    assert got.shape == (52, 68, 3) and np.abs(got.astype(int) - want.astype(int)).max() <= 1


def test_a_compact_safetensors_with_a_module_prefix(tmp_path: Path) -> None:
    torch.manual_seed(1)
    net = Compact(num_feat=8, num_conv=2, upscale=2)
    f = tmp_path / "realesr-tiny-x2.safetensors"
    save_file({f"module.{k}": v.contiguous() for k, v in net.state_dict().items()}, str(f))
    model = load_model(f, task="sr", device="cpu")
    assert model.card.scale == 2 and model.card.provenance.architecture == {"generator": "Compact"}
    img = _image(9, 11, seed=2)
    assert np.abs(SuperResolutionPipeline(model, tile=0)(img).astype(int) - _reference(net, img).astype(int)).max() <= 1


def test_a_windowed_transformer_runs_whole_and_says_tiling_is_discouraged(tmp_path: Path) -> None:
    torch.manual_seed(2)
    net = SwinIR(embed_dim=12, depths=[1], num_heads=[2], window_size=4, upscale=2, upsampler="pixelshuffle",
                 img_size=16)
    f = tmp_path / "swinir_tiny.pth"
    torch.save({"params": net.state_dict()}, f)
    model = load_model(f, device="cpu")
    card = model.card
    assert card.provenance.architecture == {"generator": "SwinIR"} and card.scale == 2
    assert card.dtypes == ("float32", "bfloat16")  # spandrel: SwinIR has no fp16
    assert card.tiling == "none" and card.notes["spandrel_tiling"] == "discouraged"
    img = _image(10, 7, seed=3)  # below spandrel's minimum side (16): mirrored up to it, as SwinIR's script mirrors
    out = SuperResolutionPipeline(model, tile=0)(img)
    want = _reference(net, np.pad(img, ((0, 6), (0, 9), (0, 0)), mode="symmetric"))[:20, :14]
    assert out.shape == (20, 14, 3) and np.abs(out.astype(int) - want.astype(int)).max() <= 1


def test_size_requirements_are_met_by_padding() -> None:
    from i2i.foreign import PadToSize

    seen = []

    def net(x: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(x.shape[-2:]))
        return torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")

    class Net(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return net(x)

    x = torch.rand(1, 3, 10, 7)
    y = PadToSize(Net(), scale=2, multiple=8, minimum=16)(x)  # 10 -> 16 (reflect 9, replicate 0), 7 -> 16 (6 + 3)
    assert seen == [(16, 16)] and y.shape == (1, 3, 20, 14)
    assert torch.equal(y, torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest"))  # cropped back exactly
    PadToSize(Net(), scale=2, multiple=4, minimum=0, square=True)(torch.rand(1, 3, 5, 9))
    assert seen[-1] == (12, 12)
    assert PadToSize(Net(), 2, 8, 16).target(17, 16) == (24, 16)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_pth_that_would_run_code_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    import os
    import pickle

    class Evil:
        def __reduce__(self):  # would run a shell command when unpickled
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    f = tmp_path / "RealESRGAN_x4plus.pth"
    torch.save({"params_ema": {"conv_first.weight": torch.zeros(1)}, "x": Evil()}, f)
    with pytest.raises(CheckpointError, match=rf"^{f}: refused to load"):
        load_model(f, device="cpu")
    with open(f, "wb") as fh:
        pickle.dump({"params_ema": Evil()}, fh)
    with pytest.raises(CheckpointError, match="refused to load"):
        load_model(f, device="cpu")
    assert not (tmp_path / "pwned").exists()


def test_unknown_and_non_image_files_are_one_line(tmp_path: Path) -> None:
    f = tmp_path / "mystery.pth"
    torch.save({"encoder.layer.0.weight": torch.zeros(4, 4), "encoder.layer.0.bias": torch.zeros(4)}, f)
    with pytest.raises(CheckpointError) as e:
        load_model(f, device="cpu")
    msg = str(e.value)
    assert msg.startswith(f"{f}: not an architecture i2i can read (first tensors: encoder.layer.0.weight, ")
    assert "ESRGAN" in msg and "SwinIR" in msg and "\n" not in msg
    text = tmp_path / "model.safetensors"  # a text model's file: no image architecture in it
    save_file({"transformer.h.0.attn.c_attn.weight": torch.zeros(8, 24), "transformer.wte.weight": torch.zeros(50, 8)},
              str(text))
    with pytest.raises(CheckpointError, match=r"not an architecture i2i can read"):
        load_model(text, device="cpu")
    junk = tmp_path / "list.pt"
    torch.save([1, 2, 3], junk)
    with pytest.raises(CheckpointError, match=r"expected a state dict .*got list"):
        load_model(junk, device="cpu")


def test_i2i_infer_and_from_pretrained_take_the_file(tmp_path: Path) -> None:
    from conftest import load_tool

    import i2i
    from i2i.cli import run
    from i2i.data.io import read_image, save_image

    torch.manual_seed(3)
    net = Compact(num_feat=8, num_conv=2, upscale=4)
    f = tmp_path / "realesr-general-tiny-x4.pth"
    torch.save({"params": net.state_dict()}, f)
    src = save_image(tmp_path / "in.png", _image(12, 10, seed=4))
    dst = tmp_path / "out.png"
    assert run(load_tool("infer").main, ["--checkpoint", str(f), "--device", "cpu", "--tile", "0", str(src),
                                         "-o", str(dst)]) == 0  # no --task: the file says what it is
    got = read_image(dst, "RGB")
    assert got.shape == (48, 40, 3) and np.abs(got.astype(int) - _reference(net, read_image(src, "RGB")).astype(int)).max() <= 1
    pipe = i2i.from_pretrained(f, device="cpu")
    assert isinstance(pipe, SuperResolutionPipeline) and pipe.scale == 4


def test_onnx_export_of_a_foreign_file_agrees_with_pytorch(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from i2i.onnx_export import TOLERANCE, export_onnx

    torch.manual_seed(5)
    f = tmp_path / "tiny.pth"
    torch.save(Compact(num_feat=8, num_conv=2, upscale=2).state_dict(), f)
    done = export_onnx(load_model(f, device="cpu"), tmp_path / "onnx")  # checked by onnxruntime on another size
    assert [d.slot for d in done] == ["generator"] and done[0].max_abs_diff <= TOLERANCE * done[0].value_range


def test_the_demo_takes_the_file(tmp_path: Path) -> None:
    from i2i.apps.demo import load_demo_models, super_resolve
    from i2i.data.io import save_image

    torch.manual_seed(6)
    net = Compact(num_feat=8, num_conv=2, upscale=2)
    f = tmp_path / "tiny_x2.pth"
    torch.save({"params": net.state_dict()}, f)
    models = load_demo_models([str(f)], shipped_sr=False, device="cpu")
    assert list(models) == ["sr"] and models["sr"][0].name == str(f)
    src = save_image(tmp_path / "in.png", _image(8, 9, seed=7))
    lr, sr, _ = super_resolve(models["sr"][0].pipeline, src)
    assert sr.shape == (16, 18, 3) and np.abs(sr.astype(int) - _reference(net, lr).astype(int)).max() <= 1


def test_i2i_eval_scores_a_foreign_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import json

    from conftest import load_tool

    from i2i.cli import run
    from i2i.data.io import save_image
    from i2i.data.super_resolution import SRFolder
    from i2i.metrics.image import psnr

    torch.manual_seed(7)
    net = Compact(num_feat=8, num_conv=2, upscale=2).eval()
    f = tmp_path / "tiny_x2.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(f))
    hr_dir = tmp_path / "set"
    save_image(hr_dir / "a.png", _image(24, 20, seed=8))
    assert run(load_tool("eval").main, ["--task", "sr", "--checkpoint", str(f), "--data", str(hr_dir), "--device", "cpu",
                                        "--json"]) == 0
    m = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    item = SRFolder(str(hr_dir), split="val", scale=2)[0]  # the LR the tool made (MATLAB bicubic)
    with torch.no_grad():
        want = psnr(net(item["lr"][None]).clamp(0, 1), item["hr"][None], 2).item()
    assert m["num_images"] == 1 and m["scale"] == 2 and m["psnr"] == pytest.approx(want, abs=1e-3)


def test_the_card_carries_the_architecture_licence(tmp_path: Path) -> None:
    from i2i.foreign import LICENCES, licence_of

    torch.manual_seed(8)
    f = tmp_path / "RealESRGAN_tiny_x4.pth"
    torch.save({"params_ema": RRDBNet(num_filters=8, num_blocks=1, scale=4).state_dict()}, f)
    assert load_model(f, device="cpu").card.provenance.licence == LICENCES["ESRGAN"]
    g = tmp_path / "realesr-tiny.pth"
    torch.save({"params": Compact(num_feat=8, num_conv=2, upscale=2).state_dict()}, g)
    card = load_model(g, device="cpu").card
    assert card.provenance.licence.startswith("BSD-3-Clause") and "licence_note" not in card.notes
    assert licence_of("OmniSR") == ("Apache-2.0 (Francis0625/Omni-SR)", None)  # its README's licence
    assert licence_of("RCAN") == ("unknown", None)  # not verified: said so, not guessed
    lic, note = licence_of("GFPGAN")
    assert lic == "unknown" and "commercial" in note


@pytest.mark.parametrize("family", ["rrdb_x4", "rrdb_x2", "compact_x2", "compact_x4"])
def test_convolutional_families_tile_exactly(tmp_path: Path, family: str) -> None:
    from i2i.foreign import staged_radius

    torch.manual_seed(9)
    if family.startswith("rrdb"):
        scale = int(family[-1])
        net = RRDBNet(num_filters=8, num_blocks=1, scale=scale)
        if scale == 4:
            assert staged_radius(net) == 15 * 1 + 4  # the docstring's hand count
    else:
        net = Compact(num_feat=8, num_conv=3, upscale=int(family[-1]))
        assert staged_radius(net) == 1 + 3 + 1  # five 3x3 convs at LR, then pixel shuffle
    with torch.no_grad():  # bigger weights than the default init, so a missing context pixel shows
        for p in net.parameters():
            p.mul_(2.0)
    f = tmp_path / f"{family}.pth"
    torch.save({"params": net.state_dict()}, f)
    model = load_model(f, device="cpu")
    card = model.card
    assert card.tiling == "exact" and card.receptive_radius == staged_radius(net)
    x = torch.rand(1, 3, 37, 29)
    whole = SuperResolutionPipeline(model, tile=0).tensor(x)
    tiled = SuperResolutionPipeline(model, tile=8).tensor(x)  # the default overlap: ceil(radius) + 2
    assert whole.shape == tiled.shape and (whole - tiled).abs().max().item() <= 1e-5
    short = SuperResolutionPipeline(model, tile=8, overlap=0).tensor(x)
    assert (whole - short).abs().max().item() > 1e-4  # the check can fail: without context the seams show


def test_a_pixel_unshuffled_rrdbnet_and_transformers_are_not_tiled_as_exact(tmp_path: Path) -> None:
    torch.manual_seed(10)
    f = tmp_path / "RealESRGAN_tiny_x2plus.pth"
    torch.save({"params_ema": RRDBNet(num_filters=8, num_blocks=1, scale=4, in_nc=12, out_nc=3, shuffle_factor=2).state_dict()}, f)
    card = load_model(f, device="cpu").card
    assert card.scale == 2 and card.tiling == "none" and card.receptive_radius is None
    g = tmp_path / "swinir_tiny.pth"
    torch.save(SwinIR(embed_dim=12, depths=[1], num_heads=[2], window_size=4, upscale=2, upsampler="pixelshuffle",
                      img_size=16).state_dict(), g)
    card = load_model(g, device="cpu").card
    assert card.tiling == "none" and "discouraged" in card.notes["tiling_advice"]
    assert "multiple of 4" in card.notes["tiling_advice"]  # its window size
