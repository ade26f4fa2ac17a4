"""``data.on_error``: a corrupt file in a lazily-read data set stops the run naming it, or is skipped and logged."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT
from i2i.config import load_config
from i2i.data.io import save_image
from i2i.engine.tracking import read_metrics
from i2i.engine.trainer import Trainer
from i2i.errors import DataError

SMALL = [
    "models.generator={type: unet, in_channels: 3, out_channels: 3, num_downs: 4, base_channels: 8, max_channels: 32}",
    "models.discriminator.base_channels=8", "models.discriminator.n_layers=1", "data.load_size=36", "data.crop_size=32",
    "data.batch_size=2", "data.num_workers=0", "train.max_steps=4", "train.log_every=1", "train.ckpt_every=0", "eval.every=0",
    "eval.at_end=false", "logging.tracker=none", "logging.sample_every=0", "logging.progress=false",
]


def make_aligned(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("val", 1)):
        for i in range(n):
            save_image(root / split / f"{i}.png", rng.integers(0, 256, (40, 80, 3), dtype=np.uint8))
    bad = root / "train" / "2.png"
    bad.write_bytes(bad.read_bytes()[:60])  # truncated mid-file
    return bad


def test_raise_names_the_file(tmp_path: Path) -> None:
    bad = make_aligned(tmp_path / "data")
    cfg = load_config(ROOT / "tasks/pix2pix_aligned.yaml", [f"data.root={tmp_path / 'data'}", *SMALL])
    with pytest.raises(DataError, match=str(bad)):
        Trainer(cfg, output_dir=tmp_path / "run").fit()


def test_skip_logs_each_file_and_trains_on(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = make_aligned(tmp_path / "data")
    cfg = load_config(ROOT / "tasks/pix2pix_aligned.yaml",
                      [f"data.root={tmp_path / 'data'}", "data.on_error=skip", *SMALL])
    t = Trainer(cfg, output_dir=tmp_path / "run")
    t.fit()
    err = capsys.readouterr().err
    assert f"warning: skipped {bad}" in err and "(1 unreadable so far)" in err
    assert err.count(f"skipped {bad}") == 1  # logged once, however often it is drawn
    assert [r["step"] for r in read_metrics(tmp_path / "run") if "g/total" in r] == [1, 2, 3, 4]
    assert t.train_ds.skipped == {2}  # 2.png, third in sorted order
    assert t.train_ds.split == "train" and t.train_ds.crop_size == 32  # the wrapper forwards attributes


def test_all_unreadable_fails_clearly(tmp_path: Path) -> None:
    from i2i.data.base import SkipUnreadable

    class Broken(list):
        def __getitem__(self, i):  # noqa: ANN001, ANN204
            raise DataError(f"f{i}.png: not a readable image")

    with pytest.raises(DataError, match=r"3 unreadable items in a row; last: f\(\d, 7\).png"):
        SkipUnreadable(Broken([0, 1, 2]))[(0, 7)]
