"""Name -> constructor registries (one per kind), as in BasicSR / timm.

A YAML node ``{type: Name, **kwargs}`` maps to exactly one constructor call
``REGISTRY.get(Name)(**kwargs)``. Keyword arguments are checked against the
constructor's signature and type hints *before* anything is built, so an unknown
key or a wrong type fails in one line naming the key (see :mod:`i2i.typecheck`).

Registration is explicit: a module registers its classes when imported, and
``i2i/__init__.py`` imports every module, so ``i2i.GENERATORS.list()`` is complete.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from .errors import ConfigError, short_repr
from .typecheck import check_kwargs

T = TypeVar("T")


class Registry:
    """A named table of constructors of one kind (generators, losses, ...)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._table: dict[str, Callable[..., Any]] = {}

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator: ``@GENERATORS.register("dcgan")``; a duplicate name is an error."""

        def deco(obj: T) -> T:
            key = name or obj.__name__  # type: ignore[attr-defined]
            if key in self._table:
                raise KeyError(f"{self.kind} '{key}' is already registered (by {self._table[key]!r})")
            self._table[key] = obj  # type: ignore[assignment]
            return obj

        return deco

    def __contains__(self, name: str) -> bool:
        return name in self._table

    def list(self) -> list[str]:
        return sorted(self._table)

    def get(self, name: str, key: str | None = None) -> Callable[..., Any]:
        if not isinstance(name, str) or name not in self._table:
            raise ConfigError(f"unknown {self.kind} {short_repr(name)}; available: {', '.join(self.list())}", key)
        return self._table[name]

    def validate(self, spec: Mapping[str, Any], key: str = "", injected: tuple[str, ...] = ()) -> None:
        """Check ``{type: Name, **kwargs}`` against Name's signature without building it."""
        if not isinstance(spec, Mapping):
            raise ConfigError(f"expected a mapping with a 'type' key, got {type(spec).__name__}", key or None)
        if "type" not in spec:
            raise ConfigError(f"missing 'type' (one of: {', '.join(self.list())})", key or None)
        fn = self.get(spec["type"], f"{key}.type" if key else "type")
        kwargs = {k: v for k, v in spec.items() if k != "type"}
        check_kwargs(fn, kwargs, key, injected=injected)
        # arguments that are themselves registered names (``objective: hinge``) are checked too
        for arg, registry in getattr(fn, "registry_args", {}).items():
            if arg in kwargs:
                registry.get(kwargs[arg], f"{key}.{arg}" if key else arg)

    def build(self, spec: Mapping[str, Any], key: str = "", **injected: Any) -> Any:
        """Validate and call. ``injected`` are arguments the caller supplies (not from YAML)."""
        self.validate(spec, key, injected=tuple(injected))
        fn = self.get(spec["type"])
        kwargs = {k: v for k, v in spec.items() if k != "type"}
        kwargs = coerce_kwargs(fn, kwargs)
        try:
            return fn(**kwargs, **injected)
        except ConfigError as e:
            raise (e.at(key) if key else e) from None
        except ValueError as e:  # a constructor's own range check (torch's "Invalid learning rate"): name the key
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ConfigError(first[:200], key or None) from None


def coerce_kwargs(fn: Callable[..., Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """YAML has no tuples: turn lists into tuples where the signature asks for a tuple."""
    from .typecheck import hints_of

    hints = hints_of(fn)
    out = dict(kwargs)
    for k, v in kwargs.items():
        ann = hints.get(k)
        if isinstance(v, list) and ann is not None and "tuple" in str(ann).lower():
            out[k] = tuple(v)
    return out


def describe(fn: Callable[..., Any]) -> str:
    """``name(arg: type = default, ...)`` for ``--list`` output."""
    try:
        target = fn.__init__ if inspect.isclass(fn) else fn  # type: ignore[misc]
        sig = inspect.signature(target)
        params = [p for p in sig.parameters.values() if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        return ", ".join(str(p) for p in params)
    except (TypeError, ValueError):
        return ""


MAX_PARAMETERS = 2_000_000_000
"""8 GB of fp32 weights: 37× pix2pix's unet_256 (54 M parameters), the largest i2i network."""
MAX_MODULES = 20_000
"""Layers of one network: i2i's deepest (timm backbones, unet_256, srresnet ×16) have a few hundred;
a damaged ``num_blocks: 100000`` would take minutes and gigabytes to build before any check."""


class _TooLarge(Exception):
    pass


def check_network_size(registry: Registry, spec: Mapping[str, Any], key: str) -> int:
    """Build ``spec`` on the meta device (shapes only, no memory), stopping as soon as it passes
    :data:`MAX_MODULES` layers or :data:`MAX_PARAMETERS` parameters: a config saying ``width:
    1000000000`` or ``num_blocks: 1000000`` is refused in about a second, in one line naming
    ``key``, instead of allocating (or looping) without bound. Returns the parameter count."""
    import torch
    from torch.nn.modules import module as module_hooks

    counts = {"modules": 0, "params": 0}

    def on_module(parent: Any, name: str, sub: Any) -> None:
        counts["modules"] += 1
        if counts["modules"] > MAX_MODULES:
            raise _TooLarge(f"more than {MAX_MODULES:,} layers")

    def on_parameter(owner: Any, name: str, param: Any) -> None:
        if param is not None:
            counts["params"] += param.numel()
            if counts["params"] > MAX_PARAMETERS:
                raise _TooLarge(f"more than {MAX_PARAMETERS:,} parameters")

    handles = [module_hooks.register_module_module_registration_hook(on_module),
               module_hooks.register_module_parameter_registration_hook(on_parameter)]
    try:
        with torch.device("meta"):
            net = registry.build(spec, key)
        n = sum(q.numel() for q in net.parameters())
    except ConfigError:
        raise
    except _TooLarge as e:
        raise ConfigError(f"the network would have {e}: the value is out of range (or the file is damaged)", key) from None
    except (RuntimeError, OverflowError, MemoryError, TypeError, ValueError) as e:  # shapes beyond int64, bad sizes
        raise ConfigError(f"cannot be built ({type(e).__name__}: {str(e).strip()[:100]})", key) from None
    finally:
        for h in handles:
            h.remove()
    if n > MAX_PARAMETERS:
        raise ConfigError(f"the network would have {n:,} parameters (more than {MAX_PARAMETERS:,})", key)
    return n


def build_network_bounded(registry: Registry, spec: Mapping[str, Any], key: str) -> Any:
    """:func:`check_network_size`, then the real build: what every network build goes through."""
    check_network_size(registry, spec, key)
    return registry.build(spec, key)


GENERATORS = Registry("generator")
DISCRIMINATORS = Registry("discriminator")
LOSSES = Registry("loss")
GAN_OBJECTIVES = Registry("GAN objective")
DATASETS = Registry("dataset")
RECIPES = Registry("recipe")
OPTIMIZERS = Registry("optimizer")
SCHEDULERS = Registry("scheduler")

ALL: dict[str, Registry] = {
    "generators": GENERATORS,
    "discriminators": DISCRIMINATORS,
    "losses": LOSSES,
    "gan_objectives": GAN_OBJECTIVES,
    "datasets": DATASETS,
    "recipes": RECIPES,
    "optimizers": OPTIMIZERS,
    "schedulers": SCHEDULERS,
}
