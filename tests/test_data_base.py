"""i2i.data.base: per-sample random generators (``split_index``) and ``data.on_error`` —
a corrupt file in a lazily-read data set stops the run naming it, or is skipped and logged
(``SkipUnreadable``)."""
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


# ----------------------------------------------------------------------------- split_index
def test_split_index_gives_the_item_its_own_generator() -> None:
    from i2i.data.base import split_index

    i, rng = split_index((5, 1234))
    assert i == 5 and rng.integers(10**9) == np.random.default_rng(1234).integers(10**9)  # the sampler's seed
    j, plain = split_index(7)
    assert j == 7 and plain.random() == np.random.default_rng(7).random()  # a plain index: fixed, by index
    k, _ = split_index((np.int64(3), np.int64(9)))
    assert type(k) is int and k == 3


# ----------------------------------------------------------------------------- SkipUnreadable alone
class Flaky(list):
    """Items are their index (with the seed when given); listed indices are unreadable."""

    def __init__(self, n: int, bad: set[int]):
        super().__init__(range(n))
        self.bad, self.tag = bad, "flaky"

    def __getitem__(self, index):  # noqa: ANN001, ANN204
        i = index[0] if isinstance(index, tuple) else index
        if i in self.bad:
            raise DataError(f"f{i}.png: truncated")
        return index


def test_skip_replaces_an_unreadable_item_by_the_next_readable_one(capsys: pytest.CaptureFixture) -> None:
    from i2i.data.base import SkipUnreadable

    ds = SkipUnreadable(Flaky(5, {1, 2, 4}))
    assert len(ds) == 5 and ds[0] == 0 and ds.tag == "flaky"  # attributes are the wrapped data set's
    assert ds[1] == 3 and ds[(2, 77)] == (3, 77)  # the next readable one, with the item's own seed
    assert ds[4] == 0  # wraps around the end
    assert ds.skipped == {1, 2, 4}
    err = capsys.readouterr().err.splitlines()
    assert err == ["warning: skipped f1.png: truncated (1 unreadable so far)",
                   "warning: skipped f2.png: truncated (2 unreadable so far)",
                   "warning: skipped f4.png: truncated (3 unreadable so far)"]  # each file once
    ds[1]
    assert capsys.readouterr().err == ""


def test_skip_gives_up_after_max_consecutive_and_survives_pickling() -> None:
    import pickle

    from i2i.data.base import SkipUnreadable

    ds = SkipUnreadable(Flaky(10, set(range(1, 9))), max_consecutive=3)
    with pytest.raises(DataError, match=r"^3 unreadable items in a row; last: f3.png: truncated$"):
        ds[1]
    copy = pickle.loads(pickle.dumps(ds))  # what a DataLoader worker receives
    assert copy[9] == 9 and copy.max_consecutive == 3 and copy.tag == "flaky"
