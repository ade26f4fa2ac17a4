"""Nothing lost, round three (issue 23): exports that never delete what they did not write,
bounded loading of hostile model folders, every write error as ``<path>: <reason>`` with exit 2,
validated config fields, and the two most common config slips."""
from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from i2i import hub, runs
from i2i.cli import run as cli_run
from i2i.commands import export_main, infer_main, train_main
from i2i.config import load_config
from i2i.errors import CheckpointError, ConfigError
from i2i.inference import SHIPPED_MODELS, load_model

ROOT = Path(__file__).resolve().parents[2]
TINY = ["logging.tracker=none", "logging.progress=false", "eval.every=0", "eval.at_end=false", "logging.sample_every=0",
        "models.generator.base_channels=8", "models.discriminator.base_channels=8", "data.batch_size=8"]


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes: what "nothing lost" compares."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def run(tiny_cgan_run: Path, tmp_path: Path) -> Path:
    out = tmp_path / "ex" / "run1"
    shutil.copytree(tiny_cgan_run, out)
    return out


# ----------------------------------------------------------------------------- 1-2: exports never delete
@pytest.mark.parametrize("target", ["run", "parent", "user", "file"])
def test_a_pretrained_export_refuses_a_folder_it_did_not_write(run: Path, target: str,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    user = run.parent / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("my notes")
    (run.parent / "a_file").write_text("x")
    out = {"run": run, "parent": run.parent, "user": user, "file": run.parent / "a_file"}[target]
    before = tree(run.parent)
    code = cli_run(export_main, [str(run), "--format", "pretrained", "-o", str(out)])
    assert code == 2
    line = one_error(capsys)
    assert line.startswith(f"error: {out}: ") and "-o must name a new or empty folder" in line, line
    assert tree(run.parent) == before  # nothing written, nothing deleted


def test_an_onnx_export_refuses_an_existing_file_and_the_run(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (run.parent / "a_file").write_text("x")
    before = tree(run.parent)
    for out in (run.parent / "a_file", run):
        assert cli_run(export_main, [str(run), "--format", "onnx", "-o", str(out)]) == 2
        assert one_error(capsys).startswith(f"error: {out}: ")
    assert tree(run.parent) == before


def test_an_earlier_export_of_the_same_kind_is_replaced(run: Path, tmp_path: Path) -> None:
    pre, onnx = tmp_path / "pre", tmp_path / "onnx"
    for _ in range(2):  # the second time over the first one's output
        assert cli_run(export_main, [str(run), "--format", "pretrained", "-o", str(pre)]) == 0
        assert cli_run(export_main, [str(run), "--format", "onnx", "-o", str(onnx)]) == 0
    assert runs.is_pretrained_folder(pre) and not pre.with_name("pre.old").exists()
    assert sorted(p.name for p in onnx.iterdir()) == ["generator.json", "generator.onnx"]
    (pre / "extra.txt").write_text("a user's file added later")  # no longer only ours: refused from now on
    with pytest.raises(CheckpointError, match="holds other files"):
        hub.save_pretrained(run, pre)
    assert (pre / "extra.txt").read_text() == "a user's file added later"


def test_a_pretrained_export_killed_mid_swap_keeps_the_previous_one(run: Path, tmp_path: Path) -> None:
    pre = tmp_path / "ex" / "pre"
    hub.save_pretrained(run, pre)
    want = load_model(pre, device="cpu").generator.state_dict()
    env = {**os.environ, "I2I_FAULT_SLOW_EXPORT_SWAP": "30", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "i2i.commands", "export", str(run), "--format", "pretrained",
                             "-o", str(pre)], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (tmp_path / "ex" / "pre.old").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (tmp_path / "ex" / "pre.old").is_dir() and not pre.exists()  # killed between the two renames
    os.chdir(tmp_path)  # `ex/pre`, a relative path with one slash: a local path, never a repo id
    try:
        pipe = hub.from_pretrained("ex/pre", device="cpu")
        got = pipe.model.generator.state_dict()
        assert all(torch.equal(got[k], v) for k, v in want.items())
        with pytest.raises(CheckpointError, match=r"^ex/nothing: no such folder \(read as a local path"):
            hub.resolve_pretrained("ex/nothing")
    finally:
        os.chdir(ROOT)
    hub.save_pretrained(run, pre)  # the next export heals it
    assert runs.is_pretrained_folder(pre) and not (tmp_path / "ex" / "pre.old").exists()


# ----------------------------------------------------------------------------- 3-4, 6: hostile model folders
def hostile(tmp_path: Path, change: object) -> Path:
    folder = tmp_path / "m"
    shutil.copytree(SHIPPED_MODELS["srresnet_x4_small"], folder)
    info = json.loads((folder / "config.json").read_text())
    change(info)  # type: ignore[operator]
    (folder / "config.json").write_text(json.dumps(info))
    return folder


@pytest.mark.parametrize("change, message", [
    (lambda i: i["models"]["generator"].update(num_blocks=1_000_000, width=4), "models.generator: the network would have "
                                                                               "more than 20,000 layers"),
    (lambda i: i["models"]["generator"].update(width=100_000), "models.generator: the network would have more than "
                                                               "2,000,000,000 parameters"),
    (lambda i: i["models"]["generator"].update(width=2e19), "models.generator.width: expected int, got 2e+19"),
    (lambda i: i.update(models={}), "config.json: models: missing generator"),
    (lambda i: i.update(recipe={}), "config.json: recipe: expected a {type: <recipe name>} mapping, got {}"),
    (lambda i: i.update(recipe={"type": "nope"}), "config.json: recipe.type: unknown recipe 'nope'"),
    (lambda i: i.update(step="abc"), "config.json: step: expected a whole number >= 0, got 'abc'"),
    (lambda i: i.update(step=1e999), "config.json: step: expected a whole number >= 0, got inf"),
    (lambda i: i.update(task="seg"), "config.json: task: recipe 'sr' is for task 'sr', the file says 'seg'"),
    (lambda i: i["meta"].update(scale=0), "config.json: meta.scale: expected a whole number from 1 to 16, got 0"),
    (lambda i: i["meta"].update(value_range=[1, 0]), "config.json: meta.value_range: expected [low, high]"),
    (lambda i: i.update(meta=[]), "config.json: meta: expected a mapping, got []"),
])
def test_hostile_config_fields_are_one_line_naming_the_key(tmp_path: Path, change: object, message: str,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    folder = hostile(tmp_path, change)
    with pytest.raises(CheckpointError) as e:
        load_model(folder, device="cpu")
    assert str(e.value).startswith(str(folder)) and message in str(e.value) and "\n" not in str(e.value), str(e.value)
    with pytest.raises(CheckpointError, match="^" + str(folder)):  # the API's other door
        hub.from_pretrained(folder, device="cpu")
    assert cli_run(infer_main, ["--task", "sr", "--checkpoint", str(folder), str(tmp_path / "x.png")]) == 2
    assert message in one_error(capsys)


def test_a_huge_config_json_is_refused_before_it_is_read(tmp_path: Path) -> None:
    folder = hostile(tmp_path, lambda i: None)
    with open(folder / "config.json", "r+b") as f:  # a 3 GB sparse file: no disk space, and no memory if never read
        f.truncate(3 * 2**30)
    with pytest.raises(CheckpointError, match=r"config.json: 3,221,225,472 bytes is too large for a config file"):
        load_model(folder, device="cpu")
    big = tmp_path / "big.yaml"
    with open(big, "wb") as f:
        f.truncate(3 * 2**30)
    with pytest.raises(ConfigError, match=r"big.yaml: 3,221,225,472 bytes is too large for a config file"):
        load_config(big)


# ----------------------------------------------------------------------------- 5, 8, 9: write errors
def test_a_file_size_limit_during_export_is_one_line_and_the_earlier_export_survives(run: Path, tmp_path: Path) -> None:
    """``ulimit -f``: safetensors' own writer fails (SafetensorError … os error 27)."""
    pre = tmp_path / "pre"
    hub.save_pretrained(run, pre)
    before = tree(pre)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # Python ignores SIGXFSZ: writes get EFBIG

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "i2i.commands", "export", str(run), "--format", "pretrained", "-o", str(pre)],
                       env=env, capture_output=True, text=True, preexec_fn=limit, timeout=300)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().startswith(f"error: {tmp_path}/pre.tmp/") and r.stderr.count("\n") == 1, r.stderr
    assert "model.safetensors: cannot write: file too large" in r.stderr
    assert tree(pre) == before and not (tmp_path / "pre.tmp").exists()


def test_write_errors_of_every_writer_name_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from safetensors import SafetensorError

    from i2i.errors import write_error

    cases = [(OSError(errno.ENOSPC, "No space left on device"), "no space left on the device (disk full)"),
             (OSError(errno.EROFS, "Read-only file system"), "Read-only file system"),
             (OSError(errno.EFBIG, "File too large"), "file too large"),
             (SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)"),
              "no space left on the device (disk full)"),
             (RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 64 vs 0"), "no space left")]
    for exc, reason in cases:
        err = write_error(tmp_path / "f", exc)
        assert err is not None and str(err).startswith(f"{tmp_path / 'f'}: cannot write: {reason}"), (exc, err)
    assert write_error(tmp_path, ValueError("not a write")) is None

    def full(*a: object, **k: object) -> None:
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(runs, "save_file", full)  # every safetensors writer goes through runs.save_tensors
    with pytest.raises(CheckpointError, match=r"x.safetensors: cannot write: no space left on the device \(disk full\)$"):
        runs.save_tensors({"w": torch.ones(2)}, tmp_path / "x.safetensors")


def test_an_unwritable_output_is_one_line_with_exit_2(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A path through a file (ENOTDIR: real, no privileges needed) and a read-only folder (EROFS, simulated)."""
    import errno
    import tempfile

    import numpy as np
    from PIL import Image

    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    photo = tmp_path / "p.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(photo)
    cases = [(train_main, ["cgan_mnist", *TINY, "train.max_steps=1", "--output-dir", str(blocker / "run")]),
             (export_main, [str(run), "--format", "pretrained", "-o", str(blocker / "pre")]),
             (export_main, [str(run), "--format", "onnx", "-o", str(blocker / "onnx")]),
             (infer_main, ["--task", "sr", "--model", "srresnet_x4_small", str(photo), "-o", str(blocker / "out") + "/"])]
    for main, argv in cases:
        assert cli_run(main, argv) == 2, argv
        line = one_error(capsys)
        assert line.startswith(f"error: {blocker}") and "Not a directory" in line, line

    def read_only(*a: object, **k: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / "ro" / ".i2i-probe-x"))

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", read_only)
    assert cli_run(infer_main, ["--task", "sr", "--model", "srresnet_x4_small", str(photo), str(photo),
                                "-o", str(tmp_path / "ro") + "/"]) == 2
    assert one_error(capsys) == f"error: {tmp_path / 'ro'}: cannot write: Read-only file system"
    assert not list((tmp_path / "ro").glob("*.png"))


# ----------------------------------------------------------------------------- 7, 10: config values and slips
@pytest.mark.parametrize("override, message", [
    ("optim.generator.lr=-1.0", "optim.generator.lr: must be a finite number >= 0, got -1.0"),
    ("optim.discriminator.betas=[0.5, 1.5]", "optim.discriminator.betas: each beta must be in [0, 1), got 1.5 at index 1"),
    ("optim.generator.weight_decay=.nan", "optim.generator.weight_decay: expected a finite number, got nan"),
    ("models.generator.base_channels=100000", "models.generator: the network would have more than 2,000,000,000 parameters"),
    ("trian.max_steps=3", "trian: unknown key (did you mean 'train.max_steps'?); allowed: recipe,"),
    ("train.max_stepz=3", "train.max_stepz: unknown key (did you mean 'max_steps'?)"),
])
def test_training_values_out_of_range_name_the_key(override: str, message: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert cli_run(train_main, ["cgan_mnist", *TINY, override, "--output-dir", str(out)]) == 2
    assert one_error(capsys).startswith(f"error: {message}")
    assert not out.exists()  # refused before anything was made


def test_scientific_notation_without_a_dot_is_a_float(tmp_path: Path) -> None:
    cfg = load_config(ROOT / "tasks/cgan_mnist.yaml", ["optim.generator.lr=1e-4", "optim.discriminator.lr=2E-4"])
    assert cfg.optim["generator"]["lr"] == 1e-4 and isinstance(cfg.optim["generator"]["lr"], float)
    assert cfg.optim["discriminator"]["lr"] == 2e-4
    text = (ROOT / "tasks/cgan_mnist.yaml").read_text() + "\ntrain:\n  grad_clip: 1e1\n  max_steps: 10\n"
    (tmp_path / "c.yaml").write_text(text)
    cfg = load_config(tmp_path / "c.yaml")
    assert cfg.train.grad_clip == 10.0 and cfg.train.max_steps == 10


# ----------------------------------------------------------------------------- fuzz: hostile folder fields
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)
FIELDS = [("recipe",), ("recipe", "type"), ("models",), ("models", "generator"), ("models", "generator", "width"),
          ("models", "generator", "num_blocks"), ("models", "generator", "scale"), ("task",), ("step",), ("meta",),
          ("meta", "scale"), ("meta", "value_range"), ("meta", "multiple"), ("config",), ("config", "data")]


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(FIELDS), value=json_values)
def test_fuzzed_folder_fields_load_or_fail_in_one_line(tmp_path_factory: pytest.TempPathFactory, field: tuple[str, ...],
                                                        value: object) -> None:
    """Any JSON value in any field a loader reads: a working model or one CheckpointError line naming the folder."""
    def change(info: dict) -> None:
        node = info
        for k in field[:-1]:
            node = node[k]
        node[field[-1]] = value

    folder = hostile(tmp_path_factory.mktemp("fuzz"), change)
    try:
        model = load_model(folder, device="cpu")
    except CheckpointError as e:
        assert str(e).startswith(str(folder)) and "\n" not in str(e) and len(str(e)) < 1000, str(e)[:2000]
        return
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        y = model.generator(x)
    assert y.shape[0] == 1 and torch.isfinite(y).all()
