"""Task front-ends for ``tools/infer.py`` and ``tools/eval.py``.

Each module exposes ``add_infer_args(parser)``, ``infer(model, args) -> int``,
``add_eval_args(parser)`` and ``evaluate(model, args) -> dict`` for one task family.
"""
from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any, Literal

from ..errors import I2IError
from ..task_table import TASKS

APPS = {name: t.app for name, t in TASKS.items()}
"""task -> front-end module, from the task table."""


def get_app(task: str) -> ModuleType:
    if task not in APPS:
        raise I2IError(f"no front-end for task {task!r}; available: {', '.join(APPS)}")
    try:
        return importlib.import_module(f"{__name__}.{APPS[task]}")
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith(__name__):
            raise I2IError(f"task {task!r} is not available in this version") from None
        raise


def prepare(argv: list[str], kind: Literal["infer", "eval"],
            add_args: Callable[[argparse.ArgumentParser], None] | None = None) -> tuple[ModuleType, Any, argparse.Namespace, str] | None:
    """What tools/infer.py and tools/eval.py share: find the task, load the model, parse the flags.

    ``--task`` and/or ``--checkpoint`` decide the front-end, whose own flags are then added
    (``add_infer_args`` / ``add_eval_args``) after the tool's (``add_args``). ``--fast``
    swaps in :func:`i2i.perf.fast_inference` (BN left unfolded where pix2pix's
    ``--batch-stats`` needs it; the front-end's ``probe_input(model)``, where it has one,
    lets CUDA pick fp16 over bf16). ``--device`` (default: CUDA when present, see
    :func:`i2i.perf.resolve_device`) is resolved once and left in ``args.device`` as a
    ``torch.device``, for front-ends that build an Accelerator. Returns ``(app, model, args, task)`` (task: the front-end's
    name, aliases resolved), or None after printing the help of a tool called with ``--help`` alone.
    """
    from ..inference import DEFAULT_SHIPPED, SHIPPED_MODELS, TASK_ALIASES, load_model, shipped_model
    from ..perf import resolve_device

    from .habits import overview, translate

    if kind == "infer":
        argv = translate(argv)  # Real-ESRGAN's -i/-n/-s/-t/--half/--fp32/-g (i2i/apps/habits.py)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--task", help=f"one of {', '.join(TASKS)} (or an alias); optional with --checkpoint")
    pre.add_argument("--checkpoint")
    pre.add_argument("--model", default=None, metavar="NAME",
                     help=f"a model shipped with i2i instead of --checkpoint: {', '.join(SHIPPED_MODELS)} "
                          f"(default without --checkpoint: {', '.join(f'{t} {n}' for t, n in DEFAULT_SHIPPED.items())})")
    pre.add_argument("--fast", action="store_true",
                     help="fastest measured configuration: BN folded, channels_last, autocast (bf16 where native)")
    pre.add_argument("--device", default=None,
                     help="cpu, cuda or cuda:N (default: CUDA when present, else the CPU)")
    known, _ = pre.parse_known_args(argv)
    if known.model is not None:
        if known.checkpoint is not None:
            pre.error("give --model or --checkpoint, not both")
        known.checkpoint = str(shipped_model(known.model))
    device = resolve_device(known.device)
    model = None
    task = TASK_ALIASES.get(known.task, known.task) if known.task else None
    if task is None:
        if known.checkpoint is None:
            if any(a in ("-h", "--help") for a in argv):
                print(overview("i2i-infer" if kind == "infer" else "i2i-eval"))
                return None
            pre.error("give --task and/or --checkpoint")
        model = load_model(known.checkpoint, device=device, with_discriminator=True)
        task = model.card.task
    app = get_app(task)
    p = argparse.ArgumentParser(description=f"i2i {'inference' if kind == 'infer' else 'evaluation'} ({task})",
                                parents=[pre])
    if add_args is not None:
        add_args(p)
    p.add_argument("--debug", action="store_true")
    getattr(app, f"add_{kind}_args")(p)
    args = p.parse_args(argv)
    args.checkpoint = known.checkpoint
    if model is None:
        model = load_model(args.checkpoint, task=args.task, device=device, with_discriminator=True)
    args.device = device
    from ..perf import release_free_memory

    release_free_memory()  # the file's state dict, read and copied into the network: back to the system
    if args.fast:  # BN with batch statistics (pix2pix --batch-stats) must stay a BN
        probe = app.probe_input(model) if hasattr(app, "probe_input") else None
        model.fast(fold_bn=not getattr(args, "batch_stats", False), probe=probe)
    return app, model, args, task
