"""The installed commands (``[project.scripts]`` in pyproject.toml) and the bodies of ``tools/*.py``.

    i2i-train  tasks/acgan_mnist.yaml train.max_steps=200      (or a packaged task's name: acgan_mnist)
    i2i-infer  --task sr photo.jpg -o out/
    i2i-eval   --task acgan --checkpoint runs/x --json
    i2i-export runs/x --format onnx | pretrained [--push-to-hub owner/name]
    i2i-demo   [--checkpoint runs/x] [--port 7860]

Each ``*_main(argv) -> exit code`` is what ``tools/<name>.py`` runs too (``accelerate launch
tools/train.py …`` keeps working); the entry points wrap them in :func:`i2i.cli.run` (one-line
errors, exit codes).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .cli import run

TASKS_DIR = Path(__file__).resolve().parent / "tasks"


def find_config(name: str) -> str:
    """A config path as given, else a packaged task (``acgan_mnist`` or ``acgan_mnist.yaml``)."""
    if Path(name).expanduser().exists():
        return name
    packaged = TASKS_DIR / (name if name.endswith((".yaml", ".yml")) else f"{name}.yaml")
    return str(packaged) if packaged.is_file() else name


# ----------------------------------------------------------------------------- train
def _list_registries() -> None:
    from . import data, losses, nn, recipes  # noqa: F401  (fill the registries)
    from .engine import optim  # noqa: F401
    from .registry import ALL, describe

    for kind, reg in ALL.items():
        print(f"{kind}:")
        for name in reg.list():
            print(f"  {name}({describe(reg.get(name))})")


def train_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="i2i-train", description="Train an i2i recipe (see README).")
    p.add_argument("config", nargs="?", help="tasks/<recipe>.yaml, or a packaged task's name (acgan_mnist)")
    p.add_argument("overrides", nargs="*", help="dotted overrides: train.max_steps=200 data.root=/path")
    p.add_argument("--output-dir", help="run directory (default runs/<name>-<time>)")
    p.add_argument("--resume", nargs="?", const=True, default=None,
                   help="continue from the latest checkpoint of --output-dir, or from PATH (run dir or checkpoint)")
    p.add_argument("--fast", action="store_true",
                   help="train.fast=true: the device's numerically safe speed-ups (bf16/fp16 autocast where native, "
                        "channels_last, fused optimizers); explicit train.* keys win")
    p.add_argument("--list", action="store_true", help="list registered networks, losses, datasets, recipes")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    args = p.parse_intermixed_args(argv)
    if args.list:
        _list_registries()
        return 0
    if not args.config:
        p.error("a config file is required (or --list)")
    from .config import load_config
    from .engine.trainer import Trainer

    overrides = (["train.fast=true"] if args.fast else []) + args.overrides  # a later train.fast=false wins
    cfg = load_config(find_config(args.config), overrides)
    trainer = Trainer(cfg, output_dir=args.output_dir, resume=args.resume)
    run_dir = trainer.fit()
    if trainer.is_main:
        print(f"run directory: {run_dir}")
    return 0


# ----------------------------------------------------------------------------- infer / eval
def infer_main(argv: list[str]) -> int:
    from .apps import prepare

    ready = prepare(argv, "infer")
    if ready is None:
        return 0
    app, model, args, _ = ready
    return app.infer(model, args)


def _print_table(metrics: dict) -> None:
    width = max((len(k) for k in metrics), default=0)
    for k, v in metrics.items():
        if isinstance(v, (list, dict)):
            continue
        print(f"{k:<{width}}  {v:.4f}" if isinstance(v, float) else f"{k:<{width}}  {v}")


def eval_main(argv: list[str]) -> int:
    from .apps import prepare

    def tool_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data", help="data folder (default: the recipe's own validation/test split)")
        p.add_argument("--json", action="store_true", help="print one JSON object as the last stdout line")

    ready = prepare(argv, "eval", tool_args)
    if ready is None:
        return 0
    app, model, args, task = ready
    metrics = {"task": task, "checkpoint": str(model.path), **app.evaluate(model, args)}
    if int(os.environ.get("RANK", "0")) != 0:  # multi-process: the main process reports
        return 0
    if args.json:
        print(json.dumps(metrics))
    else:
        _print_table(metrics)
    return 0


# ----------------------------------------------------------------------------- export
def export_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="i2i-export", description="Export a trained model: ONNX, or a Hugging Face-style folder.")
    p.add_argument("model", help="a run directory, export, checkpoint or pretrained folder")
    p.add_argument("--format", choices=["onnx", "pretrained"], required=True,
                   help="onnx: <slot>.onnx per inference network (checked with onnxruntime); "
                        "pretrained: config.json + <slot>/model.safetensors + model card README.md")
    p.add_argument("-o", "--output", help="folder (default: <model>/onnx or <model>/pretrained)")
    p.add_argument("--name", help="the model card's title (pretrained)")
    p.add_argument("--push-to-hub", metavar="REPO_ID", help="upload the pretrained folder to the Hugging Face Hub")
    p.add_argument("--private", action="store_true", help="with --push-to-hub: a private repo")
    p.add_argument("--debug", action="store_true")
    args = p.parse_args(argv)
    src = Path(args.model).expanduser()
    out = Path(args.output).expanduser() if args.output else src / args.format
    if args.format == "onnx":
        from .inference import load_model
        from .onnx_export import export_onnx

        for e in export_onnx(load_model(src, device="cpu"), out):
            print(f"{e.path}  inputs: {', '.join(e.inputs)}  onnxruntime vs PyTorch: max |diff| {e.max_abs_diff:.2g} "
                  f"(output range {e.value_range:.3g})")
        return 0
    from .hub import push_to_hub, save_pretrained

    folder = save_pretrained(src, out, name=args.name)
    print(f"pretrained folder: {folder}")
    if args.push_to_hub:
        print(f"uploaded: {push_to_hub(folder, args.push_to_hub, private=args.private)}")
    return 0


# ----------------------------------------------------------------------------- demo
def demo_main(argv: list[str]) -> int:
    """``i2i-demo``: the Gradio page (:mod:`i2i.apps.demo`); serves until interrupted."""
    from .apps.demo import main

    return main(argv)


# ----------------------------------------------------------------------------- entry points
def _entry(main: object, name: str) -> None:
    from .distributed import relaunch_cpu_workers

    if name in ("train", "eval"):  # accelerate launch --cpu --num_processes N
        code = relaunch_cpu_workers(None, [name, *sys.argv[1:]], module=__name__)
        if code is not None:
            sys.exit(code)
    sys.exit(run(main))  # type: ignore[arg-type]


def train() -> None:
    _entry(train_main, "train")


def infer() -> None:
    _entry(infer_main, "infer")


def evaluate() -> None:
    _entry(eval_main, "eval")


def export() -> None:
    _entry(export_main, "export")


def demo() -> None:
    _entry(demo_main, "demo")


if __name__ == "__main__":  # python -m i2i.commands train … (how relaunched CPU workers start)
    MAINS = {"train": train_main, "infer": infer_main, "eval": eval_main, "export": export_main, "demo": demo_main}
    sys.exit(run(MAINS[sys.argv[1]], sys.argv[2:]))
