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
from .errors import ConfigError

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
    p.add_argument("--overwrite", action="store_true",
                   help="the run directory holds an earlier run: move it aside to <dir>.old-<time> (never deleted) and start afresh")
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
    trainer = Trainer(cfg, output_dir=args.output_dir, resume=args.resume, overwrite=args.overwrite)
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
    from .apps.video import job_options

    with job_options(args):  # --codec, --batch, --resume, … for the file loop (i2i/apps/video.py)
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
    p.add_argument("model", help="a run directory, export, checkpoint or pretrained folder, or a shipped model's name (srresnet_x4)")
    p.add_argument("--format", choices=["onnx", "pretrained", "peer"], required=True,
                   help="onnx: <slot>.onnx per inference network (checked with onnxruntime); "
                        "pretrained: config.json + <slot>/model.safetensors + model card README.md; "
                        "peer: one .pth in the original project's layout (Real-ESRGAN for rrdbnet/srvgg_compact, BasicSR "
                        "for msrresnet/edsr, "
                        "pix2pix/CycleGAN for unet*/resnet*), -o FILE")
    p.add_argument("--slot", default=None, help="peer: the network to write (default: generator; CycleGAN: generator_ab or "
                                                "generator_ba)")
    p.add_argument("-o", "--output", help="folder (default: <model>/onnx or <model>/pretrained; ./<name>_<format> for a shipped "
                                          "model, ./<stem>_<format> for one weights file)")
    p.add_argument("--name", help="the model card's title (pretrained)")
    p.add_argument("--push-to-hub", metavar="REPO_ID", help="upload the pretrained folder to the Hugging Face Hub")
    p.add_argument("--private", action="store_true", help="with --push-to-hub: a private repo")
    p.add_argument("--interpolate", metavar="MODEL_B",
                   help="ESRGAN's network interpolation with a second model of the same networks: (1 - alpha)·MODEL + "
                        "alpha·MODEL_B, written as a pretrained folder")
    p.add_argument("--alpha", type=float, default=0.8, help="with --interpolate: MODEL_B's share, in [0, 1] (default 0.8)")
    p.add_argument("--debug", action="store_true")
    args = p.parse_args(argv)
    from .inference import resolve_name

    if args.interpolate:
        from .hub import interpolate_pretrained

        if args.format != "pretrained":
            raise ConfigError("writes a pretrained folder: use --format pretrained (then export that folder to ONNX)",
                              "--interpolate")
        if not args.output:
            raise ConfigError("name the new folder with -o", "--interpolate")
        folder = interpolate_pretrained(args.model, args.interpolate, args.alpha, args.output, name=args.name)
        print(f"pretrained folder: {folder} ((1 - {args.alpha:g})·{args.model} + {args.alpha:g}·{args.interpolate})")
        return 0
    src = resolve_name(args.model)  # a shipped model's name too (srresnet_x4)
    if args.format == "peer":
        if not args.output:
            raise ConfigError("--format peer writes one file: give it with -o FILE.pth")
        path = export_peer(src, Path(args.output).expanduser(), args.slot)
        print(f"wrote {path}")
        return 0
    shipped = src != Path(args.model).expanduser()  # then never write into the installed package: ./<name>_<format>
    if src.is_file():  # one weights file made by another project: ./<stem>_<format>, never inside the file
        default = Path(f"{src.stem}_{args.format}")
    else:
        default = Path(f"{args.model}_{args.format}") if shipped else src / args.format
    out = Path(args.output).expanduser() if args.output else default
    if args.format == "onnx":
        from .inference import load_model
        from .onnx_export import export_onnx, is_onnx_folder
        from .runs import check_output_folder

        model = load_model(src, device="cpu")
        check_output_folder(out, [src, model.path], is_onnx_folder, "ONNX export")  # replaces only earlier .onnx files
        for e in export_onnx(model, out):
            print(f"{e.path}  inputs: {', '.join(e.inputs)}  (contract in {e.path.with_suffix('.json').name} and the file's "
                  f"metadata); checked with onnxruntime: max |ONNX - PyTorch| {e.max_abs_diff:.2g} on a test input")
        return 0
    from .hub import push_to_hub, save_pretrained, save_pretrained_file

    folder = (save_pretrained_file if src.is_file() else save_pretrained)(src, out, name=args.name)
    print(f"pretrained folder: {folder}")
    if args.push_to_hub:
        print(f"uploaded: {push_to_hub(folder, args.push_to_hub, private=args.private)}")
    return 0


REAL_ESRGAN_TYPES = ("rrdbnet", "srvgg_compact", "msrresnet", "edsr")  # msrresnet / edsr: BasicSR's keys, same wrapper
JUNYANZ_TYPES = ("unet", "unet_128", "unet_256", "resnet_generator", "resnet_6blocks", "resnet_9blocks")


def export_peer(src: Path, out: Path, slot: str | None = None) -> Path:
    """``i2i-export MODEL --format peer -o FILE``: one network's weights in the original project's
    layout, loadable by its own code and by spandrel: ``{"params_ema": state_dict}`` (Real-ESRGAN's
    and BasicSR's release layout; i2i's ``rrdbnet`` / ``srvgg_compact`` / ``msrresnet`` / ``edsr``
    keys are theirs) or a plain
    state dict in junyanz/pytorch-CycleGAN-and-pix2pix's layout (:func:`i2i.junyanz.to_junyanz`).
    An existing ``out`` is never replaced; the file is written to a temporary name and renamed."""
    import torch

    from .junyanz import to_junyanz
    from .runs import build_network, read_saved

    if out.exists() or out.is_symlink():
        raise ConfigError(f"{out}: already exists")
    saved = read_saved(src)
    slot = slot or ("generator" if "generator" in saved.specs else "")
    if slot not in saved.specs:
        raise ConfigError(f"{src}: no network {slot!r} (networks: {', '.join(saved.specs)})", "slot")
    kind = str(saved.specs[slot].get("type"))
    if kind in REAL_ESRGAN_TYPES:
        payload: dict = {"params_ema": {k: v.detach().clone().contiguous() for k, v in saved.weights[slot].items()}}
    elif kind in JUNYANZ_TYPES:
        payload = to_junyanz(build_network(saved, slot, torch.device("cpu")), f"{src}: {slot}")
    else:
        raise ConfigError(f"{src}: a {kind} network has no peer layout (only {', '.join(REAL_ESRGAN_TYPES + JUNYANZ_TYPES)})",
                          "format")
    if not out.parent.is_dir():
        raise ConfigError(f"{out.parent}: no such folder")
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    from .runs import writing

    try:
        with writing(out):  # disk full, read-only: '<path>: cannot write: <reason>'
            torch.save(payload, tmp)
            os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


# ----------------------------------------------------------------------------- demo
def demo_main(argv: list[str]) -> int:
    """``i2i-demo``: the Gradio page (:mod:`i2i.apps.demo`); serves until interrupted."""
    from .apps.demo import main

    return main(argv)


# ----------------------------------------------------------------------------- entry points
def _entry(main: object, name: str) -> None:
    from .distributed import relaunch_cpu_workers

    if name in ("train", "eval", "infer"):  # accelerate launch --cpu --num_processes N
        code = relaunch_cpu_workers(None, [name, *sys.argv[1:]], module=__name__)
        if code is not None:
            sys.exit(code)
    from .distributed import worker_exit

    sys.exit(worker_exit(run(main)))  # type: ignore[arg-type]


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
    from .distributed import relaunch_cpu_workers, worker_exit

    # accelerate launch --cpu --num_processes N -m i2i.commands infer …: the workers, as _entry starts them
    code = None
    if sys.argv[1] in ("train", "eval", "infer"):
        code = relaunch_cpu_workers(None, sys.argv[1:], module="i2i.commands")
    sys.exit(code if code is not None else worker_exit(run(MAINS[sys.argv[1]], sys.argv[2:])))
