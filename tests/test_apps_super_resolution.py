"""i2i.apps.super_resolution: tools/infer.py and tools/eval.py --task sr; and upscale() of i2i.pipelines.super_resolution.

A tiny SRResNet export is written per test module so that the CLI runs exactly as a user
would run it (load_model from config.json + safetensors), but in milliseconds.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from i2i.pipelines.super_resolution import default_overlap, receptive_radius, upscale
from i2i.cli import run
from i2i.runs import write_export
from i2i.inference import SHIPPED, load_model
from i2i.nn.srresnet import SRResNet

ROOT = Path(__file__).resolve().parent.parent
SCALE = 4


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(f"_tool_{name}", ROOT / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


def _tiny_net(seed: int = 0) -> SRResNet:
    torch.manual_seed(seed)
    net = SRResNet(scale=SCALE, width=8, num_blocks=1)
    # non-trivial BN statistics, so eval-mode BN is not the identity
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return net.eval()


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "export"
    spec = {"type": "srresnet", "scale": SCALE, "width": 8, "num_blocks": 1, "batch_norm": True}
    info = {"format": "i2i-export", "version": 1, "task": "sr", "recipe": {"type": "sr", "scale": SCALE},
            "models": {"generator": spec}, "meta": {"scale": SCALE},
            "config": {"data": {"type": "sr_folder", "root": None, "val_split": "val", "scale": SCALE}}}
    write_export(out, {"generator": _tiny_net().state_dict()}, info)
    return out


def _photo(h: int, w: int) -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[100:100 + h, 180:180 + w])


def _good_and_bad_folder(folder: Path) -> dict[str, tuple[int, int]]:
    """Writes good images (name -> expected LR (h, w) as seen after EXIF) and bad files."""
    import cv2

    folder.mkdir()
    rgb = _photo(10, 14)
    Image.fromarray(rgb).save(folder / "rgb.png")
    Image.fromarray(rgb).convert("L").save(folder / "gray.png")
    rgba = np.dstack([rgb, np.linspace(0, 255, 14 * 10).reshape(10, 14).astype(np.uint8)])
    Image.fromarray(rgba, "RGBA").save(folder / "rgba.png")
    Image.fromarray(rgb).quantize(16).save(folder / "palette.png")
    Image.fromarray((np.arange(10 * 14).reshape(10, 14) * 300).astype(np.uint16)).save(folder / "gray16.png")
    cv2.imwrite(str(folder / "rgb16.png"), (rgb.astype(np.uint16) * 257)[..., ::-1].copy())
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 14 wide x 10 high, shown rotated: 10 wide x 14 high
    Image.fromarray(rgb).save(folder / "rotated.jpg", exif=exif.tobytes())
    # bad files: zero bytes, random bytes, a truncated PNG, text with an image suffix
    (folder / "empty.png").write_bytes(b"")
    (folder / "corrupt.jpg").write_bytes(np.random.default_rng(0).bytes(300))
    good_png = (folder / "rgb.png").read_bytes()
    (folder / "truncated.png").write_bytes(good_png[: len(good_png) // 2])
    (folder / "notes.png").write_text("not an image\n")
    (folder / "readme.txt").write_text("ignored: no image suffix\n")
    return {"rgb": (10, 14), "gray": (10, 14), "rgba": (10, 14), "palette": (10, 14), "gray16": (10, 14),
            "rgb16": (10, 14), "rotated": (14, 10)}


def test_infer_folder_good_and_bad_files(export: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import cv2

    expected = _good_and_bad_folder(tmp_path / "in")
    out = tmp_path / "out"
    code = run(_tool("infer").main, ["--task", "sr", "--checkpoint", str(export), str(tmp_path / "in"), "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 1  # some files failed
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 4, err
    for bad in ("empty.png", "corrupt.jpg", "truncated.png", "notes.png"):
        assert sum(bad in line for line in errors) == 1, (bad, errors)
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(f"{n}_x{SCALE}.png" for n in expected)
    for name, (h, w) in expected.items():
        img = Image.open(out / f"{name}_x{SCALE}.png")
        assert img.size == (w * SCALE, h * SCALE), name
    modes = {n: Image.open(out / f"{n}_x{SCALE}.png").mode for n in expected}
    assert modes["rgb"] == modes["palette"] == modes["rotated"] == "RGB"
    assert modes["gray"] == "L" and modes["rgba"] == "RGBA"
    assert modes["gray16"].startswith("I")  # 16-bit gray PNG
    rgb16 = cv2.imread(str(out / f"rgb16_x{SCALE}.png"), cv2.IMREAD_UNCHANGED)
    assert rgb16.dtype == np.uint16 and rgb16.shape == (40, 56, 3)
    # the alpha channel is bicubic-upscaled, not run through the network: a smooth ramp stays a ramp
    alpha = np.asarray(Image.open(out / f"rgba_x{SCALE}.png"))[..., 3].astype(int)
    assert alpha[:, 0].min() < 40 and alpha[:, -1].max() > 200


def test_infer_single_file_to_named_output(export: Path, tmp_path: Path) -> None:
    src = tmp_path / "a.png"
    Image.fromarray(_photo(9, 11)).save(src)
    dst = tmp_path / "deep" / "result.png"
    assert run(_tool("infer").main, ["--task", "sr", "--checkpoint", str(export), str(src), "-o", str(dst),
                                    "--tile", "4"]) == 0
    assert Image.open(dst).size == (44, 36)


def test_tiled_equals_untiled_on_a_photo() -> None:
    net = _tiny_net(1)
    img = _photo(30, 34)
    overlap = default_overlap(net)
    assert overlap >= receptive_radius(net) == pytest.approx(2 * 1 + 7.5)
    whole = upscale(net, img, tile=None)
    tiled = upscale(net, img, tile=12, overlap=overlap)  # 3 x 3 tiles
    assert whole.shape == tiled.shape == (30 * SCALE, 34 * SCALE, 3) and whole.dtype == np.uint8
    assert np.abs(whole.astype(int) - tiled.astype(int)).max() <= 1  # within 1/255 on every pixel
    # float path (16-bit inputs): equal within 1/255 before any rounding
    f = img.astype(np.float32) / 255.0
    whole_f = upscale(net, f, tile=None)
    assert np.abs(whole_f - upscale(net, f, tile=12)).max() < 1 / 255
    # without enough context, tiling is visibly wrong: the check above is not vacuous
    assert np.abs(whole_f - upscale(net, f, tile=12, overlap=0)).max() > 1 / 255


def test_upscale_accepts_tensor_and_gray() -> None:
    net = _tiny_net(2)
    t = torch.rand(1, 3, 6, 7)
    assert upscale(net, t).shape == (24, 28, 3)
    gray = upscale(net, (np.arange(42).reshape(6, 7) * 6).astype(np.uint8))
    assert gray.shape == (24, 28) and gray.dtype == np.uint8
    with pytest.raises(ValueError, match="batch"):
        upscale(net, torch.rand(2, 3, 4, 4))


def _eval_json(argv: list[str], capsys: pytest.CaptureFixture) -> dict:
    assert run(_tool("eval").main, argv) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    return json.loads(last)


def test_eval_json_hr_folder_and_paired(export: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from i2i.data.resize import imresize

    hr_dir = tmp_path / "set"
    hr_dir.mkdir()
    Image.fromarray(_photo(50, 42)).save(hr_dir / "a.png")  # 50 is not a multiple of 4: mod-cropped
    Image.fromarray(_photo(36, 40)).convert("L").save(hr_dir / "b.png")
    m = _eval_json(["--task", "sr", "--checkpoint", str(export), "--data", str(hr_dir), "--json"], capsys)
    for k in ("psnr_y", "ssim_y", "psnr", "ssim", "bicubic/psnr_y", "bicubic/ssim_y", "bicubic/psnr", "bicubic/ssim"):
        assert isinstance(m[k], float) and np.isfinite(m[k]), k
    assert m["num_images"] == 2 and [r["name"] for r in m["per_image"]] == ["a", "b"]
    assert m["per_image"][0]["size"] == [40, 48]  # HR cropped to a multiple of the scale
    assert m["bicubic/psnr_y"] > 20  # bicubic of a photo: a sane baseline number

    paired = tmp_path / "paired"
    (paired / "hr").mkdir(parents=True)
    (paired / "lr").mkdir()
    hr = _photo(48, 40)
    Image.fromarray(hr).save(paired / "hr" / "c.png")
    lr = imresize(torch.from_numpy(hr).permute(2, 0, 1).float()[None] / 255, scale=0.25).clamp(0, 1)
    Image.fromarray((lr[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(paired / "lr" / "cx4.png")
    p = _eval_json(["--task", "sr", "--checkpoint", str(export), "--data", str(paired), "--json"], capsys)
    assert p["num_images"] == 1 and "hr/" in p["data"] and np.isfinite(p["bicubic/psnr_y"])

    # the readable form: a per-image table then the tool's key/value lines
    assert run(_tool("eval").main, ["--task", "sr", "--checkpoint", str(export), "--data", str(hr_dir)]) == 0
    text = capsys.readouterr().out
    assert "bic PSNR-Y" in text and "bicubic/psnr_y" in text


def test_eval_rejects_wrong_scale(export: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert run(_tool("eval").main, ["--task", "sr", "--checkpoint", str(export), "--scale", "2", "--json"]) == 2
    assert "×4, not ×2" in capsys.readouterr().err


@pytest.mark.skipif(not (SHIPPED["sr"] / "config.json").is_file(), reason="shipped weights not present")
def test_shipped_model_loads_without_checkpoint() -> None:
    m = load_model(None, task="sr")
    assert m.task == "sr" and m.generator.scale == 4
    assert (SHIPPED["sr"] / "generator.safetensors").stat().st_size < 10 * 2**20
    out = upscale(m, _photo(8, 8))
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8


def test_model_flag_picks_each_shipped_model(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """--model NAME runs the named shipped model (its path is the one reported), never with --checkpoint."""
    from i2i.inference import SHIPPED_MODELS

    hr_dir = tmp_path / "set"
    hr_dir.mkdir()
    Image.fromarray(_photo(32, 32)).save(hr_dir / "a.png")
    present = [n for n, path in SHIPPED_MODELS.items() if (path / "config.json").is_file()]
    assert present, "no shipped SR model in this checkout"
    results = {}
    for name in present:
        m = _eval_json(["--task", "sr", "--model", name, "--data", str(hr_dir), "--json"], capsys)
        assert Path(m["checkpoint"]) == SHIPPED_MODELS[name]
        results[name] = m["psnr_y"]
    assert len(set(results.values())) == len(results)  # different networks, different outputs
    assert run(_tool("eval").main, ["--task", "sr", "--model", "nope", "--data", str(hr_dir)]) == 2
    assert "--model: no shipped model 'nope'; expected one of srresnet_x4, srresnet_x4_small, realesrnet_x4" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run(_tool("infer").main, ["--task", "sr", "--model", present[0], "--checkpoint", "x", str(hr_dir / "a.png")])
    assert "give --model or --checkpoint, not both" in capsys.readouterr().err


def test_interpolator_init_starts_at_bicubic_quality() -> None:
    from i2i.nn.srresnet import init_as_interpolator
    from i2i.data.super_resolution import make_lr
    from i2i.metrics.image import psnr
    from i2i.recipes.super_resolution import bicubic_upscale

    torch.manual_seed(0)
    net = init_as_interpolator(SRResNet(scale=SCALE, width=8, num_blocks=1)).eval()
    hr = torch.from_numpy(_photo(64, 64)).permute(2, 0, 1).float()[None] / 255
    lr = make_lr(hr, SCALE)
    with torch.no_grad():
        ours, bic = psnr(net(lr).clamp(0, 1), hr, 8, True).item(), psnr(bicubic_upscale(lr, SCALE), hr, 8, True).item()
    assert abs(ours - bic) < 0.5, (ours, bic)
    random = psnr(SRResNet(scale=SCALE, width=8, num_blocks=1).eval()(lr).clamp(0, 1), hr, 8, True).item()
    assert random < bic - 5  # an untrained net is far from it: the init is what does it


def test_fast_flag_in_infer_and_eval(export: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """--fast (folded BN, NHWC, bf16 where native) writes the same picture to within a few levels
    and evaluates to within 0.05 dB PSNR of the plain run."""
    src = tmp_path / "a.png"
    Image.fromarray(_photo(24, 20)).save(src)
    outs = {}
    for flag in ([], ["--fast"]):
        dst = tmp_path / f"out{len(flag)}.png"
        assert run(_tool("infer").main, ["--task", "sr", "--checkpoint", str(export), str(src), "-o", str(dst)]
                   + flag) == 0
        outs[len(flag)] = np.asarray(Image.open(dst)).astype(int)
    assert outs[0].shape == outs[1].shape == (96, 80, 3)
    assert np.abs(outs[0] - outs[1]).max() <= 4 and np.abs(outs[0] - outs[1]).mean() < 0.5
    hr_dir = tmp_path / "set"
    hr_dir.mkdir()
    Image.fromarray(_photo(48, 40)).save(hr_dir / "a.png")
    args = ["--task", "sr", "--checkpoint", str(export), "--data", str(hr_dir), "--json"]
    plain, fast = _eval_json(args, capsys), _eval_json(args + ["--fast"], capsys)
    assert abs(plain["psnr_y"] - fast["psnr_y"]) <= 0.05


def _infer(export: Path, *args: str) -> int:
    return run(_tool("infer").main, ["--task", "sr", "--checkpoint", str(export), "--device", "cpu", *args])


def test_overlapped_folder_equals_one_by_one(export: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Decode/compute/encode overlapped across files (threads) writes the very same files as running
    each file alone, sequentially; an unreadable file is one error line and the others are written."""
    src = tmp_path / "in"
    src.mkdir()
    for i, (h, w) in enumerate([(9, 11), (12, 10), (7, 13)]):
        Image.fromarray(_photo(h + i, w)).save(src / f"p{i}.png")
    (src / "bad.png").write_bytes(b"not a png")
    assert _infer(export, str(src), "-o", str(tmp_path / "all"), "--io-threads", "2", "--tile", "4",
                  "--tile-batch", "3") == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "bad.png" in errors[0]
    for i in range(3):
        one = tmp_path / f"one{i}.png"
        assert _infer(export, str(src / f"p{i}.png"), "-o", str(one), "--io-threads", "0", "--tile", "4") == 0
        assert (tmp_path / "all" / f"p{i}_x{SCALE}.png").read_bytes() == one.read_bytes()
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == [f"p{i}_x{SCALE}.png" for i in range(3)]


def test_tile_batches_equal_single_tiles() -> None:
    net, img = _tiny_net(2), _photo(21, 26)
    assert np.array_equal(upscale(net, img, tile=6, tile_batch=1), upscale(net, img, tile=6, tile_batch=4))


def test_output_formats_round_trip(export: Path, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(_photo(12, 10)).save(src / "a.png")
    Image.fromarray(_photo(12, 10)).save(src / "b.jpg", quality=98)
    assert _infer(export, str(src), "-o", str(tmp_path / "png")) == 0
    ref = {n: np.asarray(Image.open(tmp_path / "png" / f"{n}_x{SCALE}.png")).astype(int) for n in "ab"}
    for ext, fmt in (("jpg", "JPEG"), ("webp", "WEBP")):
        out = tmp_path / ext
        assert _infer(export, str(src), "-o", str(out), "--ext", ext, "--quality", "95") == 0
        for n in "ab":
            img = Image.open(out / f"{n}_x{SCALE}.{ext}")
            assert img.format == fmt and img.size == (40, 48)
            assert np.abs(np.asarray(img.convert("RGB")).astype(int) - ref[n]).mean() < 3  # near the PNG
    assert _infer(export, str(src), "-o", str(tmp_path / "auto"), "--ext", "auto") == 0
    assert sorted(p.name for p in (tmp_path / "auto").iterdir()) == [f"a_x{SCALE}.png", f"b_x{SCALE}.jpg"]
    for level in ("0", "9"):  # every level, the same pixels
        out = tmp_path / f"z{level}"
        assert _infer(export, str(src / "a.png"), "-o", str(out / "a.png"), "--png-compression", level) == 0
        assert np.array_equal(np.asarray(Image.open(out / "a.png")).astype(int), ref["a"])


@pytest.mark.parametrize("args, words", [(["--ext", "gif"], "--ext: expected png, jpg, webp or auto, got 'gif'"),
                                         (["--png-compression", "10"], "--png-compression: must be in 0..9"),
                                         (["--quality", "0"], "--quality: must be in 1..100"),
                                         (["--tile-batch", "0"], "--tile-batch: must be >= 1"),
                                         (["-o", "x.png", "--ext", "jpg"], "--ext: -o x.png names the format")])
def test_bad_output_flags_are_one_line(export: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                       args: list[str], words: str) -> None:
    src = tmp_path / "a.png"
    Image.fromarray(_photo(8, 8)).save(src)
    assert _infer(export, str(src), *args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {words}"), err


def test_the_onnxruntime_backend_runs_the_same_tiling(export: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """--backend onnxruntime: the export's ONNX file (made on the fly here; i2i-export's folder when
    present) inside the same tiled pipeline; equal to PyTorch to one 8-bit level, for files and for eval."""
    pytest.importorskip("onnxruntime")
    src = tmp_path / "in.png"
    Image.fromarray(_photo(37, 45)).save(src)
    infer = _tool("infer")
    outs = {}
    for backend in ("torch", "onnxruntime"):
        dst = tmp_path / f"{backend}.png"
        assert run(infer.main, ["--task", "sr", "--checkpoint", str(export), "--device", "cpu", "--tile", "16",
                                "--backend", backend, str(src), "-o", str(dst)]) == 0
        outs[backend] = np.asarray(Image.open(dst)).astype(int)
    assert outs["torch"].shape == (37 * SCALE, 45 * SCALE, 3)
    assert np.abs(outs["torch"] - outs["onnxruntime"]).max() <= 1
    from i2i.onnx_export import OnnxModule, with_onnxruntime

    model = with_onnxruntime(load_model(export, device="cpu"))
    assert isinstance(model.generator, OnnxModule) and default_overlap(model.generator) == default_overlap(_tiny_net())
    evaluate = _tool("eval")
    scores = {}
    for backend in ("torch", "onnxruntime"):
        assert run(evaluate.main, ["--task", "sr", "--checkpoint", str(export), "--device", "cpu", "--json",
                                   "--backend", backend]) == 0
        scores[backend] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["psnr_y"]
    assert scores["onnxruntime"] == pytest.approx(scores["torch"], abs=0.01)
    assert run(infer.main, ["--task", "sr", "--checkpoint", str(export), "--device", "cpu", "--fast",
                            "--backend", "onnxruntime", str(src), "-o", str(tmp_path / "x.png")]) == 2
    assert "--backend: the onnxruntime backend runs on the CPU in fp32" in capsys.readouterr().err


def test_outscale_suffix_and_metadata(export: Path, tmp_path: Path) -> None:
    """--outscale: the network's ×4 then MATLAB bicubic to round(H·s) × round(W·s); --suffix names
    the file; the source's ICC profile reaches the output."""
    from PIL import ImageCms

    from i2i.data.resize import imresize
    from i2i.pipelines.super_resolution import SuperResolutionPipeline

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    photo = _photo(21, 26)
    src = tmp_path / "p.png"
    Image.fromarray(photo).save(src, icc_profile=icc)
    infer = _tool("infer")
    assert run(infer.main, ["--task", "sr", "--checkpoint", str(export), "--device", "cpu", "--outscale", "2.5",
                            "--suffix", "_big", str(src), "-o", str(tmp_path / "out")]) == 0
    out = tmp_path / "out" / "p_big.png"
    with Image.open(out) as o:
        got = np.asarray(o)
        assert o.info.get("icc_profile") == icc
    assert got.shape == (round(21 * 2.5), round(26 * 2.5), 3)
    x4 = SuperResolutionPipeline(load_model(export, device="cpu"))(photo)
    assert np.array_equal(got, imresize(x4, size=got.shape[:2]))
    assert run(infer.main, ["--task", "sr", "--checkpoint", str(export), "--device", "cpu", "--outscale", "0",
                            str(src), "-o", str(tmp_path / "o2")]) == 2
