"""A newcomer's first hour (issue 27): shipped models by name at every door, model cards that are right."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import i2i
from i2i.cli import run as cli_run
from i2i.commands import export_main, infer_main
from i2i.errors import CheckpointError
from i2i.inference import SHIPPED_MODELS, load_model


def test_shipped_models_by_name_everywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # not the clone's root: the name, not a relative path, finds the weights
    pipe = i2i.from_pretrained("srresnet_x4_small", device="cpu")
    by_path = load_model(SHIPPED_MODELS["srresnet_x4_small"], device="cpu")
    for k, v in by_path.generator.state_dict().items():
        assert torch.equal(pipe.generator.state_dict()[k], v), k
    assert pipe(np.zeros((6, 5, 3), np.uint8)).shape == (24, 20, 3)
    Image.fromarray(np.full((6, 6, 3), 90, np.uint8)).save("p.png")
    assert cli_run(infer_main, ["--checkpoint", "srresnet_x4_small", "p.png", "-o", "out.png"]) == 0
    assert Image.open("out.png").size == (24, 24)
    assert cli_run(export_main, ["srresnet_x4_small", "--format", "pretrained"]) == 0  # never into the package
    assert (tmp_path / "srresnet_x4_small_pretrained" / "config.json").is_file()
    os.makedirs("srresnet_x4")  # a local folder of that name wins over the shipped model
    with pytest.raises(CheckpointError, match=r"^srresnet_x4: neither an export"):
        load_model("srresnet_x4", device="cpu")
    with pytest.raises(CheckpointError, match=r"not a shipped model \(srresnet_x4, srresnet_x4_small, realesrnet_x4\)"):
        i2i.from_pretrained("srresnet_x9")


def test_an_unconditional_digit_gan_keeps_its_pipeline_tag(tiny_cgan_run: Path, tmp_path: Path) -> None:
    import json
    import shutil

    from i2i import hub

    run = tmp_path / "run"
    shutil.copytree(tiny_cgan_run, run)
    card = (hub.save_pretrained(run, tmp_path / "c") / "README.md").read_text()
    assert "pipeline_tag" not in card and "class-conditional" in card  # CGAN: conditional
    info = json.loads((run / "export" / "config.json").read_text())
    info["meta"]["conditional"] = False  # the same folder described as an unconditional GAN
    (run / "export" / "config.json").write_text(json.dumps(info))
    card = hub.model_card(hub.runs.read_saved(run))
    assert "pipeline_tag: unconditional-image-generation\n" in card and "class-conditional" not in card


def test_onnx_exports_describe_themselves_and_the_readme_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    import re
    import textwrap

    import onnxruntime as ort

    monkeypatch.chdir(tmp_path)
    assert cli_run(export_main, ["srresnet_x4_small", "--format", "onnx"]) == 0
    folder = tmp_path / "srresnet_x4_small_onnx"
    assert sorted(p.name for p in folder.iterdir()) == ["generator.json", "generator.onnx"]
    meta = ort.InferenceSession(str(folder / "generator.onnx")).get_modelmeta().custom_metadata_map
    assert meta["i2i.task"] == "sr" and meta["i2i.scale"] == "4" and meta["i2i.layout"] == "NCHW"
    assert json.loads(meta["i2i.value_range"]) == [0.0, 1.0]
    assert json.loads(meta["i2i.inputs"]) == {"image": "float32, NCHW (batch, 3, height, width), RGB in [0, 1]"}
    assert json.loads(meta["i2i.card"])["scale"] == 4
    side = json.loads((folder / "generator.json").read_text())
    assert side["file"] == "generator.onnx" and side["scale"] == 4 and side["inputs"] == json.loads(meta["i2i.inputs"])
    # the README's ten lines, as written, against i2i's own pipeline on the same photo
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = re.search(r"<!-- onnx-example.*?```python\n(.*?)```", readme, re.S).group(1)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save("photo.png")
    exec(compile(textwrap.dedent(block), "README onnx-example", "exec"), {})  # noqa: S102  (our own README)
    got = np.asarray(Image.open("photo_x4.png"))
    want = i2i.from_pretrained("srresnet_x4_small", device="cpu", ).__call__(np.asarray(Image.open("photo.png")))
    assert got.shape == want.shape == (48, 40, 3)
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1  # float32 kernels in another order: rounding only


def test_plots_draw_one_run_and_put_gradient_norms_on_their_own_axes(tmp_path: Path) -> None:
    from i2i.engine.tracking import MetricsLog, last_run, loss_panels, plot_curves

    log = MetricsLog(tmp_path / "metrics.jsonl")
    for step in (20, 40, 60):  # an interrupted run …
        log.write(step, {"g/total": 1.0, "g/grad_norm": 300.0, "d/loss": 0.5, "d/grad_norm": 90.0, "d/real": 0.9})
    for step in (20, 40):  # … and a second one appended to its log (what older i2i let happen)
        log.write(step, {"g/total": 2.0, "g/grad_norm": 310.0, "d/loss": 0.6, "d/grad_norm": 80.0, "d/real": 0.8})
    from i2i.engine.tracking import read_metrics

    rows = last_run(read_metrics(tmp_path))
    assert [r["step"] for r in rows] == [20, 40] and all(r["g/total"] == 2.0 for r in rows)
    assert loss_panels(rows) == {"generator loss terms": ["g/total"], "discriminator loss terms": ["d/loss"],
                                 "gradient norms": ["d/grad_norm", "g/grad_norm"]}
    assert [p.name for p in plot_curves(tmp_path)] == ["loss_curves.png", "d_scores.png"]
    assert Image.open(tmp_path / "plots" / "loss_curves.png").size == (1800, 400)  # three panels of 6×4 in at 100 dpi


def test_a_run_folder_holds_one_run_and_overwrite_keeps_the_old_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from i2i.commands import train_main

    tiny = ["cgan_mnist", "logging.tracker=none", "logging.progress=false", "eval.every=0", "eval.at_end=false",
            "logging.sample_every=0", "models.generator.base_channels=8", "models.discriminator.base_channels=8",
            "data.batch_size=8", "train.max_steps=2", "train.ckpt_every=0", "--output-dir", str(tmp_path / "run")]
    assert cli_run(train_main, tiny) == 0  # no checkpoint (ckpt_every=0 saves only the export): an "interrupted" run
    shutil.rmtree(tmp_path / "run" / "checkpoints", ignore_errors=True)
    first = (tmp_path / "run" / "metrics.jsonl").read_text()
    capsys.readouterr()
    assert cli_run(train_main, tiny) == 2  # the same folder again: refused, nothing appended
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'run'} already holds another run (") and "--overwrite" in err, err
    assert (tmp_path / "run" / "metrics.jsonl").read_text() == first
    assert cli_run(train_main, [*tiny, "--overwrite"]) == 0
    out = capsys.readouterr().out
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("run.old-")]
    assert len(aside) == 1 and f"kept as {aside[0]}" in out
    assert (aside[0] / "metrics.jsonl").read_text() == first  # the old run, whole
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps)  # one run's log, no second run appended
    assert cli_run(train_main, [*tiny, "--overwrite", "--resume"]) == 2
    assert "give --resume or --overwrite, not both" in capsys.readouterr().err


def test_a_large_image_shows_tile_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from i2i.apps.common import TileBar
    from i2i.pipelines.super_resolution import SuperResolutionPipeline

    pipe = SuperResolutionPipeline(load_model("srresnet_x4_small", device="cpu"), tile=16)
    calls: list[tuple[int, int]] = []
    pipe.progress = lambda done, total: calls.append((done, total))
    pipe(np.zeros((40, 50, 3), np.uint8))  # 3 × 4 tiles of 16
    assert calls == [(k, 12) for k in range(1, 13)]
    stream = io.StringIO()
    bar = TileBar(min_tiles=4, stream=stream, mininterval=0)  # every update drawn: independent of the machine's speed
    pipe.progress = bar
    out = pipe(np.zeros((40, 50, 3), np.uint8))
    assert out.shape == (160, 200, 3) and bar.updates == 12 and bar.bar is None  # one update per tile, closed at the end
    shown = stream.getvalue()
    assert "tiles:" in shown and "/12 [" in shown and "<00:" in shown  # the count and the time left
    small = TileBar(min_tiles=4, stream=io.StringIO())
    pipe.progress = small
    pipe(np.zeros((16, 16, 3), np.uint8))  # one tile: no bar
    assert small.updates == 0


def test_the_evaluation_classifier_says_it_trains_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from i2i.metrics import generation

    class Tiny:  # a data set's interface for get_classifier: images, labels, fingerprint
        images = torch.randint(0, 256, (64, 28, 28), dtype=torch.uint8)
        labels = torch.arange(64) % 10

        def fingerprint(self) -> str:
            return "tiny-test"

    monkeypatch.setenv("I2I_CACHE", str(tmp_path))
    monkeypatch.setattr(generation, "train_classifier", lambda images, labels, n: generation.DigitClassifier(n))
    generation.get_classifier(Tiny())
    err = capsys.readouterr().err
    assert err.startswith("training the evaluation classifier once, on 64 digits (later evaluations reuse it from ")
    generation.get_classifier(Tiny())  # cached: silent
    assert capsys.readouterr().err == ""


def test_a_user_error_under_accelerate_launch_is_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", str(root / "tools" / "train.py"), "cgan_mnist",
           "models.generator.base_channels=100000", "--output-dir", str(tmp_path / "run")]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert r.returncode != 0
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert lines == ["error: models.generator: the network would have more than 2,000,000,000 parameters: the value is out "
                     "of range (or the file is damaged)"], r.stderr[-3000:]
    assert "Traceback" not in r.stderr and not (tmp_path / "run").exists()


def test_help_shows_every_task_and_the_common_options(capsys: pytest.CaptureFixture[str]) -> None:
    from i2i.commands import eval_main
    from i2i.task_table import TASKS

    for main, tool in ((infer_main, "i2i-infer"), (eval_main, "i2i-eval")):
        assert cli_run(main, ["--help"]) == 0
        text = capsys.readouterr().out
        assert text.startswith(f"usage: {tool} ")
        for task in TASKS:
            assert f"\n  {task} " in text, task
        for option in ("--checkpoint MODEL", "--model NAME", "--device", "--fast", f"{tool} --task TASK --help"):
            assert option in text, option
        assert ("-o, --output OUTPUT" in text and "INPUT" in text) == (tool == "i2i-infer")
    with pytest.raises(SystemExit):
        infer_main(["--task", "sr", "--help"])
    text = capsys.readouterr().out
    assert "-o OUTPUT, --output OUTPUT" in text and "--tile" in text and "--outscale" in text and "--checkpoint" in text


@pytest.mark.parametrize("argv, want", [
    (["-i", "a.png", "-o", "out/"], ["-o", "out/", "a.png"]),
    (["--input=a.png", "-n", "srresnet_x4_small", "-s", "2"], ["--model", "srresnet_x4_small", "--outscale", "2", "a.png"]),
    (["-t", "64", "--half", "x.png"], ["--tile", "64", "--fast", "x.png"]),
    (["--fp32", "x.png", "--suffix", "_up", "--ext", "jpg"], ["x.png", "--suffix", "_up", "--ext", "jpg"]),
    (["-g", "1", "x.png"], ["--device", "cuda:1", "x.png"]),
    (["--task", "acgan", "-n", "64", "--label", "3"], ["--task", "acgan", "-n", "64", "--label", "3"]),  # a count stays
])
def test_real_esrgan_flags_are_translated(argv: list[str], want: list[str]) -> None:
    from i2i.apps.habits import translate

    assert translate(argv) == want


@pytest.mark.parametrize("flag, words", [("--face_enhance", "no face restoration"), ("--denoise_strength", "blend"),
                                         ("--tile_pad", "receptive field"), ("--alpha_upsampler", "bicubic")])
def test_real_esrgan_only_flags_are_one_line(flag: str, words: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_run(infer_main, ["-i", "x.png", flag, "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {flag}: ") and words in err and "\n" not in err, err


def test_real_esrgan_flags_run_the_shipped_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    Image.fromarray(np.full((10, 12, 3), 120, np.uint8)).save("p.png")
    assert cli_run(infer_main, ["-i", "p.png", "-n", "srresnet_x4_small", "-s", "2", "-t", "8", "--fp32", "-o", "o/"]) == 0
    assert Image.open("o/p_x2.png").size == (24, 20)
    assert cli_run(infer_main, ["-i", "p.png", "-n", "RealESRGAN_x4plus"]) == 2
    assert "i2i downloads nothing: pass the weights file you have" in capsys.readouterr().err


@pytest.mark.parametrize("parent, launcher", [
    (["/venv/bin/python3", "/venv/bin/accelerate", "launch", "tools/train.py"], True),
    (["accelerate", "launch", "--cpu", "tools/train.py"], True),
    (["/usr/bin/python", "-m", "accelerate.commands.launch", "tools/train.py"], True),
    (["bash", "my_accelerate_launch.sh"], False),  # a script that merely mentions it: never signalled
    (["python", "tools/train.py", "accelerate", "launch"], False),
])
def test_only_accelerates_own_launcher_is_recognised(parent: list[str], launcher: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    from i2i import distributed

    real = Path.read_bytes

    def fake(self: Path) -> bytes:
        return "\0".join(parent).encode() + b"\0" if str(self).endswith("/cmdline") else real(self)

    for v in distributed.WORLD_VARS:
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setattr(Path, "read_bytes", fake)
    assert distributed.under_accelerate_launcher() is launcher
