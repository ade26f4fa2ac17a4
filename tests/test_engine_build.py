"""i2i.engine.build: the one place a run's recipe, networks, losses, datasets and starting
weights are built (the trainer, bench, eval, inference and the apps all call it)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import ROOT
from i2i import runs
from i2i.apps.common import dataset_from_config
from i2i.config import load_config
from i2i.data.base import SkipUnreadable
from i2i.engine.build import build_dataset, build_losses, build_models, build_recipe, build_run, load_init
from i2i.errors import CheckpointError, ConfigError
from i2i.registry import DATASETS, RECIPES


class Eager:
    """Decodes everything up front: takes ``on_error`` itself (like the SR folders)."""

    def __init__(self, root: str | None, split: str, size: int = 2, on_error: str = "raise"):
        self.root, self.split, self.size, self.on_error = root, split, size, on_error

    def __len__(self) -> int:
        return self.size


class Lazy:
    """Reads per item: ``on_error: skip`` needs the SkipUnreadable wrapper."""

    def __init__(self, root: str | None, split: str, size: int = 2):
        self.root, self.split, self.size = root, split, size

    def __len__(self) -> int:
        return self.size


@pytest.fixture
def fake_datasets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(DATASETS._table, "eager_test", Eager)
    monkeypatch.setitem(DATASETS._table, "lazy_test", Lazy)


# ----------------------------------------------------------------------------- datasets
@pytest.mark.parametrize("on_error", ["raise", "skip"])
def test_on_error_goes_to_datasets_that_take_it_and_a_wrapper_for_the_others(fake_datasets: None, on_error: str) -> None:
    eager = build_dataset({"type": "eager_test", "on_error": on_error, "size": 3}, "train")
    assert type(eager) is Eager and eager.on_error == on_error and eager.size == 3 and eager.split == "train"
    lazy = build_dataset({"type": "lazy_test", "on_error": on_error, "size": 3}, "val")
    if on_error == "skip":
        assert type(lazy) is SkipUnreadable and type(lazy.dataset) is Lazy and lazy.size == 3 and lazy.split == "val"
    else:
        assert type(lazy) is Lazy
    # the apps rebuild a run's dataset from its saved config: the same answer
    for kind, want in (("eager_test", Eager), ("lazy_test", SkipUnreadable if on_error == "skip" else Lazy)):
        got = dataset_from_config({"data": {"type": kind, "on_error": on_error, "size": 3}}, "test")
        assert type(got) is want and got.split == "test" and len(got) == 3


def test_the_real_digits_follow_the_same_rule() -> None:
    """MNISTDigits reads lazily (no ``on_error`` argument): wrapped under ``skip``, as in training."""
    wrapped = build_dataset({"type": "mnist", "on_error": "skip", "limit": 5}, "train")
    assert type(wrapped) is SkipUnreadable and len(wrapped) == 5 and wrapped[0]["image"].shape == (1, 28, 28)
    assert type(build_dataset({"type": "mnist", "limit": 5}, "train")).__name__ == "MNISTDigits"


def test_root_and_keywords_can_be_replaced_and_a_missing_root_names_its_key(fake_datasets: None, tmp_path: Path) -> None:
    data = {"type": "lazy_test", "root": str(tmp_path), "size": 3}
    ds = build_dataset(data, "train", size=7)
    assert ds.size == 7 and ds.root == str(tmp_path.resolve())
    other = tmp_path / "other"
    other.mkdir()
    assert build_dataset(data, "train", root=str(other)).root == str(other)
    with pytest.raises(ConfigError, match=rf"^--data: path does not exist: {tmp_path / 'nope'}$"):
        build_dataset(data, "train", root=str(tmp_path / "nope"), root_key="--data")
    with pytest.raises(ConfigError, match=rf"^data.root: path does not exist: {tmp_path / 'gone'}$"):
        build_dataset({**data, "root": str(tmp_path / "gone")}, "train")
    with pytest.raises(ConfigError, match=r"^--data: path does not exist"):  # the apps' flag
        dataset_from_config({"data": data}, "val", str(tmp_path / "nope"))
    assert build_dataset({"type": "lazy_test"}, "train").root is None  # a dataset with a built-in default


def test_a_missing_photo_corpus_says_how_to_build_it(fake_datasets: None, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))   # ~ -> an empty home: no corpus there
    data = {"type": "lazy_test", "root": "~/.cache/i2i/photos/val"}
    with pytest.raises(ConfigError) as e:
        build_dataset(data, "val", root_key="--data")
    assert str(e.value) == ("--data: path does not exist: ~/.cache/i2i/photos/val (the photo corpus: build it with "
                            "`python datasets/build_photo_corpus.py --out ~/.cache/i2i/photos`, see datasets/photos.md)")
    with pytest.raises(ConfigError, match=r"^--data: path does not exist: [^(]*$"):   # other paths: no hint
        build_dataset({**data, "root": "~/photos"}, "val", root_key="--data")


def test_an_unknown_dataset_type_is_one_line(fake_datasets: None) -> None:
    with pytest.raises(ConfigError, match=r"^data.type: unknown dataset 'nope'; available: .*lazy_test"):
        build_dataset({"type": "nope"}, "train")


# ----------------------------------------------------------------------------- recipe, losses, networks
def test_losses_are_built_slot_by_slot_and_skipped_on_request() -> None:
    specs = {"adversarial": {"type": "adversarial", "objective": "hinge"}, "pixel": {"type": "l1", "weight": 100.0}}
    built = build_losses(specs)
    assert list(built) == ["adversarial", "pixel"] and type(built["pixel"]).__name__ == "L1Loss"
    assert list(build_losses(specs, skip=("pixel",))) == ["adversarial"]
    recipe = build_recipe({"type": "cgan", "num_classes": 10}, {"adversarial": {"type": "adversarial"}})
    assert type(recipe) is RECIPES.get("cgan") and list(recipe.losses) == ["adversarial"] and recipe.num_classes == 10


def test_models_come_in_the_recipes_declared_slot_order() -> None:
    tiny_g = {"type": "resnet_6blocks", "in_channels": 1, "out_channels": 1, "base_channels": 4}
    tiny_d = {"type": "patchgan", "in_channels": 1, "n_layers": 1, "base_channels": 4}
    models = {"discriminator_b": tiny_d, "generator_ba": tiny_g, "discriminator_a": tiny_d, "generator_ab": tiny_g}
    built = build_models({"type": "cyclegan"}, models)
    assert list(built) == ["generator_ab", "generator_ba", "discriminator_a", "discriminator_b"]
    assert list(built) == list(RECIPES.get("cyclegan").model_slots)
    assert built["generator_ab"] is not built["generator_ba"]
    # an optional slot left out of models: is simply absent
    sr = build_models({"type": "sr"}, {"generator": {"type": "srresnet", "width": 4, "num_blocks": 1}})
    assert list(sr) == ["generator"]


def test_load_init_starts_a_slot_from_saved_weights(tmp_path: Path) -> None:
    spec = {"type": "dcgan", "z_dim": 8, "base_channels": 4}
    torch.manual_seed(1)
    source = build_models({"type": "gan"}, {"generator": spec})["generator"]
    runs.write_export(tmp_path / "export", {"generator": source.state_dict()}, {"format": "i2i-export"})
    torch.manual_seed(2)
    models = build_models({"type": "gan"}, {"generator": spec, "discriminator": {"type": "dcgan", "base_channels": 4}})
    d_before = {k: v.clone() for k, v in models["discriminator"].state_dict().items()}
    assert not torch.equal(models["generator"].project[0].weight, source.project[0].weight)
    load_init(models, {"generator": str(tmp_path / "export")})
    assert all(torch.equal(v, source.state_dict()[k]) for k, v in models["generator"].state_dict().items())
    assert all(torch.equal(v, d_before[k]) for k, v in models["discriminator"].state_dict().items())  # untouched
    wide = build_models({"type": "gan"}, {"generator": {**spec, "base_channels": 8}})
    with pytest.raises(CheckpointError, match=rf"^train.init.generator: {tmp_path / 'export'}: weights do not fit "
                                              r"DCGANGenerator: shapes \(saved vs model\)"):
        load_init(wide, {"generator": str(tmp_path / "export")})


# ----------------------------------------------------------------------------- the whole run
FAST = ["models.generator.base_channels=4", "models.discriminator.base_channels=4", "models.generator.z_dim=8",
        "data.limit=40"]


def test_build_run_gives_seeded_networks_datasets_and_a_set_up_recipe() -> None:
    cfg = load_config(ROOT / "tasks/cgan_mnist.yaml", FAST)
    torch.manual_seed(0)
    built = build_run(cfg)
    assert list(built.models) == ["generator", "discriminator"] and built.recipe.z_dim == 8  # setup() ran
    assert len(built.train_set) == 40 and built.val_set.split == cfg.data.val_split
    assert built.recipe.train_dataset is built.train_set  # the digits evaluation trains its classifier on it
    torch.manual_seed(0)
    again = build_run(cfg, datasets=False)
    assert again.train_set is None and again.val_set is None
    for slot, net in built.models.items():  # same seed, same initial weights
        assert all(torch.equal(v, again.models[slot].state_dict()[k]) for k, v in net.state_dict().items())
    assert isinstance(again.models["generator"], nn.Module) and again.recipe.train_dataset is None


def test_build_run_loads_train_init_unless_told_not_to(tmp_path: Path) -> None:
    cfg = load_config(ROOT / "tasks/cgan_mnist.yaml", FAST)
    torch.manual_seed(3)
    source = build_run(cfg, datasets=False).models["generator"]
    runs.write_export(tmp_path / "export", {"generator": source.state_dict()}, {"format": "i2i-export"})
    cfg = load_config(ROOT / "tasks/cgan_mnist.yaml", FAST + [f"train.init={{generator: {tmp_path / 'export'}}}"])
    torch.manual_seed(4)
    started = build_run(cfg, datasets=False).models["generator"]
    assert torch.equal(started.project[0].weight, source.project[0].weight)
    torch.manual_seed(4)
    fresh = build_run(cfg, datasets=False, init=False).models["generator"]
    assert not torch.equal(fresh.project[0].weight, source.project[0].weight)
