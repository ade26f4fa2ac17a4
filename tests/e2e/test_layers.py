"""The package's layering: every import in ``i2i/`` goes from a higher layer to a lower one.

    tools → apps → pipelines → engine → runs → recipes / nn / losses / data / metrics

Imports inside functions count too (a lazy import still runs the other way). Modules of one
layer may import each other; the foundation (errors, registry, …) imports nothing above it.

The running wing (the pipelines and the model readers: :mod:`i2i.inference`, :mod:`i2i.readers`,
:mod:`i2i.foreign`, :mod:`i2i.card`, :mod:`i2i.task_table`) imports no part of the training wing: not the recipes,
not the engine, not the training datasets. Running a model builds no recipe, loss or dataset.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "i2i"

LAYERS: list[tuple[str, ...]] = [
    ("errors", "typecheck", "registry", "distributed", "perf", "tiling", "task_table"),  # foundation
    ("nn", "losses", "data", "metrics", "card"),
    ("recipes", "config"),  # config validates against the recipes' declarations
    ("runs", "weight_files", "junyanz", "basicsr_files"),  # a foreign weights file: read for the readers and for train.init
    ("engine",),
    ("pipelines", "inference", "readers", "foreign", "onnx_export", "hub"),
    ("apps", "cli", "commands"),
    ("__init__",),  # `import i2i`: the public surface, above everything
]
LEVEL = {name: i for i, names in enumerate(LAYERS) for name in names}


def top(module: str) -> str:
    """``i2i.engine.trainer`` -> ``engine``; ``i2i`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports(path: Path) -> list[tuple[int, str]]:
    return imports_in(path.read_text(), module_name(path), path.name == "__init__.py")


def imports_in(text: str, name: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, absolute module) of every i2i import in module ``name``'s source, lazy ones included."""
    package = name if is_package else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "i2i"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "i2i":
                continue
            if node.module is None or mod in ("i2i",):  # `from . import x` / `from i2i import x`: the submodules
                found += [(node.lineno, f"{mod}.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, mod))
    return sorted(found)


FILES = sorted(PKG.rglob("*.py"))


def test_every_package_module_has_a_layer() -> None:
    tops = {top(module_name(f)) for f in FILES}
    assert tops <= set(LEVEL), sorted(tops - set(LEVEL))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PKG)))
def test_no_import_goes_upward(path: Path) -> None:
    me = top(module_name(path))
    upward = [f"line {line}: {mod} ({top(mod)}, layer {LEVEL.get(top(mod))}) from {me} (layer {LEVEL[me]})"
              for line, mod in imports(path) if LEVEL.get(top(mod), -1) > LEVEL[me]]
    assert not upward, upward


def test_the_walker_sees_lazy_relative_and_absolute_imports() -> None:
    """The check can fail: imports up from ``runs`` into the engine are found, however written."""
    text = ("import torch\nfrom .errors import I2IError\n\ndef f():\n    from .engine import trainer\n"
            "    from .engine.step import TrainStep\n    import i2i.apps\n    from i2i import pipelines\n")
    found = imports_in(text, "i2i.runs")
    assert found == [(2, "i2i.errors"), (5, "i2i.engine"), (6, "i2i.engine.step"), (7, "i2i.apps"),
                     (8, "i2i.pipelines")]
    assert [m for _, m in found if LEVEL[top(m)] > LEVEL["runs"]] == [m for _, m in found[1:]]
    assert imports_in("from ..runs import read_saved\n", "i2i.engine.trainer") == [(1, "i2i.runs")]


# ----------------------------------------------------------------------------- the running wing
RUNNING_WING = sorted([*(PKG / "pipelines").glob("*.py"),
                       *(PKG / m for m in ("inference.py", "readers.py", "foreign.py", "junyanz.py", "basicsr_files.py",
                                           "weight_files.py", "card.py", "task_table.py"))])
TRAINING_WING = ("i2i.recipes", "i2i.engine", "i2i.losses", "i2i.data.base", "i2i.data.digits", "i2i.data.paired",
                 "i2i.data.segmentation", "i2i.data.super_resolution", "i2i.data.unpaired", "i2i.data.transforms")
"""What running a model must not import: the recipes, the engine, the losses and the training
datasets (``i2i.data.io``, ``.resize``, ``.edges``, ``.arrays`` and ``.palette`` are shared helpers)."""


def training_imports(found: list[tuple[int, str]]) -> list[str]:
    """The imports of ``found`` that reach into the training wing (``from i2i import recipes`` included)."""
    return [f"line {line}: {mod}" for line, mod in found
            if any(mod == t or mod.startswith(t + ".") for t in TRAINING_WING) or mod == "i2i.data"]


@pytest.mark.parametrize("path", RUNNING_WING, ids=lambda p: str(p.relative_to(PKG)))
def test_running_a_model_imports_nothing_of_the_training_wing(path: Path) -> None:
    assert path.is_file(), path
    bad = training_imports(imports(path))
    assert not bad, bad


def test_the_running_wing_check_can_fail() -> None:
    """The same walk flags a pipeline that imports a recipe helper, a training dataset or the engine,
    however written, and passes the shared helpers."""
    text = ("from ..recipes.pix2pix import pad_predict\nfrom ..data.paired import to_tensor\n"
            "def f():\n    from .. import engine\n    import i2i.losses.pixel\n"
            "from ..data.arrays import to_channels\nfrom ..tiling import pad_predict\nfrom ..data.io import read_image\n")
    found = imports_in(text, "i2i.pipelines.pix2pix")
    assert training_imports(found) == ["line 1: i2i.recipes.pix2pix", "line 2: i2i.data.paired", "line 4: i2i.engine",
                                       "line 5: i2i.losses.pixel"]
