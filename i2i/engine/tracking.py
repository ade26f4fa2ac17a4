"""Logging: W&B or TensorBoard through Accelerate's trackers, plus a plain metrics.jsonl.

W&B runs offline unless the user has configured it (``WANDB_API_KEY``, a ``wandb login``
entry in ~/.netrc, or ``WANDB_MODE`` set) or the config says ``logging.wandb_mode: online``.
The offline run lives in ``<run>/wandb/offline-run-*`` and can be uploaded later with
``wandb sync``. ``metrics.jsonl`` is written whatever the tracker: the plots, the tests
and exact-resume checks read it.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch


def wandb_mode(setting: str) -> str:
    if setting != "auto":
        return setting
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    netrc = Path.home() / ".netrc"
    if netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore"):
        return "online"
    return "offline"


def to_floats(values: list[Any]) -> list[float]:
    """Logged values (0-d tensors or numbers) as floats, with ONE device→host copy for all
    tensors: on a GPU each ``.item()`` would be a synchronisation of its own."""
    tensors = [v.detach().float().reshape(()) for v in values if isinstance(v, torch.Tensor)]
    host = iter(torch.stack(tensors).tolist() if tensors else [])
    return [next(host) if isinstance(v, torch.Tensor) else float(v) for v in values]


class MetricsLog:
    """Append-only ``metrics.jsonl``; on resume, entries after the resumed step are dropped."""

    def __init__(self, path: Path, resume_step: int | None = None):
        self.path = path
        if resume_step is not None and path.is_file():
            kept = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln).get("step", 0) <= resume_step]
            tmp = path.with_suffix(".tmp")
            tmp.write_text("".join(ln + "\n" for ln in kept))
            os.replace(tmp, path)

    def write(self, step: int, values: dict[str, float]) -> None:
        """Append one row (opened per write: a crash loses at most the row being written)."""
        row = {"step": step, **{k: (v if math.isfinite(v) else str(v)) for k, v in values.items()}}
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    p = Path(path)
    if p.is_dir():
        p = p / "metrics.jsonl"
    return [json.loads(ln) for ln in p.read_text().splitlines() if ln.strip()]


def log_images(accelerator: Any, tracker: str, name: str, grid: torch.Tensor, step: int) -> None:
    """``grid``: (3, H, W) float in [0, 1]."""
    if tracker == "wandb":
        import wandb

        run = accelerator.get_tracker("wandb", unwrap=True)
        img = (grid.clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
        run.log({name: wandb.Image(img)}, step=step)
    elif tracker == "tensorboard":
        writer = accelerator.get_tracker("tensorboard", unwrap=True)
        writer.add_image(name, grid.clamp(0, 1).cpu(), global_step=step)


def last_run(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The training rows (``g/total`` or ``d/loss``) of the last run in a log: where the step goes
    back (a log that an older i2i let a second run append to), the earlier run is dropped, so a
    plot draws one line per run, never a zig-zag of two."""
    rows = [r for r in rows if "g/total" in r or "d/loss" in r]
    starts = [i for i in range(1, len(rows)) if rows[i]["step"] <= rows[i - 1]["step"]]
    return rows[starts[-1]:] if starts else rows


def loss_panels(rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Panel title -> the keys drawn in it: G's loss terms, D's, and the gradient norms on their
    own axes (their scale, often 10-1000× the losses', would flatten the loss curves)."""
    keys = sorted({k for r in rows for k in r if k.startswith(("g/", "d/")) and k not in ("d/real", "d/fake")
                   and not k.startswith(("d/aux_acc",))})
    norms = [k for k in keys if "grad_norm" in k]
    panels = {"generator loss terms": [k for k in keys if k.startswith("g/") and k not in norms],
              "discriminator loss terms": [k for k in keys if k.startswith("d/") and k not in norms]}
    if norms:
        panels["gradient norms"] = norms
    return panels


def plot_curves(run_dir: Path) -> list[Path]:
    """loss_curves.png (every g/* and d/* term) and d_scores.png (mean D(real), D(fake))."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = last_run(read_metrics(run_dir / "metrics.jsonl"))
    if not rows:
        return []
    out_dir = run_dir / "plots"
    out_dir.mkdir(exist_ok=True)
    steps = np.array([r["step"] for r in rows])

    def series(key: str) -> np.ndarray:
        return np.array([r.get(key, np.nan) if isinstance(r.get(key), (int, float)) else np.nan for r in rows], dtype=float)

    def smooth(y: np.ndarray) -> np.ndarray:
        k = max(1, len(y) // 50)
        if k == 1:
            return y
        return np.convolve(np.nan_to_num(y), np.ones(k) / k, mode="same")

    written = []
    panels = loss_panels(rows)
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4))
    for ax, (title, panel_keys) in zip(axes, panels.items()):
        for k in panel_keys:
            y = series(k)
            ax.plot(steps, y, alpha=0.25)
            ax.plot(steps, smooth(y), label=k, color=ax.lines[-1].get_color())
        ax.set_title(title)
        ax.set_xlabel("step")
        if ax.lines:
            ax.legend(fontsize=8)
    fig.tight_layout()
    p = out_dir / "loss_curves.png"
    fig.savefig(p, dpi=100)
    plt.close(fig)
    written.append(p)
    if any("d/real" in r for r in rows):
        fig, ax = plt.subplots(figsize=(6, 4))
        for k, lab in (("d/real", "D(real)"), ("d/fake", "D(fake)")):
            y = series(k)
            ax.plot(steps, y, alpha=0.25)
            ax.plot(steps, smooth(y), label=lab, color=ax.lines[-1].get_color())
        ax.set_xlabel("step")
        ax.set_title("mean discriminator output")
        ax.legend()
        fig.tight_layout()
        p = out_dir / "d_scores.png"
        fig.savefig(p, dpi=100)
        plt.close(fig)
        written.append(p)
    return written
