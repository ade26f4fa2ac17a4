"""Typed run configuration: YAML -> dataclasses, dotted overrides, validation before training.

nanoGPT's rule: an unknown key or a wrong type is an error, never a silent default. Every
check raises :class:`~i2i.errors.ConfigError` whose one-line message names the dotted key
and what was allowed. ``{type: Name, **kwargs}`` nodes are checked against the registered
constructor's signature (see :mod:`i2i.typecheck`) — nothing is built here.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from .errors import ConfigError
from .registry import DATASETS, LOSSES, OPTIMIZERS, RECIPES, SCHEDULERS
from .typecheck import check_kwargs, check_value, did_you_mean

Spec = dict[str, Any]  # {type: Name, **kwargs}


@dataclass
class DataConfig:
    """``data:`` — the fixed keys below; any other key is a keyword of the dataset class."""

    type: str = "mnist"
    root: str | None = None
    batch_size: int = 64
    num_workers: int = 0
    pin_memory: bool = True  # only where CUDA is present: batches are then copied to the GPU asynchronously
    prefetch_factor: int = 2
    val_split: str = "val"
    on_error: Literal["raise", "skip"] = "raise"
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainConfig:
    max_steps: int = 1000
    d_steps: int = 1
    grad_clip: float | None = None
    ema_decay: float | None = None
    seed: int = 0
    fast: bool = False  # the device's numerically safe speed-ups (i2i.perf.training_plan); an explicit key below wins
    mixed_precision: Literal["no", "fp16", "bf16"] | None = None  # None: `fast` decides, else the launcher / env
    channels_last: bool | None = None  # None: on with `fast` for convolutional networks, else off
    compile: bool | None = None  # torch.compile each network in place (None: `fast` decides; off unless measured to pay)
    compile_mode: Literal["default", "reduce-overhead", "max-autotune"] = "default"  # reduce-overhead: CUDA graphs
    deterministic: bool = False  # cuDNN/cuBLAS deterministic kernels: bit-exact resume on CUDA (slower)
    log_every: int = 20
    ckpt_every: int = 500
    keep_last: int = 3
    max_nonfinite: int = 10
    on_nonfinite: Literal["stop", "reload"] = "stop"  # reload: back to the last checkpoint, lr × nonfinite_lr_factor
    nonfinite_lr_factor: float = 0.5
    max_reloads: int = 3  # on_nonfinite=reload: give up after this many reloads (the factor compounds)
    init: dict[str, str] = field(default_factory=dict)  # slot -> export dir / run dir to start from


@dataclass
class EvalConfig:
    every: int = 1000  # 0: only at the end
    at_end: bool = True
    max_batches: int | None = None
    batch_size: int = 64


@dataclass
class LoggingConfig:
    tracker: Literal["wandb", "tensorboard", "none"] = "wandb"
    wandb_mode: Literal["auto", "offline", "online"] = "auto"
    project: str = "i2i"
    sample_every: int = 500
    num_samples: int = 64
    progress: bool = True
    first_step: bool = False  # also log step 1 (SRGAN: see the content/adversarial balance before training moves it)


@dataclass
class Config:
    recipe: Spec
    models: dict[str, Spec]
    data: DataConfig
    optim: dict[str, Spec]
    losses: dict[str, Spec] = field(default_factory=dict)
    sched: dict[str, Spec] = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        extra = d["data"].pop("kwargs")
        d["data"].update(extra)
        return d


# ----------------------------------------------------------------------------- parsing
MAX_CONFIG_BYTES = 16 * 2**20  # a recipe is a few KB; a damaged multi-GB file is refused before it is read
MAX_YAML_NODES = 100_000  # far above any real config (a few hundred nodes), far below a "billion laughs"
MAX_YAML_DEPTH = 64


def check_yaml_size(value: Any, where: str) -> None:
    """Refuse a parsed YAML value whose *expanded* size or depth is out of bounds.

    PyYAML shares the node behind every alias, so a 200-byte "billion laughs" parses quickly
    and only explodes in whatever walks it (error messages, deepcopy, dump). The count is
    memoised per shared object, so the check itself never expands anything; depth is bounded
    before Python's recursion limit, and a self-referencing alias counts as too deep.
    """
    sizes: dict[int, int] = {}

    def count(v: Any, depth: int) -> int:
        if isinstance(v, int) and abs(v).bit_length() > 64:  # no setting needs more; str() of a huge one fails
            raise ConfigError(f"{where}: an integer of {abs(v).bit_length()} bits is out of range (64 at most)")
        if not isinstance(v, (dict, list, tuple)):
            return 1
        if depth > MAX_YAML_DEPTH:
            raise ConfigError(f"{where}: nested deeper than {MAX_YAML_DEPTH} levels")
        if id(v) not in sizes:
            items = [x for kv in v.items() for x in kv] if isinstance(v, dict) else v
            sizes[id(v)] = 1 + sum(count(x, depth + 1) for x in items)
            if sizes[id(v)] > MAX_YAML_NODES:
                raise ConfigError(f"{where}: expands to more than {MAX_YAML_NODES:,} values (YAML aliases?)")
        return sizes[id(v)]

    count(value, 0)


class YAMLLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads scientific notation without a dot (``1e-4``, ``3E5``)
    as a float, as YAML 1.2 and most people do; PyYAML (YAML 1.1) would read it as a string."""


YAMLLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))


def yaml_load(text: str) -> Any:
    """Parse one YAML document with :class:`YAMLLoader` (safe: plain data only)."""
    return yaml.load(text, Loader=YAMLLoader)  # noqa: S506  (a SafeLoader subclass)


def load_yaml_text(text: str, where: str) -> Any:
    """:func:`yaml_load` with every failure as one ConfigError line naming ``where``."""
    try:
        value = yaml_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{where}{line}: not valid YAML ({getattr(e, 'problem', None) or e})") from None
    except RecursionError:  # PyYAML's composer recurses once per nesting level
        raise ConfigError(f"{where}: nested too deeply") from None
    except ValueError:  # int() of more than 4300 digits (Python's limit) inside the YAML constructor
        raise ConfigError(f"{where}: a number too long to read (over 4300 digits)") from None
    check_yaml_size(value, where)
    return value


def parse_override(text: str) -> tuple[list[str], Any]:
    """``train.max_steps=200`` -> (["train", "max_steps"], 200); the value is YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.sub=value")
    key, raw = text.split("=", 1)
    if not key or any(not p for p in key.split(".")):
        raise ConfigError(f"override {text!r} has an empty key part")
    try:
        value = yaml_load(raw) if raw != "" else None
    except yaml.YAMLError:
        value = raw  # not YAML: keep the literal string
    except RecursionError:
        raise ConfigError("nested too deeply", key) from None
    except ValueError:  # int() of more than 4300 digits inside the YAML constructor
        raise ConfigError("a number too long to read (over 4300 digits)", key) from None
    check_yaml_size(value, key)
    return key.split("."), value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    out = copy.deepcopy(raw)
    for ov in overrides:
        parts, value = parse_override(ov)
        node = out
        for i, p in enumerate(parts[:-1]):
            if p not in node or node[p] is None:
                node[p] = {}
            if not isinstance(node[p], dict):
                raise ConfigError(f"cannot set a sub-key of a {type(node[p]).__name__}", ".".join(parts[: i + 1]))
            node = node[p]
        node[parts[-1]] = value
    return out


def _from_dict(cls: type, data: Any, key: str) -> Any:
    """Build dataclass ``cls`` from a mapping, checking every field's type."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping, got {type(data).__name__}", key or None)
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for k, v in data.items():
        sub = f"{key}.{k}" if key else str(k)
        if k not in names or k == "kwargs":
            if cls is DataConfig:
                extra[k] = v
                continue
            allowed = [n for n in names if n != "kwargs"]
            raise ConfigError(f"unknown key{did_you_mean(k, allowed, v)}; allowed: {', '.join(allowed)}", sub)
        ann = hints[k]
        if dataclasses.is_dataclass(ann):
            kwargs[k] = _from_dict(ann, v, sub)
        else:
            if cls is TrainConfig and k == "mixed_precision" and v is False:
                v = "no"  # YAML 1.1 reads a bare `no` as false
            check_value(v, ann, sub)
            kwargs[k] = v
    for f in dataclasses.fields(cls):
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and f.name not in kwargs:
            raise ConfigError("required section missing", f"{key}.{f.name}" if key else f.name)
    if cls is DataConfig:
        kwargs["kwargs"] = extra
    return cls(**kwargs)


def _spec(node: Any, key: str) -> Spec:
    if isinstance(node, str):  # `recipe: acgan` is shorthand for `recipe: {type: acgan}`
        return {"type": node}
    if not isinstance(node, dict):
        raise ConfigError(f"expected a mapping with a 'type' key, got {type(node).__name__}", key)
    return node


# ----------------------------------------------------------------------------- validation
def validate(cfg: Config) -> None:
    """Every registered name, kwarg, type and path — before anything is built."""
    from . import recipes as _  # noqa: F401  (populate registries)

    cfg.recipe = _spec(cfg.recipe, "recipe")
    RECIPES.validate(cfg.recipe, "recipe", injected=("losses",))
    recipe_cls = RECIPES.get(cfg.recipe["type"])

    slots = recipe_cls.model_slots
    for name in cfg.models:
        if name not in slots:
            raise ConfigError(f"unknown model slot for recipe {cfg.recipe['type']!r}; allowed: {', '.join(slots)}", f"models.{name}")
    for name, reg in slots.items():
        if name not in cfg.models:
            if name in recipe_cls.optional_models:
                continue
            raise ConfigError(f"required by recipe {cfg.recipe['type']!r} (a {reg.kind}: {', '.join(reg.list())})", f"models.{name}")
        cfg.models[name] = _spec(cfg.models[name], f"models.{name}")
        reg.validate(cfg.models[name], f"models.{name}")

    for name, spec in cfg.losses.items():
        if name not in recipe_cls.loss_slots:
            allowed = ", ".join(recipe_cls.loss_slots) or "(none)"
            raise ConfigError(f"unknown loss slot for recipe {cfg.recipe['type']!r}; allowed: {allowed}", f"losses.{name}")
        cfg.losses[name] = _spec(spec, f"losses.{name}")
        LOSSES.validate(cfg.losses[name], f"losses.{name}")
    for name in recipe_cls.required_losses:
        if name not in cfg.losses:
            raise ConfigError(f"required by recipe {cfg.recipe['type']!r}", f"losses.{name}")
    if "adversarial" in cfg.losses and "discriminator" not in cfg.models and "discriminator" in slots:
        raise ConfigError("an adversarial loss needs models.discriminator", "losses.adversarial")

    ds = DATASETS.get(cfg.data.type, "data.type")
    injected = ("root", "split") + (("on_error",) if "on_error" in _params(ds) else ())
    check_kwargs(ds, cfg.data.kwargs, "data", injected=injected)
    if cfg.data.root is not None and not Path(cfg.data.root).expanduser().exists():
        raise ConfigError(missing_path(cfg.data.root), "data.root")

    for name in list(cfg.optim):
        if name not in cfg.models:
            raise ConfigError(f"no such model in models: ({', '.join(cfg.models)})", f"optim.{name}")
        cfg.optim[name] = _spec(cfg.optim[name], f"optim.{name}")
        OPTIMIZERS.validate(cfg.optim[name], f"optim.{name}", injected=("params",))
        check_optimizer_values(cfg.optim[name], f"optim.{name}")
    for name in cfg.models:
        if name not in cfg.optim:
            raise ConfigError(f"no optimizer for models.{name}", f"optim.{name}")
    for name in list(cfg.sched):
        if name not in cfg.optim:
            raise ConfigError(f"no such optimizer in optim: ({', '.join(cfg.optim)})", f"sched.{name}")
        cfg.sched[name] = _spec(cfg.sched[name], f"sched.{name}")
        SCHEDULERS.validate(cfg.sched[name], f"sched.{name}", injected=("optimizer", "total_steps"))

    t = cfg.train
    for k in ("max_steps", "d_steps", "log_every", "ckpt_every", "keep_last", "max_nonfinite"):
        if getattr(t, k) < (0 if k in ("ckpt_every",) else 1):
            raise ConfigError(f"must be >= {0 if k == 'ckpt_every' else 1}, got {getattr(t, k)}", f"train.{k}")
    for k in ("batch_size",):
        if getattr(cfg.data, k) < 1:
            raise ConfigError(f"must be >= 1, got {getattr(cfg.data, k)}", f"data.{k}")
    if cfg.data.num_workers < 0:
        raise ConfigError(f"must be >= 0, got {cfg.data.num_workers}", "data.num_workers")
    if not 0 <= t.seed < 2**31:  # NumPy takes 32-bit seeds; resumes add the step to it
        raise ConfigError(f"must be in [0, 2**31), got {t.seed}", "train.seed")
    if t.max_reloads < 0:
        raise ConfigError(f"must be >= 0, got {t.max_reloads}", "train.max_reloads")
    if not 0.0 < t.nonfinite_lr_factor <= 1.0:
        raise ConfigError(f"must be in (0, 1], got {t.nonfinite_lr_factor}", "train.nonfinite_lr_factor")
    if t.ema_decay is not None and not 0.0 < t.ema_decay < 1.0:
        raise ConfigError(f"must be in (0, 1), got {t.ema_decay}", "train.ema_decay")
    for slot, path in t.init.items():
        if slot not in cfg.models:
            raise ConfigError(f"no such model in models: ({', '.join(cfg.models)})", f"train.init.{slot}")
        if not resolve_path(path).exists():
            raise ConfigError(f"path does not exist: {path}", f"train.init.{slot}")


def check_optimizer_values(spec: Spec, key: str) -> None:
    """The ranges PyTorch's optimizers enforce, said with the key before anything is built
    (PyTorch's own ``ValueError: Invalid learning rate: -1.0`` names none)."""
    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    for k in ("lr", "eps", "weight_decay", "momentum", "alpha", "dampening"):
        if k in spec and isinstance(spec[k], (int, float)) and not (number(spec[k]) and spec[k] >= 0):
            raise ConfigError(f"must be a finite number >= 0, got {spec[k]}", f"{key}.{k}")
    betas = spec.get("betas")
    if isinstance(betas, (list, tuple)):
        for i, b in enumerate(betas):
            if isinstance(b, (int, float)) and not (number(b) and 0.0 <= b < 1.0):
                raise ConfigError(f"each beta must be in [0, 1), got {b} at index {i}", f"{key}.betas")


def _params(fn: Any) -> list[str]:
    import inspect

    target = fn.__init__ if inspect.isclass(fn) else fn
    return list(inspect.signature(target).parameters)


PHOTO_CORPUS = "~/.cache/i2i/photos"   # datasets/photos.md: where build_photo_corpus.py puts train/, val/, heldout/


def missing_path(path: str | Path) -> str:
    """The error text for a data path that does not exist; for the photo corpus, how to build it."""
    msg = f"path does not exist: {path}"
    corpus = Path(PHOTO_CORPUS).expanduser()
    if Path(path).expanduser() == corpus or corpus in Path(path).expanduser().parents:
        msg += (f" (the photo corpus: build it with `python datasets/build_photo_corpus.py --out {PHOTO_CORPUS}`,"
                " see datasets/photos.md)")
    return msg


def resolve_path(path: str) -> Path:
    """User paths are relative to the working directory; ``i2i/...`` paths fall back to the package."""
    p = Path(path).expanduser()
    if p.exists() or p.is_absolute():
        return p
    pkg_rel = Path(__file__).resolve().parent.parent / p
    return pkg_rel if pkg_rel.exists() else p


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read a recipe YAML, apply ``key.sub=value`` overrides, type-check and validate it."""
    from . import data, losses, nn, recipes  # noqa: F401  (fill the registries)

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: {path.stat().st_size:,} bytes is too large for a config file (at most {MAX_CONFIG_BYTES:,})")
    raw = load_yaml_text(path.read_text(errors="replace"), str(path))
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    raw = apply_overrides(raw, overrides or [])
    raw.setdefault("name", path.stem)
    cfg = _from_dict(Config, raw, "")
    validate(cfg)
    return cfg


def config_from_dict(raw: dict[str, Any]) -> Config:
    from . import data, losses, nn, recipes  # noqa: F401  (fill the registries)

    check_yaml_size(raw, "config")
    cfg = _from_dict(Config, copy.deepcopy(raw), "")
    validate(cfg)
    return cfg


def data_config(raw: dict[str, Any]) -> DataConfig:
    """A saved run's ``data:`` mapping (an export's config) as a type-checked :class:`DataConfig`."""
    if not raw:
        raise ConfigError("the run's config has no data section; pass --data", "data")
    return _from_dict(DataConfig, copy.deepcopy(raw), "data")


def dump_config(cfg: Config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
