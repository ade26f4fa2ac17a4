"""i2i.apps.digits: the digit front-end of tools/infer.py and tools/eval.py — label parsing,
the grid it writes (the pipeline's images, laid out by hand here) and the evaluation's fields.
The tools themselves, as a user runs them: tests/e2e/test_tools.py. The evaluation's digit classifier
comes from the session's cache (trained once per test session, see conftest)."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from i2i.apps import digits as app
from i2i.data.digits import MNISTDigits
from i2i.errors import ConfigError
from i2i.inference import LoadedModel, load_model
from i2i.nn.dcgan import DCGANGenerator
from i2i.pipelines.digits import DigitsPipeline, image_grid


def args(kind: str, argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default=None)
    p.add_argument("--device", default=None)
    getattr(app, f"add_{kind}_args")(p)
    ns = p.parse_args(argv)
    ns.device = torch.device("cpu")
    return ns


@pytest.mark.parametrize("text, labels", [(None, list(range(10))), (["7"], [7]), (["1,4", "9"], [1, 4, 9]),
                                          ([" 3 , 0"], [3, 0])])
def test_labels(text: list[str] | None, labels: list[int]) -> None:
    assert app._labels(text, 10) == labels


@pytest.mark.parametrize("bad", ["12", "-1", "seven", ""])
def test_bad_labels_are_one_line_naming_the_flag(bad: str) -> None:
    with pytest.raises(ConfigError, match=rf"^--label: expected class labels in 0\.\.9, got '{bad}'$"):
        app._labels(["1", bad], 10)


@pytest.mark.parametrize("argv, labels, width, height", [
    (["--label", "3", "-n", "4"], [3], 2 * 30 + 2, 2 * 30 + 2),  # one label: a square grid, ⌈√4⌉ = 2 per row
    (["--label", "1,4", "-n", "3"], [1, 4], 3 * 30 + 2, 2 * 30 + 2),  # one row of 3 per label
])
def test_infer_writes_the_pipelines_images_as_one_grid(tiny_cgan_run: Path, tmp_path: Path, argv: list[str],
                                                       labels: list[int], width: int, height: int,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    model = load_model(tiny_cgan_run, device="cpu", with_discriminator=True)
    out = tmp_path / "grid.png"
    assert app.infer(model, args("infer", [*argv, "--seed", "5", "-o", str(out)])) == 0
    n = int(argv[3])
    imgs = DigitsPipeline(model)(labels, n, 5)
    want = image_grid(imgs, n if len(labels) > 1 else 2)
    got = np.asarray(Image.open(out).convert("RGB"))
    assert got.shape == (height, width, 3) and np.array_equal(got, want)
    assert capsys.readouterr().out.strip() == f"wrote {n * len(labels)} images (labels {','.join(map(str, labels))}) to {out}"


def test_infer_refuses_bad_requests(tiny_cgan_run: Path, tmp_path: Path) -> None:
    model = load_model(tiny_cgan_run, device="cpu")
    with pytest.raises(ConfigError, match=r"^-n: must be >= 1$"):
        app.infer(model, args("infer", ["-n", "0", "-o", str(tmp_path / "x.png")]))
    gan = LoadedModel(nets={"generator": DCGANGenerator(z_dim=8, base_channels=4).eval()}, task="digits",
                      recipe={"type": "gan"}, meta={}, config={}, path=tmp_path)
    with pytest.raises(ConfigError, match=r"^--label: this model is unconditional \(a GAN/DCGAN\): drop --label$"):
        app.infer(gan, args("infer", ["--label", "3", "-o", str(tmp_path / "x.png")]))
    assert not (tmp_path / "x.png").exists()


def test_evaluate_reports_the_metrics_and_what_they_were_computed_on(tiny_cgan_run: Path) -> None:
    model = load_model(tiny_cgan_run, device="cpu")
    metrics = app.evaluate(model, args("eval", ["--samples-per-class", "5", "--batch-size", "200"]))
    assert metrics["data"] == "embedded digits (scikit-learn)" and metrics["split"] == "test"
    assert metrics["num_test"] == len(MNISTDigits(None, "test")) and metrics["samples_per_class"] == 5
    assert metrics["real_accuracy"] > 0.9  # the classifier on real test digits
    assert 0 <= metrics["label_fidelity"] <= 1 and np.isfinite(metrics["frechet_distance"])
    assert sorted(k for k in metrics if k.startswith("label_fidelity/")) == sorted(f"label_fidelity/{c}" for c in range(10))
    assert metrics["label_fidelity"] == pytest.approx(np.mean([metrics[f"label_fidelity/{c}"] for c in range(10)]))
