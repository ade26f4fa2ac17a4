"""Config loading: typed sections, dotted overrides, and one-line errors naming the key."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from i2i.config import apply_overrides, load_config, parse_override
from i2i.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
TASKS = sorted(p for p in (ROOT / "tasks").glob("*.yaml") if p.stem != "srgan")


@pytest.mark.parametrize("path", TASKS, ids=[p.stem for p in TASKS])
def test_every_shipped_recipe_validates(path: Path) -> None:
    from i2i.registry import RECIPES

    cfg = load_config(path)
    recipe = RECIPES.get(cfg.recipe["type"])
    assert {s for s in recipe.model_slots if s not in recipe.optional_models} <= set(cfg.models)


def test_overrides_set_nested_keys_with_yaml_types() -> None:
    assert parse_override("train.max_steps=200") == (["train", "max_steps"], 200)
    assert parse_override("data.root=/x/y") == (["data", "root"], "/x/y")
    assert parse_override("optim.generator.betas=[0.5, 0.9]") == (["optim", "generator", "betas"], [0.5, 0.9])
    assert parse_override("train.init={}") == (["train", "init"], {})
    raw = apply_overrides({"train": {"max_steps": 5}}, ["train.max_steps=7", "eval.every=3"])
    assert raw == {"train": {"max_steps": 7}, "eval": {"every": 3}}


def test_overrides_reach_the_typed_config() -> None:
    cfg = load_config(ROOT / "tasks/acgan_mnist.yaml", ["train.max_steps=200", "models.generator.z_dim=32",
                                                        "losses.adversarial.objective=hinge"])
    assert cfg.train.max_steps == 200
    assert cfg.models["generator"]["z_dim"] == 32
    assert cfg.losses["adversarial"]["objective"] == "hinge"


@pytest.mark.parametrize("override, key, words", [
    (["train.max_stepz=3"], "train.max_stepz", "allowed: max_steps"),
    (["train.max_steps=abc"], "train.max_steps", "expected int"),
    (["train.max_steps=true"], "train.max_steps", "expected int"),
    (["train.grad_clip=[1]"], "train.grad_clip", "expected float | null"),
    (["losses.adversarial.type=nope"], "losses.adversarial.type", "unknown loss 'nope'"),
    (["losses.adversarial.objective=nope"], "losses.adversarial.objective", "unknown GAN objective 'nope'"),
    (["models.generator.type=nope"], "models.generator.type", "unknown generator 'nope'; available:"),
    (["models.generator.zdim=3"], "models.generator.zdim", "unknown key (did you mean 'z_dim'?); allowed:"),
    (["models.generator.z_dim=3.5"], "models.generator.z_dim", "expected int"),
    (["data.root=/definitely/not/here"], "data.root", "path does not exist"),
    (["data.type=nope"], "data.type", "unknown dataset"),
    (["data.limitt=3"], "data.limitt", "unknown key"),
    (["optim.generator.type=adamz"], "optim.generator.type", "unknown optimizer"),
    (["optim.generator.betas=[0.5]"], "optim.generator.betas", "expected tuple"),
    (["sched.generator.type=warp"], "sched.generator.type", "unknown scheduler"),
    (["recipe.type=nope"], "recipe.type", "unknown recipe"),
    (["logging.tracker=mlflow"], "logging.tracker", "one of 'wandb', 'tensorboard', 'none'"),
    (["losses.pixel={type: l1}"], "losses.pixel", "unknown loss slot"),
    (["train.init.generator=/no/such/export"], "train.init.generator", "path does not exist"),
    (["train.ema_decay=1.5"], "train.ema_decay", "must be in (0, 1)"),
])
def test_bad_values_fail_in_one_line_naming_the_key(override: list[str], key: str, words: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(ROOT / "tasks/acgan_mnist.yaml", override)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(key + ":"), msg
    assert words in msg, msg


def test_missing_required_sections_and_slots(tmp_path: Path) -> None:
    raw = yaml.safe_load((ROOT / "tasks/acgan_mnist.yaml").read_text())
    del raw["losses"]["auxiliary"]
    p = tmp_path / "x.yaml"
    p.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"^losses.auxiliary: required by recipe 'acgan'"):
        load_config(p)
    raw = yaml.safe_load((ROOT / "tasks/acgan_mnist.yaml").read_text())
    del raw["optim"]
    p.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"^optim: required section missing"):
        load_config(p)


def test_yaml_syntax_and_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("recipe: {type: acgan\nmodels: [")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "none.yaml")


def test_resolved_config_round_trips(tmp_path: Path) -> None:
    from i2i.config import config_from_dict, dump_config

    cfg = load_config(ROOT / "tasks/cgan_mnist.yaml", ["data.limit=100"])
    dump_config(cfg, tmp_path / "c.yaml")
    again = config_from_dict(yaml.safe_load((tmp_path / "c.yaml").read_text()))
    assert again.to_dict() == cfg.to_dict()
    assert again.data.kwargs == {"limit": 100}


def test_mixed_precision_no_survives_yaml_booleans():
    """`train.mixed_precision=no` is YAML 1.1's false; it means "no", not a type error."""
    from pathlib import Path

    from i2i.config import load_config

    cfg = load_config(Path(__file__).resolve().parents[1] / "tasks" / "srresnet.yaml", ["train.mixed_precision=no"])
    assert cfg.train.mixed_precision == "no"
