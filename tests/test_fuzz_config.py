"""Hypothesis: arbitrary YAML values and overrides never produce a traceback — a valid config or one ConfigError line."""
from __future__ import annotations

import subprocess
from pathlib import Path

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
