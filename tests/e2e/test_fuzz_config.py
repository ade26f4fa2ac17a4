"""Hypothesis: arbitrary YAML values and overrides never produce a traceback — a valid config or one ConfigError line."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT, tool
from i2i.config import config_from_dict, load_config
from i2i.errors import ConfigError

BASE = yaml.safe_load((ROOT / "tasks/acgan_mnist.yaml").read_text())

KEYS = ["train.max_steps", "train.d_steps", "train.grad_clip", "train.ema_decay", "train.seed", "train.mixed_precision",
        "train.init", "train.init.generator", "data.root", "data.batch_size", "data.type", "data.limit", "data.num_workers",
        "models.generator.type", "models.generator.z_dim", "models.generator.cond", "models.discriminator.aux_classes",
        "losses.adversarial.objective", "losses.adversarial.weight", "losses.auxiliary", "losses.nope",
        "optim.generator.lr", "optim.generator.betas", "optim.generator.type", "sched.generator.type", "sched.nope",
        "recipe.type", "recipe.num_classes", "recipe", "models", "eval.every", "logging.tracker", "name", "nope",
        "train", "data", "train.max_steps.x", "models.generator.type.x"]

yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12) | st.sampled_from(["adam", "dcgan", "hinge", "mnist", "/tmp", "acgan", "multiply"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6)


def override_text(key: str, value: object) -> str:
    return f"{key}={yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(KEYS), yaml_values), max_size=3))
def test_random_overrides_validate_or_fail_in_one_line(pairs: list[tuple[str, object]]) -> None:
    overrides = [override_text(k, v) for k, v in pairs]
    try:
        cfg = load_config(ROOT / "tasks/acgan_mnist.yaml", overrides)
    except ConfigError as e:
        assert "\n" not in str(e) and str(e)
    else:
        assert cfg.train.max_steps >= 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(BASE)), yaml_values)
def test_random_section_values_validate_or_fail_in_one_line(section: str, value: object) -> None:
    raw = {**BASE, section: value}
    try:
        config_from_dict(raw)
    except ConfigError as e:
        assert "\n" not in str(e) and str(e)


@settings(max_examples=8, deadline=None)
@given(pairs=st.lists(st.tuples(st.sampled_from(KEYS), yaml_values), min_size=1, max_size=2))
def test_cli_never_prints_a_traceback(pairs: list[tuple[str, object]], tmp_path_factory) -> None:  # noqa: ANN001
    out = tmp_path_factory.mktemp("cli")
    overrides = [override_text(k, v) for k, v in pairs]
    # max_steps=1 last, so a config that happens to be valid trains one step and exits cleanly
    p = subprocess.run(tool("train") + ["tasks/acgan_mnist.yaml", *overrides, "train.max_steps=1", "logging.tracker=none",
                                        "eval.at_end=false", "logging.sample_every=0", "logging.progress=false",
                                        "--output-dir", str(out / "run")],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert "Traceback" not in p.stderr, p.stderr[-2000:]
    if p.returncode != 0:
        lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
        assert lines[-1].startswith("error: ") and len([ln for ln in lines if ln.startswith("error: ")]) == 1, p.stderr


def test_a_non_mapping_config_file(tmp_path: Path) -> None:
    p = tmp_path / "list.yaml"
    p.write_text("- 1\n- 2\n")
    try:
        load_config(p)
    except ConfigError as e:
        assert "expected a mapping" in str(e)
    else:
        raise AssertionError("a list config was accepted")


# ---- hostile YAML: alias bombs, deep nesting, huge values ------------------------------------
BASE_TEXT = "\n".join(ln for ln in (ROOT / "tasks/acgan_mnist.yaml").read_text().splitlines() if not ln.startswith("logging"))


def alias_bomb(levels: int, width: int) -> str:
    """``levels`` anchors, each a list of ``width`` aliases of the one before: width**levels values."""
    rows = [f"&l0 [{', '.join(['lol'] * width)}]"] + [f"&l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels)]
    return "[" + ", ".join(rows) + "]"


hostile_values = st.one_of(
    st.builds(alias_bomb, st.integers(1, 12), st.integers(1, 12)),
    st.integers(1, 200_000).map(lambda n: "[" * n + "]" * n),
    st.integers(1, 200_000).map(lambda n: "{a: " * n + "1" + "}" * n),
    st.integers(1, 2_000_000).map(lambda n: "x" * n),
    st.integers(1, 6000).map(lambda n: "9" * n), st.integers(1, 6000).map(lambda n: "-0x" + "f" * n),
    st.sampled_from(["1e400", "-1e400", ".nan", "&a [*a]"]))
HOSTILE_KEYS = ["logging.project", "optim.generator.betas", "train.max_steps", "data.batch_size", "name", "recipe"]


def one_error_line(e: ConfigError) -> None:
    assert str(e) and "\n" not in str(e) and len(str(e)) < 1000, str(e)[:2000]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(key=st.sampled_from(HOSTILE_KEYS), value=hostile_values, in_file=st.booleans())
def test_hostile_yaml_validates_or_fails_in_one_short_line(key: str, value: str, in_file: bool, tmp_path_factory) -> None:  # noqa: ANN001
    """In the file (a later duplicate section wins in PyYAML) or as an override: a config or one short line."""
    path = tmp_path_factory.mktemp("hostile") / "cfg.yaml"
    section, _, sub = key.partition(".")
    nested = f"\n{section}:\n  {sub}: {value}\n" if sub else f"\n{section}: {value}\n"
    path.write_text(BASE_TEXT + (nested if in_file else "\n"))
    try:
        load_config(path, [] if in_file else [f"{key}={value}"])
    except ConfigError as e:
        one_error_line(e)


def test_billion_laughs_and_deep_nesting_are_refused_quickly(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BASE_TEXT + "\nlogging:\n  project: " + alias_bomb(9, 9) + "\n")  # 9**9 = 387 M strings
    deep = tmp_path / "deep.yaml"
    deep.write_text("x: " + "[" * 100_000 + "]" * 100_000 + "\n")
    cases = [((bomb,), f"{bomb}: expands to more than 100,000 values (YAML aliases?)"),
             ((deep,), f"{deep}: nested too deeply"),
             ((ROOT / "tasks/acgan_mnist.yaml", ["optim.generator.betas=" + alias_bomb(9, 9)]),
              "optim.generator.betas: expands to more than")]  # an override carries a bomb too
    for args, message in cases:
        with pytest.raises(ConfigError) as e:
            load_config(*args)
        one_error_line(e.value)
        assert str(e.value).startswith(message), str(e.value)


def test_error_messages_show_a_bounded_value() -> None:
    try:
        load_config(ROOT / "tasks/acgan_mnist.yaml", ["logging.project=[" + ", ".join(["abcdefgh" * 50] * 2000) + "]"])
    except ConfigError as e:
        assert str(e).startswith("logging.project: expected str, got [") and len(str(e)) < 200, str(e)[:500]
    else:
        raise AssertionError("a list was accepted as logging.project")


def test_cli_refuses_an_alias_bomb_in_one_line(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BASE_TEXT + "\nlogging:\n  project: " + alias_bomb(9, 9) + "\n")
    p = subprocess.run(tool("train") + [str(bomb), "--output-dir", str(tmp_path / "run")], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 2 and p.stderr.strip() == f"error: {bomb}: expands to more than 100,000 values (YAML aliases?)"


def test_huge_numbers_and_seeds_are_one_line(tmp_path: Path) -> None:
    cases = {"train.max_steps=" + "9" * 5000: "train.max_steps: a number too long to read (over 4300 digits)",
             "train.max_steps=-0x" + "f" * 5000: "train.max_steps: an integer of 20000 bits is out of range (64 at most)",
             "train.seed=4294967296": "train.seed: must be in [0, 2**31), got 4294967296"}
    for override, message in cases.items():
        try:
            load_config(ROOT / "tasks/acgan_mnist.yaml", [override])
        except ConfigError as e:
            assert str(e) == message
        else:
            raise AssertionError(f"accepted {override[:40]}")
    big = tmp_path / "big.yaml"
    big.write_text(BASE_TEXT + "\ntrain:\n  max_steps: " + "9" * 5000 + "\n")
    try:
        load_config(big)
    except ConfigError as e:
        assert str(e) == f"{big}: a number too long to read (over 4300 digits)"
    else:
        raise AssertionError("accepted a 5000-digit number")
