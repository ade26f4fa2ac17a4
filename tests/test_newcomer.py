"""A newcomer's first hour (issue 27): shipped models by name at every door, model cards that are right."""
from __future__ import annotations

import os
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
    with pytest.raises(CheckpointError, match=r"not a shipped model \(srresnet_x4, srresnet_x4_small\)"):
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
