"""i2i.engine.tracking: W&B mode choice, metrics.jsonl, one host read for the logged values,
the plots, and the W&B / TensorBoard trackers in a real run."""
from __future__ import annotations

import glob
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import ROOT
from i2i.config import load_config
from i2i.engine.tracking import MetricsLog, log_images, plot_curves, read_metrics, to_floats, wandb_mode
from i2i.engine.trainer import Trainer

FAST = ["logging.tracker=none", "logging.progress=false", "eval.every=0", "eval.at_end=false", "logging.sample_every=0",
        "models.generator.base_channels=16", "models.discriminator.base_channels=16", "data.batch_size=16"]


# ----------------------------------------------------------------------------- wandb_mode
def test_wandb_mode_is_offline_unless_the_user_set_wandb_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("WANDB_MODE", "WANDB_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert wandb_mode("auto") == "offline"
    assert wandb_mode("online") == "online" and wandb_mode("disabled") == "disabled"  # the config decides
    (tmp_path / ".netrc").write_text("machine github.com login me password x\n")
    assert wandb_mode("auto") == "offline"
    (tmp_path / ".netrc").write_text("machine api.wandb.ai\n  login user\n  password abc\n")  # `wandb login`
    assert wandb_mode("auto") == "online"
    (tmp_path / ".netrc").unlink()
    monkeypatch.setenv("WANDB_API_KEY", "abc")
    assert wandb_mode("auto") == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")  # an explicit WANDB_MODE wins over a key
    assert wandb_mode("auto") == "disabled"


# ----------------------------------------------------------------------------- values and metrics.jsonl
def test_to_floats_reads_all_tensors_back_in_one_host_copy() -> None:
    from torch.overrides import TorchFunctionMode

    reads: list[str] = []

    class Count(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
            if getattr(func, "__name__", "") in ("item", "tolist", "__float__", "cpu"):
                reads.append(func.__name__)
            return func(*args, **(kwargs or {}))

    values = [torch.tensor(1.5), 2, torch.tensor([[3.0]]), 0.25, torch.tensor(4, dtype=torch.int64),
              torch.tensor(0.5, dtype=torch.bfloat16, requires_grad=True)]
    with Count():
        out = to_floats(values)
    assert out == [1.5, 2.0, 3.0, 0.25, 4.0, 0.5] and all(type(v) is float for v in out)
    assert reads == ["tolist"]
    assert to_floats([1, 2.5]) == [1.0, 2.5] and to_floats([]) == []


def test_metrics_log_appends_rows_and_a_resume_drops_the_later_ones(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    log = MetricsLog(path)
    for step in range(1, 6):
        log.write(step, {"g/total": step / 2, "d/loss": float("nan") if step == 2 else 1.0})
    rows = read_metrics(path)
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5] and rows[3]["g/total"] == 2.0
    assert rows[1]["d/loss"] == "nan"  # JSON has no NaN: non-finite values are written as strings
    assert json.loads(path.read_text().splitlines()[0]) == {"step": 1, "g/total": 0.5, "d/loss": 1.0}
    resumed = MetricsLog(path, resume_step=3)  # a resume from step 3: rows after it are history no more
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2, 3]  # a run directory works too
    resumed.write(4, {"g/total": 9.0})
    assert [(r["step"], r["g/total"]) for r in read_metrics(path)][-2:] == [(3, 1.5), (4, 9.0)]
    MetricsLog(tmp_path / "new.jsonl", resume_step=3)  # nothing to trim: nothing written
    assert not (tmp_path / "new.jsonl").exists()


# ----------------------------------------------------------------------------- plots and images
def test_plot_curves_draws_the_loss_terms_and_the_d_scores(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path / "metrics.jsonl")
    for step in range(1, 11):
        log.write(step, {"g/total": 1 / step, "g/adv": 0.5 / step, "d/loss": 1.0, "d/real": 0.7, "d/fake": 0.3})
    log.write(11, {"eval/psnr": 20.0})  # an evaluation row: not a loss row
    written = plot_curves(tmp_path)
    assert written == [tmp_path / "plots" / "loss_curves.png", tmp_path / "plots" / "d_scores.png"]
    assert Image.open(written[0]).size == (1200, 400) and Image.open(written[1]).size == (600, 400)  # figsize × dpi 100
    gray = np.asarray(Image.open(written[0]).convert("L"))
    assert gray.min() < 100 and gray.max() == 255  # something is drawn on white


def test_plot_curves_without_d_scores_or_rows(tmp_path: Path) -> None:
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"step": 1, "g/total": 1.0}) + "\n")
    assert plot_curves(tmp_path) == [tmp_path / "plots" / "loss_curves.png"]
    other = tmp_path / "other"
    other.mkdir()
    (other / "metrics.jsonl").write_text(json.dumps({"step": 1, "eval/psnr": 1.0}) + "\n")
    assert plot_curves(other) == [] and not (other / "plots").exists()


def test_log_images_sends_a_clamped_grid_to_tensorboard_and_nothing_without_a_tracker() -> None:
    calls: list[tuple] = []

    class Writer:
        def add_image(self, name: str, grid: torch.Tensor, global_step: int) -> None:
            calls.append((name, grid, global_step))

    class Acc:
        def get_tracker(self, name: str, unwrap: bool = False) -> Writer:
            assert (name, unwrap) == ("tensorboard", True)
            return Writer()

    grid = torch.tensor([-1.0, 0.25, 2.0]).view(3, 1, 1)
    log_images(Acc(), "tensorboard", "samples", grid, 7)
    assert len(calls) == 1 and calls[0][0] == "samples" and calls[0][2] == 7
    assert calls[0][1].flatten().tolist() == [0.0, 0.25, 1.0]
    log_images(object(), "none", "samples", grid, 8)  # no tracker: the accelerator is not even asked
    assert len(calls) == 1


# ----------------------------------------------------------------------------- the trackers in a run
def test_wandb_offline_run_holds_the_logged_values(tmp_path: Path) -> None:
    pytest.importorskip("wandb")
    cfg = load_config(ROOT / "tasks/acgan_mnist.yaml",
                      [f for f in FAST if f != "logging.tracker=none"] + ["train.max_steps=4", "train.log_every=2",
                                                                           "logging.tracker=wandb", "logging.sample_every=2"])
    Trainer(cfg, output_dir=tmp_path).fit()
    runs = glob.glob(str(tmp_path / "wandb" / "offline-run-*" / "run-*.wandb"))
    assert len(runs) == 1
    # W&B's service process writes its record log asynchronously: give it a moment after finish()
    import time

    deadline = time.time() + 60
    while True:
        history = [h for h in read_wandb_history(Path(runs[0])) if "g/total" in h]
        if len(history) >= 2 or time.time() > deadline:
            break
        time.sleep(0.5)
    logged = {r["step"]: r for r in read_metrics(tmp_path) if "g/total" in r}
    assert [h["_step"] for h in history] == [2, 4]
    for h in history:
        assert h["g/total"] == pytest.approx(logged[h["_step"]]["g/total"])
        assert h["d/real"] == pytest.approx(logged[h["_step"]]["d/real"])
    assert glob.glob(str(tmp_path / "wandb" / "offline-run-*" / "files" / "media" / "images" / "samples_*.png"))


def read_wandb_history(path: Path) -> list[dict]:
    """Parse W&B's offline record log (LevelDB-style blocks of protobuf ``Record``s)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, pending, out = 7, 32768, b"", []
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == 1:
            full = chunk
        elif kind == 2:
            pending = chunk
            continue
        elif kind == 3:
            pending += chunk
            continue
        elif kind == 4:
            full = pending + chunk
        else:
            continue
        rec = pb.Record()
        rec.ParseFromString(full)
        if rec.WhichOneof("record_type") == "history":
            out.append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in rec.history.item})
    return out


def test_tensorboard_tracker_writes_event_files(tmp_path: Path) -> None:
    cfg = load_config(ROOT / "tasks/cgan_mnist.yaml",
                      [f for f in FAST if f != "logging.tracker=none"] + ["train.max_steps=2", "train.log_every=1",
                                                                           "logging.tracker=tensorboard"])
    Trainer(cfg, output_dir=tmp_path).fit()
    assert list(tmp_path.rglob("events.out.tfevents.*"))
