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


def tool(name: str) -> list[str]:
    return [sys.executable, str(ROOT / "tools" / f"{name}.py")]


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
