"""The command-line tools as a user runs them: one-line errors, generation, evaluation."""
from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from conftest import ROOT, tool


def run(args: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, cwd=kw.pop("cwd", ROOT), timeout=600, **kw)


def one_line_error(p: subprocess.CompletedProcess) -> str:
    assert p.returncode != 0
    lines = [ln for ln in p.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    assert "Traceback" not in p.stderr
    return lines[0]


@pytest.mark.parametrize("args, words", [
    (["data.root=/no/such/folder"], "data.root: path does not exist: /no/such/folder"),
    (["train.bogus=1"], "train.bogus: unknown key; allowed:"),
    (["losses.adversarial.type=wasserstein"], "losses.adversarial.type: unknown loss 'wasserstein'; available:"),
    (["losses.adversarial.objective=wasserstein"], "losses.adversarial.objective: unknown GAN objective"),
])
def test_train_rejects_bad_config_in_one_line(args: list[str], words: str) -> None:
    line = one_line_error(run(tool("train") + ["tasks/acgan_mnist.yaml", *args]))
    assert words in line


def test_train_rejects_an_idx_file_with_a_wrong_magic_number(tmp_path: Path) -> None:
    for name in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte"):
        (tmp_path / name).write_bytes(struct.pack(">IIII", 0xDEADBEEF, 1, 28, 28) + bytes(784))
    for name in ("train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"):
        (tmp_path / name).write_bytes(struct.pack(">II", 0x801, 1) + bytes(1))
    p = run(tool("train") + ["tasks/acgan_mnist.yaml", f"data.root={tmp_path}", "logging.tracker=none"])
    line = one_line_error(p)
    assert "train-images-idx3-ubyte: wrong magic number 0xdeadbeef" in line
    p = run(tool("train") + ["tasks/acgan_mnist.yaml", f"data.root={tmp_path}", "logging.tracker=none", "--debug"])
    assert p.returncode != 0 and "Traceback" in p.stderr


def test_train_list_shows_every_registry() -> None:
    p = run(tool("train") + ["--list"])
    assert p.returncode == 0
    for word in ("generators:", "  dcgan(", "discriminators:", "losses:", "  adversarial(", "gan_objectives:",
                 "  maximum_likelihood(", "datasets:", "  mnist(", "recipes:", "  acgan("):
        assert word in p.stdout


def test_infer_generates_a_chosen_digit(tiny_acgan_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "grid.png"
    p = run(tool("infer") + ["--task", "cgan", "--checkpoint", str(tiny_acgan_run), "--label", "7", "-n", "16", "-o", str(out)])
    assert p.returncode == 0, p.stderr
    assert "labels 7" in p.stdout
    w, h = Image.open(out).size
    assert (w, h) == (4 * 30 + 2, 4 * 30 + 2)  # 4×4 grid of 28 px + 2 px padding
    out2 = tmp_path / "ranked.png"
    p = run(tool("infer") + ["--checkpoint", str(tiny_acgan_run / "export"), "--label", "1,4", "-n", "8",
                             "--rank-by-discriminator", "4", "-o", str(out2), "--seed", "3"])
    assert p.returncode == 0, p.stderr
    assert Image.open(out2).size == (8 * 30 + 2, 2 * 30 + 2)  # one row per label
    line = one_line_error(run(tool("infer") + ["--task", "cgan", "--checkpoint", str(tiny_acgan_run), "--label", "12"]))
    assert "--label: expected class labels in 0..9" in line
    line = one_line_error(run(tool("infer") + ["--task", "cgan", "--checkpoint", str(tmp_path / "nope")]))
    assert "no such run, export or checkpoint" in line


def test_infer_from_a_checkpoint_folder(tiny_acgan_run: Path, tmp_path: Path) -> None:
    ck = sorted((tiny_acgan_run / "checkpoints").iterdir())[-1]
    p = run(tool("infer") + ["--checkpoint", str(ck), "--label", "3", "-n", "4", "-o", str(tmp_path / "a.png")])
    assert p.returncode == 0, p.stderr


def test_infer_fast_flag_generates_the_same_digits(tiny_acgan_run: Path, tmp_path: Path) -> None:
    """--fast on a digit GAN (BN folded in the DCGAN, autocast): same seed, nearly the same grid."""
    import numpy as np

    grids = []
    for flag in ([], ["--fast"]):
        out = tmp_path / f"g{len(flag)}.png"
        p = run(tool("infer") + ["--checkpoint", str(tiny_acgan_run), "--label", "3", "-n", "4", "-o", str(out)] + flag)
        assert p.returncode == 0, p.stderr
        grids.append(np.asarray(Image.open(out)).astype(int))
    assert grids[0].shape == grids[1].shape
    assert np.abs(grids[0] - grids[1]).mean() < 2.0  # of 255 levels; bf16 rounding only


def test_eval_prints_one_json_object_last(tiny_acgan_run: Path) -> None:
    p = run(tool("eval") + ["--task", "acgan", "--checkpoint", str(tiny_acgan_run), "--json", "--samples-per-class", "20"])
    assert p.returncode == 0, p.stderr
    result = json.loads(p.stdout.strip().splitlines()[-1])
    for k in ("label_fidelity", "real_accuracy", "frechet_distance"):
        assert isinstance(result[k], float)
    assert 0 <= result["label_fidelity"] <= 1
    assert result["real_accuracy"] > 0.9  # the classifier on real held-out digits
    assert result["split"] == "test" and result["num_test"] == 360
