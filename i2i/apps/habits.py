"""The flags people bring from Real-ESRGAN's ``inference_realesrgan.py``, and the full ``--help``.

:func:`translate` rewrites Real-ESRGAN's spellings into i2i's before parsing:

=====================  ==========================================================
Real-ESRGAN            i2i
=====================  ==========================================================
``-i/--input X``       ``X`` (an INPUT: file, folder or video)
``-o/--output D``      ``-o D`` (the same)
``-n/--model_name N``  ``--model N`` for a shipped name, ``--checkpoint N`` for a file or folder
``-s/--outscale F``    ``--outscale F``
``-t/--tile N``        ``--tile N``
``--fp32``             (the default: full precision)
``--half``             ``--fast`` (the overflow probe still guards fp16 on CUDA)
``--suffix S``         ``--suffix S`` (the same)
``--ext E``            ``--ext E`` (the same)
``-g/--gpu-id K``      ``--device cuda:K``
=====================  ==========================================================

Real-ESRGAN-only flags (``--face_enhance``, ``--denoise_strength``, ``--tile_pad``,
``--pre_pad``, ``--alpha_upsampler``) get one line saying why i2i has no such flag.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError

__all__ = ["translate", "ALIASES", "UNSUPPORTED", "overview"]

ALIASES = {"--input": None, "-i": None, "--model_name": "-n", "--outscale": "--outscale", "-s": "--outscale",
           "-t": "--tile", "--fp32": "", "--half": "--fast", "-g": "--device", "--gpu-id": "--device", "--gpu_id": "--device"}
"""Real-ESRGAN's flag -> i2i's (None: the value becomes an INPUT; "": dropped, it is i2i's default)."""

UNSUPPORTED = {
    "--face_enhance": "i2i has no face restoration (Real-ESRGAN uses GFPGAN, whose StyleGAN2 parts carry a "
                      "non-commercial licence); upscale without it",
    "--denoise_strength": "i2i runs one network as it is; realesr-general-x4v3's blend with its wdn variant is not supported",
    "-dn": "i2i runs one network as it is; realesr-general-x4v3's blend with its wdn variant is not supported",
    "--tile_pad": "i2i pads each tile exactly by the model's receptive field (its card); --tile-overlap N overrides it",
    "--pre_pad": "i2i pads each tile exactly by the model's receptive field (its card); --tile-overlap N overrides it",
    "--alpha_upsampler": "i2i upscales an alpha channel with MATLAB bicubic, never with the network",
}


def _is_count(text: str) -> bool:
    return text.isdigit()


def translate(argv: list[str]) -> list[str]:
    """``argv`` with Real-ESRGAN's spellings replaced by i2i's (see the module docstring).

    ``-n`` stays the digit tools' image count when its value is a number (``-n 64``); otherwise
    it names the model, as in Real-ESRGAN: a name i2i ships (``--model``), else a path
    (``--checkpoint``). An unsupported Real-ESRGAN flag is one :class:`ConfigError` line.
    """
    from ..inference import SHIPPED_MODELS

    out: list[str] = []
    inputs: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        flag, eq, inline = a.partition("=") if a.startswith("--") else (a, "", "")
        value = inline if eq else (argv[i + 1] if i + 1 < len(argv) else None)
        step = 1 if eq else 2
        if flag in UNSUPPORTED:
            raise ConfigError(UNSUPPORTED[flag], flag)
        if flag in ("-n", "--model_name") and value is not None and not _is_count(value):
            if value not in SHIPPED_MODELS and not Path(value).expanduser().exists():
                raise ConfigError(f"{value}: not a model i2i ships ({', '.join(SHIPPED_MODELS)}) and no such file or folder; "
                                  f"i2i downloads nothing: pass the weights file you have (-n path/to/{value}.pth)", flag)
            out += ["--model" if value in SHIPPED_MODELS else "--checkpoint", value]
            i += step
            continue
        if flag in ALIASES and flag not in ("-n", "--model_name"):
            target = ALIASES[flag]
            if target == "":  # --fp32: i2i's default
                i += 1
                continue
            if flag == "--half":
                out.append("--fast")
                i += 1
                continue
            if value is None:
                raise ConfigError("expects a value", flag)
            if target is None:  # -i/--input: an INPUT
                inputs.append(value)
            elif target == "--device":
                out += ["--device", value if not value.isdigit() else f"cuda:{value}"]
            else:
                out += [target, value]
            i += step
            continue
        out.append(a)
        i += 1
    return out + inputs


def overview(tool: str) -> str:
    """``i2i-infer --help`` / ``i2i-eval --help`` without a task: the inputs, ``-o``, every task with
    one line, the options common to all tasks, and how to see a task's own options."""
    from ..inference import DEFAULT_SHIPPED, SHIPPED_MODELS
    from ..task_table import TASKS

    what = {"sr": "super-resolution: upscale images, folders or videos (ships srresnet_x4, srresnet_x4_small, and realesrnet_x4 for real-world photos)",
            "sketch2photo": "pix2pix: a sketch (or a photo, sketched first) to a photo",
            "seg": "semantic segmentation: masks and overlays",
            "digits": "digit GANs: generate digits, per label for the conditional ones",
            "cyclegan": "unpaired translation, AtoB or BtoA"}
    rows = "\n".join(f"  {name:<13} {what.get(name, t.demo_tab or name)}"
                     + (f" (also: {', '.join(t.aliases)})" if t.aliases else "") for name, t in TASKS.items())
    infer = tool == "i2i-infer"
    lines = [
        f"usage: {tool} [--task TASK] [--checkpoint MODEL | --model NAME] "
        + ("INPUT... [-o OUTPUT] [options]" if infer else "[--data DIR] [--json] [options]"),
        "",
        ("Run a model on images, folders of images or videos." if infer else "Evaluate a model with its task's metrics."),
        "",
        "tasks (--task; optional when --checkpoint names a model, which knows its task):",
        rows,
        "",
        "options for every task:",
        "  --checkpoint MODEL   a run, export, checkpoint or pretrained folder, a weights file (.pth, .safetensors, …),",
        "                       a shipped model's name or a Hugging Face repo id",
        f"  --model NAME         a shipped model: {', '.join(SHIPPED_MODELS)} (default for "
        f"{', '.join(f'{t}: {n}' for t, n in DEFAULT_SHIPPED.items())})",
        "  --device DEVICE      cpu, cuda or cuda:N (default: CUDA when present)",
        "  --fast               BN folded, channels_last, autocast (bf16 where native; fp16 on CUDA when a probe shows it safe)",
        "  --debug              show tracebacks",
    ]
    if infer:
        lines += [
            "  INPUT                image files, folders of images, or video files (.mp4 .mkv .webm .mov .avi)",
            "  -o, --output OUTPUT  an output file (one input) or folder (default ./<task>_…/)",
            "",
            "Real-ESRGAN's flags work too: -i/--input, -n/--model_name, -s/--outscale, -t/--tile, --fp32, --half,",
            "--suffix, --ext, -g/--gpu-id (see docs/tools.md).",
        ]
    lines += ["", f"{tool} --task TASK --help   lists that task's own options (tiles, formats, directions, …)."]
    return "\n".join(lines)
