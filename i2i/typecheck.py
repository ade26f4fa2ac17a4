"""Checking YAML values against Python type hints, with one-line errors naming the key.

Used for both the typed config dataclasses and the ``{type: Name, **kwargs}`` nodes,
whose schema is the constructor's own signature (DESIGN: "constructor keyword
arguments are the config schema"). Supports the hint forms that appear in this
package: bool, int, float, str, None, unions (``X | None``), ``Literal``, ``list[X]``,
``tuple[X, ...]``, ``dict[str, X]``, ``Any``, and torch's ``float | Tensor``.
"""
from __future__ import annotations

import inspect
import math
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Union

from .errors import ConfigError, short_repr


def hints_of(fn: Callable[..., Any]) -> dict[str, Any]:
    target = fn.__init__ if inspect.isclass(fn) else fn  # type: ignore[misc]
    try:
        return typing.get_type_hints(target)
    except Exception:  # unresolvable forward refs in third-party code: fall back to no hints
        return {}


def type_name(ann: Any) -> str:
    if ann is type(None):
        return "null"
    origin = typing.get_origin(ann)
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(a) for a in typing.get_args(ann))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(ann))
    if origin is not None:
        args = ", ".join(type_name(a) for a in typing.get_args(ann) if a is not Ellipsis)
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    return getattr(ann, "__name__", str(ann))


def _matches(value: Any, ann: Any) -> bool:
    if ann is Any or ann is inspect.Parameter.empty:
        return True
    if ann is type(None) or ann is None:
        return value is None
    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
    if origin in (Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if origin is Literal:
        return value in args and not (isinstance(value, bool) and not any(isinstance(a, bool) for a in args))
    if ann is bool:
        return isinstance(value, bool)
    if ann is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if ann is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if ann is str:
        return isinstance(value, str)
    if origin in (list, Sequence, tuple) or ann in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args:
            if len(args) == 2 and args[1] is Ellipsis:
                return all(_matches(v, args[0]) for v in value)
            return len(value) == len(args) and all(_matches(v, a) for v, a in zip(value, args))
        return all(_matches(v, args[0]) for v in value) if args else True
    if origin in (dict, Mapping) or ann in (dict,):
        if not isinstance(value, Mapping):
            return False
        if args:
            return all(_matches(k, args[0]) and _matches(v, args[1]) for k, v in value.items())
        return True
    if isinstance(ann, type):
        if ann.__module__.startswith("torch"):  # e.g. Tensor in ``float | Tensor``: never in YAML
            return False
        return isinstance(value, ann)
    return True  # an exotic hint we cannot check: accept rather than reject valid input


def did_you_mean(name: str, choices: list[str], value: Any = None) -> str:
    """`` (did you mean 'train.max_steps'?)`` for a key one typo away from an allowed one, else ""."""
    import difflib

    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.75)
    if not close:
        return ""
    rest = f".{next(iter(value))}" if isinstance(value, dict) and len(value) == 1 else ""
    return f" (did you mean {close[0] + rest!r}?)"


def check_value(value: Any, ann: Any, key: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):  # .inf / .nan / 1e400: no setting wants one
        raise ConfigError(f"expected a finite number, got {value}", key)
    if not _matches(value, ann):
        raise ConfigError(f"expected {type_name(ann)}, got {short_repr(value)} ({type(value).__name__})", key)


def check_kwargs(fn: Callable[..., Any], kwargs: Mapping[str, Any], key: str = "", injected: tuple[str, ...] = ()) -> None:
    """Reject unknown or wrongly typed keyword arguments, and missing required ones."""
    target = fn.__init__ if inspect.isclass(fn) else fn  # type: ignore[misc]
    sig = inspect.signature(target)
    params = {n: p for n, p in sig.parameters.items() if n != "self" and p.kind not in (p.VAR_POSITIONAL,)}
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    named = {n: p for n, p in params.items() if p.kind is not p.VAR_KEYWORD and n not in injected}
    hints = hints_of(fn)
    prefix = f"{key}." if key else ""
    for k, v in kwargs.items():
        if k not in named:
            if accepts_any and k not in injected:
                continue
            allowed = ", ".join(sorted(named)) or "(none)"
            raise ConfigError(f"unknown key{did_you_mean(k, sorted(named))}; allowed: {allowed}", f"{prefix}{k}")
        check_value(v, hints.get(k, Any), f"{prefix}{k}")
    for n, p in named.items():
        if p.default is p.empty and n not in kwargs and p.kind is not p.VAR_KEYWORD:
            raise ConfigError(f"required key missing (type {type_name(hints.get(n, Any))})", f"{prefix}{n}")
