"""pyproject.toml against the imports (issue 14).

* every runtime dependency is imported by ``i2i/`` or ``tools/`` (or is in :data:`INDIRECT`,
  with the line of code that needs it);
* every third-party module that ``i2i/`` or ``tools/`` imports is a runtime dependency, not
  a ``[dev]`` one;
* every ``[dev]`` dependency is used by ``tests/``, and every third-party module the tests
  import is declared (runtime or dev).

Imports inside functions count (they run on some path), and so do ``importlib.import_module``
/ ``__import__`` calls with a literal name. Standard-library modules are recognised with
``sys.stdlib_module_names``. Also here: importing every i2i module and ``tools/gpu_check.py
--help`` work without the packages the GPU test machine lacks.
"""
from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

IMPORT_NAMES: dict[str, tuple[str, ...]] = {
    "pillow": ("PIL",),
    "scikit-image": ("skimage",),
    "scikit-learn": ("sklearn",),
    "pyyaml": ("yaml",),
    "opencv-python-headless": ("cv2",),
}
"""Distribution (PEP 503 name) -> its top-level import names, where they differ from the name
(``torch-foo`` -> ``torch_foo`` otherwise). Checked against the installed metadata below."""

INDIRECT: dict[str, tuple[str, str]] = {
    # accelerate's TensorBoardTracker imports torch.utils.tensorboard, which needs this package
    "tensorboard": ("i2i/engine/tracking.py", 'get_tracker("tensorboard"'),
    # a pytest plugin: configured, never imported
    "pytest-timeout": ("pyproject.toml", "\ntimeout = "),
}
"""Declared distributions that a library loads for us: (file, text in it that needs them). When
the text is gone, the entry is stale and the test says so."""


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(spec: str) -> str:
    """``"torch>=2.6"``, ``"foo[bar]; python_version<'3.12'"`` -> ``torch``, ``foo``."""
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
    if not m:
        raise ValueError(f"pyproject.toml: cannot read a distribution name in {spec!r}")
    return normalise(m.group(1))


def import_names(dist: str) -> tuple[str, ...]:
    return IMPORT_NAMES.get(dist, (dist.replace("-", "_"),))


def imported_modules(text: str) -> set[str]:
    """Top-level names of the absolute imports in ``text``, lazy ones and literal ``import_module`` included."""
    found = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and ((isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                   or (isinstance(node.func, ast.Name) and node.func.id == "__import__"))):
            found.add(node.args[0].value.split(".")[0])
    return found


def third_party(files: Mapping[str, str], local: set[str]) -> dict[str, set[str]]:
    """{module: files importing it} for modules that are neither stdlib nor local."""
    out: dict[str, set[str]] = {}
    for path, text in files.items():
        for mod in imported_modules(text) - set(sys.stdlib_module_names) - local:
            if mod:
                out.setdefault(mod, set()).add(path)
    return out


def problems(pyproject: Mapping, package: Mapping[str, str], tests: Mapping[str, str],
             read: Mapping[str, str] | None = None) -> list[str]:
    """Everything wrong between ``pyproject`` (parsed) and the sources ({path: text}).

    ``package``: the files of i2i/ and tools/; ``tests``: those of tests/. ``read`` gives the
    text of the files named in :data:`INDIRECT` (defaults to reading them from the checkout).
    """
    project = pyproject.get("project", {})
    runtime = {requirement_name(s) for s in project.get("dependencies", [])}
    dev = {requirement_name(s) for s in project.get("optional-dependencies", {}).get("dev", [])}
    local = {"i2i"} | {Path(p).stem for p in [*package, *tests]}
    used_pkg, used_tests = third_party(package, local), third_party(tests, local)
    provider = {name: d for d in runtime | dev for name in import_names(d)}

    def where(files: Iterable[str]) -> str:
        return ", ".join(sorted(files)[:3])

    out = []
    for dist in sorted(runtime):
        if dist in INDIRECT:
            continue
        if not set(import_names(dist)) & set(used_pkg):
            out.append(f"pyproject.toml: dependency {dist!r} is not imported by i2i/ or tools/ "
                       f"(looked for {', '.join(import_names(dist))}); remove it, or list it in INDIRECT")
    for dist in sorted(dev - runtime):
        if dist in INDIRECT:
            continue
        if not set(import_names(dist)) & set(used_tests):
            out.append(f"pyproject.toml: [dev] dependency {dist!r} is not imported by tests/; remove it")
    for mod, files in sorted(used_pkg.items()):
        dist = provider.get(mod)
        if dist is None:
            out.append(f"{where(files)}: imports {mod!r}, which pyproject.toml does not declare")
        elif dist not in runtime:
            out.append(f"{where(files)}: imports {mod!r}, but {dist!r} is only a [dev] dependency")
    for mod, files in sorted(used_tests.items()):
        if mod not in provider:
            out.append(f"{where(files)}: imports {mod!r}, which pyproject.toml does not declare (add it to [dev])")
    for dist, (path, needle) in sorted(INDIRECT.items()):
        if dist not in runtime | dev:
            continue
        text = read[path] if read is not None else (ROOT / path).read_text()
        if needle not in text:
            out.append(f"{path}: no longer contains {needle!r}, the reason {dist!r} is declared; "
                       "remove the dependency or update INDIRECT")
    return out


PEER_SCRIPTS = ROOT / "tools" / "peers"
"""Scripts run only by the bench venv's own python (tools/bench_peers.py starts them): they import the
peers' code (realesrgan, basicsr), which must never become an i2i dependency, so they are not scanned
(tests/e2e/test_layers.py checks that nothing in i2i/ or tools/ imports them)."""


def _sources(*folders: str) -> dict[str, str]:
    return {str(p.relative_to(ROOT)): p.read_text() for f in folders for p in sorted((ROOT / f).rglob("*.py"))
            if PEER_SCRIPTS not in p.parents}


PEER_MODULES = ("realesrgan", "basicsr", "peers")


def peer_imports(files: Mapping[str, str]) -> list[str]:
    """``file: module`` for each import of the peers' code (or of tools/peers) in ``files``."""
    return [f"{name}: {mod}" for name, text in files.items() for mod in sorted(imported_modules(text))
            if mod in PEER_MODULES or mod == "tools" and "tools.peers" in text]


def test_nothing_imports_the_peers_code() -> None:
    """Real-ESRGAN / BasicSR run only in the bench venv, through tools/peers/ as subprocesses."""
    assert (PEER_SCRIPTS / "realesrgan_peer.py").is_file()
    assert not peer_imports({**_sources("i2i", "tools"), **_sources("tests")})
    assert peer_imports({"tools/x.py": "def f():\n    from basicsr.archs.rrdbnet_arch import RRDBNet\n",
                         "i2i/y.py": "import realesrgan\n", "tools/z.py": "from tools.peers import realesrgan_peer\n"}) == [
        "tools/x.py: basicsr", "i2i/y.py: realesrgan", "tools/z.py: tools"]


def test_pyproject_matches_the_imports() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    found = problems(pyproject, _sources("i2i", "tools"), _sources("tests"))
    assert not found, "\n".join(found)


def test_import_names_match_the_installed_metadata() -> None:
    """IMPORT_NAMES cannot lie: each installed declared distribution provides the names given."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = pyproject["project"]
    declared = {requirement_name(s) for s in project["dependencies"] + project["optional-dependencies"]["dev"]}
    by_module = importlib.metadata.packages_distributions()
    checked = 0
    for dist in sorted(declared - set(INDIRECT)):
        for name in import_names(dist):
            owners = {normalise(d) for d in by_module.get(name, [])}
            if not owners:
                continue  # not installed here (e.g. a package the GPU test machine lacks)
            assert dist in owners, f"{name!r} is provided by {sorted(owners)}, not by {dist!r}: fix IMPORT_NAMES"
            checked += 1
    assert checked >= 10  # the check ran on this environment's packages


FAKE = {
    "project": {
        "dependencies": ["torch>=2.6", "unusedlib==1.0", "opencv-python-headless>=4", "tensorboard"],
        "optional-dependencies": {"dev": ["pytest>=8", "hypothesis", "unused-dev-tool"]},
    }
}


def test_the_check_fails_on_each_kind_of_mismatch() -> None:
    """The check can fail: a fake pyproject and sources with one of each mistake."""
    package = {
        "i2i/a.py": "import os\nimport torch\nfrom . import b\n\ndef f():\n    import cv2\n    import hypothesis\n",
        "i2i/b.py": "import importlib\n\ndef g():\n    return importlib.import_module('undeclared_mod.sub')\n",
        "tools/t.py": "from i2i.data import io\nimport b\n",
    }
    tests = {"tests/test_a.py": "import pytest\nimport hypothesis\nimport torch\nimport mystery\nfrom conftest import X\n",
             "tests/conftest.py": "import pytest\n"}
    read = {"i2i/engine/tracking.py": "nothing about that tracker here\n"}
    found = problems(FAKE, package, tests, read)
    assert found == [
        "pyproject.toml: dependency 'unusedlib' is not imported by i2i/ or tools/ (looked for unusedlib); "
        "remove it, or list it in INDIRECT",
        "pyproject.toml: [dev] dependency 'unused-dev-tool' is not imported by tests/; remove it",
        "i2i/a.py: imports 'hypothesis', but 'hypothesis' is only a [dev] dependency",
        "i2i/b.py: imports 'undeclared_mod', which pyproject.toml does not declare",
        "tests/test_a.py: imports 'mystery', which pyproject.toml does not declare (add it to [dev])",
        "i2i/engine/tracking.py: no longer contains 'get_tracker(\"tensorboard\"', the reason 'tensorboard' is "
        "declared; remove the dependency or update INDIRECT",
    ], found
    # and a consistent set passes: the lazy cv2 import counts as the use of opencv-python-headless
    ok = {"project": {"dependencies": ["torch", "opencv-python-headless"], "optional-dependencies": {"dev": ["pytest"]}}}
    assert problems(ok, {"i2i/a.py": "import torch\n\ndef f():\n    import cv2\n"},
                    {"tests/test_a.py": "import pytest\nimport torch\n"}) == []


def test_requirement_names_and_import_walker() -> None:
    assert [requirement_name(s) for s in ("torch>=2.6", "Pillow>=10", "PyYAML", "foo_bar[x]; python_version<'3.12'",
                                          "scikit-image >= 0.22")] == ["torch", "pillow", "pyyaml", "foo-bar",
                                                                       "scikit-image"]
    with pytest.raises(ValueError, match="cannot read a distribution name"):
        requirement_name(">=1.0")
    text = ("import a.b, c\nfrom d.e import f\nfrom . import g\nfrom .h import i\n\ndef j():\n    import k\n"
            "    __import__('l.m')\n    importlib.import_module(name)\n")
    assert imported_modules(text) == {"a", "c", "d", "k", "l"}


# the GPU test machine has torch, accelerate, timm, scipy, scikit-image, onnx and onnxruntime,
# but none of these: every module must still import, and the GPU check must still start
ABSENT_ON_GPU_MACHINE = ("kornia", "albumentations", "wandb", "cv2")


def test_modules_and_gpu_check_import_without_optional_packages() -> None:
    script = textwrap.dedent(f"""
        import importlib, pkgutil, runpy, sys
        sys.path.insert(0, {str(ROOT)!r})
        BLOCKED = {ABSENT_ON_GPU_MACHINE!r}

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)")

        for m in list(sys.modules):
            if m.split(".")[0] in BLOCKED:
                del sys.modules[m]
        sys.meta_path.insert(0, Block())
        import i2i
        names = [m.name for m in pkgutil.walk_packages(i2i.__path__, "i2i.")]
        for name in names:
            importlib.import_module(name)
        assert not [m for m in sys.modules if m.split(".")[0] in BLOCKED]
        print(len(names), "modules")
        sys.argv = ["gpu_check.py", "--help"]
        runpy.run_path({str(ROOT / "tools" / "gpu_check.py")!r}, run_name="__main__")
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    n = int(r.stdout.split(" modules")[0].split()[-1])
    assert n >= 50 and "usage: gpu_check.py" in r.stdout, r.stdout[-2000:]
