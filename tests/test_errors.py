"""i2i.errors: one-line messages (escaped line breaks, bounded reprs) and the error types."""
from __future__ import annotations

import time

import pytest

from i2i.errors import CheckpointError, ConfigError, DataError, I2IError, MetricError, one_line, short_repr


def test_one_line_escapes_line_breaks_and_unprintables_only() -> None:
    assert one_line("a\nb\r\tc") == "a\\nb\\r\\tc"
    assert one_line("x\u2028y\x00z") == "x\\u2028y\\x00z"  # a Unicode line separator, a NUL
    assert one_line("née à 20 °C, ≤ 1") == "née à 20 °C, ≤ 1"  # printable text and spaces stay


def test_short_repr_is_bounded_however_big_the_value() -> None:
    assert short_repr([1, "a"]) == "[1, 'a']"
    assert short_repr("x" * 1000, limit=40) == "'" + "x" * 17 + "..." + "x" * 18 + "'"  # reprlib cuts in the middle
    text = short_repr({"a" * 70: "b" * 70})  # each part within reprlib's bounds, the whole not
    assert text == "{'" + "a" * 70 + "': 'b" + "..." and len(text) == 80
    # a YAML alias bomb: 9 levels of 9 references to the same list (9^9 leaves if expanded)
    bomb: list = ["lol"]
    for _ in range(9):
        bomb = [bomb] * 9
    start = time.perf_counter()
    text = short_repr(bomb)
    assert len(text) <= 80 and time.perf_counter() - start < 0.5
    assert short_repr(list(range(100))) == "[0, 1, 2, 3, 4, 5, ...]"  # reprlib's 6 items


def test_config_error_names_its_key_on_one_line() -> None:
    e = ConfigError("expected int, got 'x'", "models.generator.width")
    assert str(e) == "models.generator.width: expected int, got 'x'" and e.key == "models.generator.width"
    assert str(ConfigError("no key")) == "no key" and ConfigError("no key").key is None
    hostile = ConfigError("bad\nvalue", "a\nb")  # keys come from user YAML
    assert str(hostile) == "a\\nb: bad\\nvalue" and "\n" not in str(hostile)


def test_config_error_re_anchored_under_a_prefix() -> None:
    e = ConfigError("unknown key; allowed: a, b", "z_dim").at("models.generator")
    assert str(e) == "models.generator.z_dim: unknown key; allowed: a, b" and e.key == "models.generator.z_dim"
    assert str(ConfigError("must be > 0").at("data")) == "data: must be > 0"


def test_the_error_types() -> None:
    for cls in (ConfigError, DataError, CheckpointError, MetricError):
        assert issubclass(cls, I2IError)  # what the tools catch and print as one line
    assert issubclass(ConfigError, ValueError) and issubclass(MetricError, ValueError)
    assert not issubclass(DataError, ValueError) and not issubclass(CheckpointError, ValueError)
    with pytest.raises(I2IError, match="^f.png: not an image$"):
        raise DataError("f.png: not an image")
