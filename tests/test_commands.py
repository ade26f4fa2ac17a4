"""The installed commands' bodies (i2i.commands), run as the entry points run them."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from i2i import commands


def cmd(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "i2i.commands", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def test_export_writes_onnx_checked_by_onnxruntime(tiny_acgan_run: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    r = cmd("export", str(tiny_acgan_run), "--format", "onnx", "-o", str(tmp_path / "onnx"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "onnx" / "generator.onnx").is_file()
    assert "inputs: z, label" in r.stdout and "checked with onnxruntime: max |ONNX - PyTorch|" in r.stdout


def test_export_writes_a_pretrained_folder(tiny_acgan_run: Path, tmp_path: Path) -> None:
    r = cmd("export", str(tiny_acgan_run), "--format", "pretrained", "-o", str(tmp_path / "p"), "--name", "digits-demo")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "p" / "config.json").read_text())["format"] == "i2i-pretrained"
    assert "\n# digits-demo\n" in (tmp_path / "p" / "README.md").read_text()


def test_export_errors_are_one_line(tmp_path: Path) -> None:
    r = cmd("export", str(tmp_path / "nothing"), "--format", "onnx")
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0
    assert "no such run, export or checkpoint directory" in r.stderr


def test_a_packaged_task_is_found_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # away from the checkout: the name resolves inside the package
    if not commands.TASKS_DIR.is_dir():
        pytest.skip("tasks are not packaged in this layout")
    assert Path(commands.find_config("acgan_mnist")) == commands.TASKS_DIR / "acgan_mnist.yaml"
    assert Path(commands.find_config("srgan.yaml")) == commands.TASKS_DIR / "srgan.yaml"
    (tmp_path / "mine.yaml").write_text("x: 1")
    assert commands.find_config("mine.yaml") == "mine.yaml"  # a file given by path wins
