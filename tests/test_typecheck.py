"""i2i.typecheck: YAML values against type hints, with one-line errors naming the key."""
from __future__ import annotations

from typing import Any, Literal

import pytest
import torch

from i2i.errors import ConfigError
from i2i.typecheck import check_kwargs, check_value, hints_of, type_name


def test_type_names_as_the_errors_say_them() -> None:
    assert type_name(int | None) == "int | null"
    assert type_name(Literal["batch", "instance"]) == "one of 'batch', 'instance'"
    assert type_name(list[int]) == "list[int]" and type_name(dict[str, float]) == "dict[str, float]"
    assert type_name(tuple[int, ...]) == "tuple[int]" and type_name(tuple[int, str]) == "tuple[int, str]"
    assert type_name(type(None)) == "null" and type_name(Any) == "Any"


@pytest.mark.parametrize("value, ann", [
    (3, int), (3, float), (2.5, float), (True, bool), ("a", str), (None, None), (None, int | None), (4, int | None),
    ("batch", Literal["batch", "none"]), (True, Literal[True, "auto"]), ([1, 2], list[int]), ((1, 2), list[int]),
    ([1, "a"], tuple[int, str]), ([1, 2, 3], tuple[int, ...]), ({"a": 1.0}, dict[str, float]), ({"x": [1]}, dict),
    (object(), Any), (0.5, float | torch.Tensor),
])
def test_values_that_match(value: Any, ann: Any) -> None:
    check_value(value, ann, "k")


@pytest.mark.parametrize("value, ann, message", [
    (True, int, "expected int, got True (bool)"),  # YAML's yes/true is not a number
    (True, float, "expected float, got True (bool)"),
    (1, bool, "expected bool, got 1 (int)"),
    ("3", int, "expected int, got '3' (str)"),
    (2.0, int, "expected int, got 2.0 (float)"),
    (1, Literal[0, 1] | None, None),  # accepted: listed here so the parametrisation shows the contrast below
    (True, Literal[0, 1], "expected one of 0, 1, got True (bool)"),
    ("x", Literal["a", "b"], "expected one of 'a', 'b', got 'x' (str)"),
    ([1, "a"], list[int], "expected list[int], got [1, 'a'] (list)"),
    ([1, 2, 3], tuple[int, int], "expected tuple[int, int], got [1, 2, 3] (list)"),
    ({1: 2.0}, dict[str, float], "expected dict[str, float], got {1: 2.0} (dict)"),
    ("ab", list[str], "expected list[str], got 'ab' (str)"),
    ([1.0], float | torch.Tensor, "expected float | Tensor, got [1.0] (list)"),  # a tensor never comes from YAML
])
def test_values_that_do_not_match_name_the_key_and_the_type(value: Any, ann: Any, message: str | None) -> None:
    if message is None:
        check_value(value, ann, "k")
        return
    with pytest.raises(ConfigError) as e:
        check_value(value, ann, "models.generator.width")
    assert str(e.value) == f"models.generator.width: {message}"


class Net:
    def __init__(self, width: int, norm: Literal["batch", "none"] = "batch", scale: float = 1.0, params: Any = None):
        pass


def test_check_kwargs_against_a_constructor() -> None:
    check_kwargs(Net, {"width": 4, "scale": 2}, "models.generator")
    with pytest.raises(ConfigError, match=r"^models.generator.depth: unknown key; allowed: norm, scale, width$"):
        check_kwargs(Net, {"width": 4, "depth": 3}, "models.generator", injected=("params",))
    with pytest.raises(ConfigError, match=r"^models.generator.width: required key missing \(type int\)$"):
        check_kwargs(Net, {"norm": "none"}, "models.generator")
    with pytest.raises(ConfigError, match=r"^models.generator.norm: expected one of 'batch', 'none', got 'group'"):
        check_kwargs(Net, {"width": 4, "norm": "group"}, "models.generator")
    with pytest.raises(ConfigError, match=r"^params: unknown key"):  # injected: the caller supplies it, not the YAML
        check_kwargs(Net, {"width": 4, "params": 1}, injected=("params",))


def test_var_keywords_accept_anything_but_injected_names() -> None:
    def fn(a: int, **kwargs: Any) -> None: ...

    check_kwargs(fn, {"a": 1, "anything": "goes"}, "x")
    with pytest.raises(ConfigError, match=r"^x.optimizer: unknown key; allowed: a$"):
        check_kwargs(fn, {"a": 1, "optimizer": 2}, "x", injected=("optimizer",))


def test_unresolvable_hints_fall_back_to_no_check() -> None:
    def fn(x: "NotDefinedAnywhere" = 1) -> None: ...  # noqa: F821

    assert hints_of(fn) == {}
    check_kwargs(fn, {"x": "whatever"}, "k")  # accepted rather than a crash
    assert hints_of(Net)["width"] is int
