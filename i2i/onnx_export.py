"""ONNX export of every task's inference networks, checked against PyTorch with onnxruntime.

``export_onnx(model, folder)`` writes one ``<slot>.onnx`` per inference network of a loaded
export (``LoadedModel``: the generator; both generators for CycleGAN) with a dynamic batch
and, for image inputs, dynamic height and width; then runs each file with onnxruntime on an
input of *another* size than the one traced and compares with PyTorch. :class:`OnnxNet`
wraps a session as a callable on torch tensors, so the tiled SR code
(:func:`i2i.tiling.tiled_apply`) runs an ONNX model exactly as it runs a PyTorch one.

Exporter: PyTorch's TorchScript-based exporter (``dynamo=False``): it needs only ``onnx``
(whose checker then validates each file), traces these convolutional networks in well under a
second, and its graphs run on every onnxruntime build; the ``torch.export``-based one took 10× longer on the SRResNet and needs
``onnxscript`` as well. Opset 17. Inputs and outputs are float32 (the networks' own
precision); digit generators take ``z`` (N, z_dim) and, when conditional, ``label`` (N,) int64.
"""
from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .errors import I2IError, write_error

OPSET = 17
TOLERANCE = 1e-4
"""Largest |onnxruntime - PyTorch| accepted, relative to the output's value range: float32
kernels sum in other orders. Measured (2026-12-01, onnxruntime 1.32, CPU): 0.4–3e-7 of the range
for the tiny networks of every task in tests/test_onnx_export.py, 6.4e-7 for the shipped ×4 SRResNet."""


class OnnxError(I2IError):
    """An export that cannot be written, or whose ONNX graph disagrees with PyTorch."""


@dataclass
class Exported:
    slot: str
    path: Path
    inputs: list[str]
    max_abs_diff: float  # onnxruntime vs PyTorch on an input of another size than the traced one
    value_range: float


def _first_conv(net: nn.Module) -> nn.Conv2d | None:
    return next((m for m in net.modules() if isinstance(m, nn.Conv2d)), None)


def example_inputs(model: Any, net: nn.Module, side: int | None = None, batch: int = 1,
                   seed: int = 0) -> tuple[dict[str, Tensor], dict[str, dict[int, str]]]:
    """Inputs for one call of ``net`` and their dynamic axes (ONNX names).

    Digit generators (the card's ``latent``): noise and, when conditional, labels. Image networks: an
    (N, C, side, side) image in the card's value range; ``side`` defaults to twice the
    network's size multiple (the card's ``multiple_of``; 16 when it has none) and must be a multiple of it.
    """
    g = torch.Generator().manual_seed(seed)
    card = model.card
    if card.latent is not None:
        z = torch.randn(batch, int(card.latent.z_dim), generator=g)
        inputs = {"z": z}
        if card.latent.conditional:
            inputs["label"] = torch.arange(batch) % int(card.latent.num_classes)
        return inputs, {k: {0: "batch"} for k in inputs}
    conv = _first_conv(net)
    if conv is None:
        raise OnnxError(f"{model.path}: cannot tell the input shape of {type(net).__name__} (no convolution)")
    multiple = int(card.multiple_of or 1)
    side = side or 2 * max(multiple, 16)
    if side % multiple:
        raise OnnxError(f"input side {side} is not a multiple of the network's {multiple}")
    lo, hi = card.value_range
    # an SR card's in_channels are the image's; the first conv may see more (Real-ESRGAN x2plus: pixel-unshuffled, 12)
    channels = int(card.in_channels) if card.task == "sr" and card.in_channels else conv.in_channels
    x = torch.rand(batch, channels, side, side, generator=g) * (hi - lo) + lo
    return {"image": x}, {"image": {0: "batch", 2: "height", 3: "width"}}


class OnnxNet:
    """An onnxruntime session as a callable on torch tensors (float32 in, float32 out, same device
    as the input): a stand-in for the PyTorch network in the tiled SR code and the pipelines."""

    def __init__(self, path: str | Path, providers: list[str] | None = None):
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise OnnxError(f"{self.path}: no such ONNX file")
        try:
            self.session = ort.InferenceSession(str(self.path), providers=providers or ort.get_available_providers())
        except Exception as e:  # noqa: BLE001  (onnxruntime raises its own Fail/InvalidGraph types)
            raise OnnxError(f"{self.path}: onnxruntime cannot load it ({str(e).splitlines()[0][:160]})") from None
        self.input_names = [i.name for i in self.session.get_inputs()]

    def __call__(self, *args: Tensor) -> Tensor:
        if len(args) != len(self.input_names):
            raise OnnxError(f"{self.path}: takes {len(self.input_names)} inputs ({', '.join(self.input_names)}), got {len(args)}")
        feeds = {n: a.detach().cpu().numpy() for n, a in zip(self.input_names, args)}
        out = self.session.run(None, feeds)[0]
        return torch.from_numpy(np.ascontiguousarray(out)).to(args[0].device)


def export_onnx(model: Any, folder: str | Path, verify: bool = True) -> list[Exported]:
    """``<folder>/<slot>.onnx`` for each inference network of ``model`` (an :class:`i2i.inference.LoadedModel`
    on the CPU, in eval mode); with ``verify`` each is run by onnxruntime on an input of another
    size (and batch) than the traced one and must match PyTorch within :data:`TOLERANCE`."""
    from .runs import writing

    folder = Path(folder)
    with writing(folder):
        folder.mkdir(parents=True, exist_ok=True)
    slots = [s for s in model.card.inference_slots if s in model.nets]
    done = []
    for slot in slots:
        net = model.nets[slot].float().cpu().eval()
        inputs, axes = example_inputs(model, net)
        path = folder / f"{slot}.onnx"
        tmp = path.with_suffix(".onnx.tmp")
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notes
                torch.onnx.export(net, tuple(inputs.values()), str(tmp), input_names=list(inputs),
                                  output_names=["output"], dynamic_axes={**axes, "output": {0: "batch"}},
                                  opset_version=OPSET, dynamo=False)
        except Exception as e:  # noqa: BLE001  (tracing errors come in many types)
            tmp.unlink(missing_ok=True)
            if (err := write_error(tmp, e)) is not None:  # disk full, read-only, file too large
                raise err from None
            raise OnnxError(f"{model.path}: {slot} cannot be exported to ONNX ({type(e).__name__}: "
                            f"{str(e).splitlines()[0][:160]})") from None
        contract = onnx_contract(model, slot, inputs)
        diff, span = (math.nan, math.nan)
        try:  # checked and verified before it takes its name: a failed export leaves no file (nor an older one lost)
            with writing(tmp):
                _describe(tmp, contract)
            _check_graph(tmp, shown=path)
            if verify:
                diff, span = _verify(model, net, tmp, shown=path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        with writing(path):
            tmp.replace(path)
        card_path = path.with_suffix(".json")
        with writing(card_path):
            card_path.write_text(json.dumps({"file": path.name, **{k.removeprefix("i2i."): _maybe_json(v) for k, v in contract.items()}},
                                            indent=2, ensure_ascii=False) + "\n")
        done.append(Exported(slot, path, list(inputs), diff, span))
    return done


def onnx_contract(model: Any, slot: str, inputs: dict[str, Tensor]) -> dict[str, str]:
    """What a caller of the ONNX file must know, from the model card: input names, dtype, layout
    and value range, the output's range and scale. Stored in the file's ``metadata_props`` (keys
    ``i2i.*``) and in ``<slot>.json`` beside it."""
    card = model.card
    lo, hi = (float(v) for v in card.value_range)
    if "image" in inputs:
        c = int(inputs["image"].shape[1])
        ins = {"image": f"float32, NCHW (batch, {c}, height, width), {'RGB' if c == 3 else f'{c} channel(s)'} in [{lo:g}, {hi:g}]"
                        + (f"; height and width multiples of {card.multiple_of}" if card.multiple_of > 1 else "")}
        if card.task == "seg":
            out = "float32 logits, NCHW (batch, classes, height, width): the class is the argmax over dim 1"
        else:
            out = (f"float32, NCHW (batch, {card.out_channels or c}, {card.scale}×height, {card.scale}×width), "
                   f"in [{lo:g}, {hi:g}] (clip: a network may overshoot slightly)")
    else:
        lat = card.latent
        ins = {"z": f"float32 (batch, {lat.z_dim if lat else inputs['z'].shape[1]}), standard normal noise"}
        if "label" in inputs:
            ins["label"] = f"int64 (batch,), class ids 0..{(lat.num_classes - 1) if lat else '?'}"
        out = f"float32, NCHW (batch, 1, 28, 28), in [{lo:g}, {hi:g}]"
    return {"i2i.task": card.task, "i2i.slot": slot, "i2i.inputs": json.dumps(ins), "i2i.output": out,
            "i2i.value_range": json.dumps([lo, hi]), "i2i.scale": str(card.scale), "i2i.layout": "NCHW",
            "i2i.card": json.dumps(card.to_dict(), default=str)}


def _maybe_json(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def _describe(path: Path, contract: dict[str, str]) -> None:
    """Write ``contract`` into the ONNX file's ``metadata_props`` (and its doc string)."""
    import onnx

    m = onnx.load(str(path))
    onnx.helper.set_model_props(m, contract)
    m.doc_string = f"i2i {contract['i2i.task']} network {contract['i2i.slot']}: inputs {contract['i2i.inputs']}; output {contract['i2i.output']}"
    onnx.save(m, str(path))


def is_onnx_folder(folder: Path) -> bool:
    """What :func:`export_onnx` writes and nothing else: ``<slot>.onnx`` files, their ``<slot>.json``
    cards (and a ``.onnx.tmp`` a kill left)."""
    def ours(p: Path) -> bool:
        return p.name.endswith((".onnx", ".onnx.tmp")) or (p.suffix == ".json" and p.with_suffix(".onnx").is_file())

    return all(p.is_file() and not p.is_symlink() and ours(p) for p in folder.iterdir())


def _check_graph(path: Path, shown: Path | None = None) -> None:
    """The ONNX checker (``onnx.checker.check_model``, with shape inference): a well-formed graph
    in opset ``OPSET`` before any runtime sees it; one line naming the file (``shown``: the name it
    is exported under) otherwise."""
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as e:  # noqa: BLE001  (onnx raises ValidationError and friends)
        raise OnnxError(f"{shown or path}: not a valid ONNX model ({str(e).splitlines()[0][:160]})") from None


def _verify(model: Any, net: nn.Module, path: Path, shown: Path | None = None) -> tuple[float, float]:
    """max |ORT - PyTorch| on a batch of 2 at 1.5× the traced side (dynamic axes really dynamic);
    errors name ``shown`` (the name the file is exported under), else ``path``."""
    shown = shown or path
    first, _ = example_inputs(model, net)
    side = None
    if "image" in first:
        multiple = int(model.card.multiple_of or 1)
        side = first["image"].shape[-1] + max(multiple, 16)
    inputs, _ = example_inputs(model, net, side=side, batch=2, seed=1)
    with torch.no_grad():
        want = net(*inputs.values()).float()
    got = OnnxNet(path, providers=["CPUExecutionProvider"])(*inputs.values())
    if got.shape != want.shape:
        raise OnnxError(f"{shown}: onnxruntime gives shape {tuple(got.shape)}, PyTorch {tuple(want.shape)}")
    diff = float((got - want).abs().max())
    span = float(want.max() - want.min()) or 1.0
    if not diff <= TOLERANCE * span:
        raise OnnxError(f"{shown}: onnxruntime differs from PyTorch by {diff:.3g} (more than {TOLERANCE:g} of the "
                        f"output range {span:.3g})")
    return diff, span


class OnnxModule(nn.Module):
    """A network whose forward runs in onnxruntime: the PyTorch module stays inside (its
    structure answers questions such as the receptive field, its ``scale`` is kept), the
    ONNX file does the compute. Drop-in for the generator of a pipeline on the CPU."""

    def __init__(self, net: nn.Module, path: str | Path):
        super().__init__()
        self.net = net.eval()
        self.runner = OnnxNet(path, providers=["CPUExecutionProvider"])
        for attr in ("scale", "in_channels", "multiple"):
            if hasattr(net, attr):
                setattr(self, attr, getattr(net, attr))

    def forward(self, *args: Tensor) -> Tensor:
        return self.runner(*args)


def with_onnxruntime(model: Any, onnx_dir: str | Path | None = None) -> Any:
    """``model`` (a LoadedModel on the CPU) with every inference network run by onnxruntime.

    The ONNX files come from ``onnx_dir``, else ``<export>/onnx`` or ``<run>/onnx`` (where
    ``i2i-export RUN --format onnx`` writes them) when they exist, else a fresh verified export
    into a temporary folder (kept for the life of the process)."""
    import tempfile

    slots = [s for s in model.card.inference_slots if s in model.nets]
    candidates = [Path(onnx_dir)] if onnx_dir else [model.path / "onnx", model.path.parent / "onnx"]
    folder = next((c for c in candidates if all((c / f"{s}.onnx").is_file() for s in slots)), None)
    if folder is None:
        if onnx_dir:
            raise OnnxError(f"{onnx_dir}: missing {', '.join(f'{s}.onnx' for s in slots)}")
        folder = Path(tempfile.mkdtemp(prefix="i2i-onnx-"))
        export_onnx(model, folder)
    for s in slots:
        model.nets[s] = OnnxModule(model.nets[s].cpu(), folder / f"{s}.onnx")
    return model
