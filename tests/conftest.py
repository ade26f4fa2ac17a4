"""Test-wide settings: offline W&B, a private cache, and small shared fixtures."""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_CACHE = tempfile.mkdtemp(prefix="i2i-test-cache-")
os.environ.setdefault("I2I_CACHE", _CACHE)
os.environ["WANDB_MODE"] = "offline"
os.environ["WANDB_SILENT"] = "true"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402
import torch  # noqa: E402

CUDA = torch.cuda.is_available()
# Device-dependent tests take the `device` fixture: CPU always, CUDA too when present (marked
# `cuda`, so `pytest -m cuda` runs just those). CPU-only CI runs exactly the CPU cases.
DEVICES = ["cpu"] + ([pytest.param("cuda", marks=pytest.mark.cuda)] if CUDA else [])


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> torch.device:
    return torch.device(request.param)


@pytest.fixture
def train_device(device: torch.device, monkeypatch: pytest.MonkeyPatch):
    """The Trainer on ``device``. Accelerate takes CUDA whenever it is present, so the CPU case
    sets ``ACCELERATE_USE_CPU`` there; Accelerate's process-wide state is reset around the test."""
    from accelerate.state import AcceleratorState

    if device.type == "cpu" and CUDA:
        monkeypatch.setenv("ACCELERATE_USE_CPU", "true")
    AcceleratorState._reset_state(reset_partial_state=True)
    yield device
    AcceleratorState._reset_state(reset_partial_state=True)


def tool(name: str) -> list[str]:
    return [sys.executable, str(ROOT / "tools" / f"{name}.py")]


def load_tool(name: str):  # noqa: ANN201
    """``tools/<name>.py`` as a module (the tools are scripts, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"i2i_{name}", ROOT / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[f"i2i_{name}"] = mod  # dataclasses in the tool look their module up here
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def tiny_acgan_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 30-step ACGAN run on the embedded digits (checkpoint + export), shared by tool tests."""
    from i2i.config import load_config
    from i2i.engine.trainer import Trainer

    out = tmp_path_factory.mktemp("acgan_run")
    cfg = load_config(ROOT / "tasks" / "acgan_mnist.yaml",
                      ["train.max_steps=30", "train.ckpt_every=10", "logging.tracker=none", "logging.progress=false",
                       "eval.every=0", "eval.at_end=false", "logging.sample_every=0", "models.generator.base_channels=16",
                       "models.discriminator.base_channels=16"])
    Trainer(cfg, output_dir=out).fit()
    return out


# The tiny CGAN of the run-format and reliability tests (tests/test_runs.py, tests/e2e/test_reliability.py):
# a resume must use the same settings, so they are shared here.
TINY_CGAN = ["logging.tracker=none", "logging.progress=false", "eval.every=0", "eval.at_end=false",
             "logging.sample_every=0", "models.generator.base_channels=8", "models.discriminator.base_channels=8",
             "data.batch_size=8"]


@pytest.fixture(scope="session")
def tiny_cgan_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 CGAN steps on the embedded digits, checkpoints at steps 2 and 4, and the export; tests
    copy it before changing anything."""
    from i2i.config import load_config
    from i2i.engine.trainer import Trainer

    out = tmp_path_factory.mktemp("run4")
    Trainer(load_config(ROOT / "tasks/cgan_mnist.yaml", TINY_CGAN + ["train.max_steps=4", "train.ckpt_every=2"]),
            output_dir=out).fit()
    return out


def check_digit_networks(name: str, num_classes: int) -> None:
    """A digit generator/discriminator pair built by name: shapes, [-1, 1] range, gradients, the
    auxiliary head, and the conditional G refusing a call without labels (tests/test_nn_dcgan.py, _mlp.py)."""
    import i2i
    from i2i.registry import GENERATORS

    torch.manual_seed(0)
    G = GENERATORS.build({"type": name, "z_dim": 16, "num_classes": num_classes})
    D = i2i.DISCRIMINATORS.build({"type": name, "num_classes": num_classes})
    Daux = i2i.DISCRIMINATORS.build({"type": name, "aux_classes": 10})
    z = torch.randn(4, 16)
    y = torch.tensor([0, 3, 7, 9])
    x = G(z, y) if num_classes else G(z)
    assert x.shape == (4, 1, 28, 28)
    assert x.min() >= -1 and x.max() <= 1
    logit = D(x, y) if num_classes else D(x)
    assert logit.shape == (4,)
    adv, cls = Daux(x)
    assert adv.shape == (4,) and cls.shape == (4, 10)
    (logit.sum() + adv.sum() + cls.sum()).backward()
    grads = [p.grad for p in G.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    if num_classes:
        with pytest.raises(ValueError, match="conditional"):
            G(z)


def eval_one_and_two_processes(task: str, checkpoint: Path, cwd: Path, *extra: str) -> tuple[dict, dict, str]:
    """``tools/eval.py --json`` in one process and under ``accelerate launch --cpu --num_processes 2``:
    both runs must succeed; returns (one's JSON, two's JSON, two's stdout)."""
    import json
    import subprocess

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    base = [str(ROOT / "tools" / "eval.py"), "--task", task, "--checkpoint", str(checkpoint), "--json", *extra]
    one = subprocess.run([sys.executable, *base], capture_output=True, text=True, env=env, timeout=300)
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "2", "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(29500 + os.getpid() % 500)]
    two = subprocess.run([*launch, *base], capture_output=True, text=True, env=env, timeout=300, cwd=cwd)
    assert one.returncode == 0 and two.returncode == 0, (one.stderr + two.stderr)[-2000:]
    return json.loads(one.stdout.strip().splitlines()[-1]), json.loads(two.stdout.strip().splitlines()[-1]), two.stdout


def fashion_like(root: Path) -> Path:
    """(tests/e2e/test_cyclegan_train.py, tests/test_apps_cyclegan.py) MNIST-format IDX files: 10 random 28×28 images each of labels 7 and 9 (and some 1s)."""
    root.mkdir(parents=True)
    import gzip
    import struct

    import numpy as np

    def write_idx(path: Path, array: np.ndarray) -> None:
        with gzip.open(path, "wb") as f:
            f.write(struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
                    + array.astype(np.uint8).tobytes())

    rng = np.random.default_rng(1)
    labels = np.array([7, 9, 1] * 10, np.uint8)
    for prefix in ("train", "t10k"):
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (30, 28, 28), dtype=np.uint8))
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return root


# One tiny network per task family (tests/test_onnx_export.py, tests/test_card.py): random weights, fast.
TINY_PER_TASK = {
    "gan_mnist": ["models.generator.hidden=[16, 32]", "models.discriminator.hidden=[32, 16]"],
    "cgan_mnist": ["models.generator.base_channels=8", "models.discriminator.base_channels=8"],
    "srresnet": ["models.generator.width=8", "models.generator.num_blocks=1", "train.init={}"],
    "pix2pix_sketch2photo": ["models.generator={type: unet, in_channels: 1, num_downs: 4, base_channels: 8}",
                             "models.discriminator.base_channels=8", "models.discriminator.n_layers=1"],
    "segmentation_baseline": ["models.generator.width=4", "models.generator.depth=2"],
    "cyclegan_fashion": ["models.generator_ab.base_channels=4", "models.generator_ba.base_channels=4",
                         "models.discriminator_a.base_channels=4", "models.discriminator_b.base_channels=4"],
}


def write_tiny_sr_export(out: Path, config: dict | None = None, scale: int = 4) -> Path:
    """A tiny ×``scale`` SRResNet export (8 channels, 1 block; milliseconds per image), seed 0, at ``out``."""
    from i2i.nn.srresnet import SRResNet
    from i2i.runs import write_export

    torch.manual_seed(0)
    net = SRResNet(scale=scale, width=8, num_blocks=1).eval()
    spec = {"type": "srresnet", "scale": scale, "width": 8, "num_blocks": 1, "batch_norm": True}
    info = {"format": "i2i-export", "version": 1, "task": "sr", "recipe": {"type": "sr", "scale": scale},
            "models": {"generator": spec}, "meta": {"scale": scale}, "config": config or {}}
    write_export(out, {"generator": net.state_dict()}, info)
    return out
