"""The one door models come in by: a registry of readers, each returning a :class:`LoadedModel`.

A reader recognises what a path holds and returns the networks, built and in eval mode, with
their :class:`~i2i.card.ModelCard`. Everything that runs a model (the pipelines, ONNX export,
the hub, the tools and the demo) gets it through :func:`read_model` and reads only the card.
Registered now:

* :class:`I2IReader` — i2i's own formats: a run directory (its ``export/``), an export
  (``config.json`` + ``<slot>.safetensors``), a pretrained folder (``<slot>/model.safetensors``)
  and a checkpoint folder (``config.yaml`` + ``models.safetensors``). Files written before the
  card existed get one derived from their ``meta`` and specs (:func:`i2i.card.derive_card`).

* :class:`i2i.foreign.SpandrelReader` — one weights file (``.pth``, ``.pt``, ``.ckpt``, ``.bin``,
  ``.safetensors``) of the image-restoration zoo, read safely and built by spandrel.

* :class:`i2i.foreign.JunyanzReader` — pix2pix/CycleGAN ``latest_net_G.pth`` / ``_G_A.pth`` /
  ``_G_B.pth`` of junyanz/pytorch-CycleGAN-and-pix2pix, onto i2i's U-Net and ResNet generators.

Further readers register with :func:`register_reader` and are tried before the folder reader.

Running a model never builds a recipe, a loss or a dataset: this module imports none of
``i2i.recipes``, ``i2i.engine`` or the training datasets (``tests/e2e/test_layers.py`` checks it).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from .card import ModelCard, Provenance, card_from_dict, derive_card, slot_role
from .errors import CheckpointError

__all__ = ["LoadedModel", "Reader", "I2IReader", "READERS", "register_reader", "read_model", "file_sha256", "card_entry",
           "fast_precision"]


@dataclass
class LoadedModel:
    """A model ready to run: its networks (built, in eval mode) and its card.

    ``nets`` holds the card's inference networks (the generators), plus the discriminators when
    asked for. ``card`` is what the running wing reads; ``recipe``, ``meta`` and ``config`` are
    the file's raw description, kept for provenance and for evaluation against the training
    data (``config["data"]``). A LoadedModel made by hand without a card (tests, a network
    trained elsewhere) gets one derived from those fields on each access.
    """

    nets: dict[str, nn.Module]
    task: str = ""
    recipe: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    path: Path = field(default_factory=Path)
    extra: dict[str, Any] = field(default_factory=dict)
    stored_card: ModelCard | None = None

    @property
    def card(self) -> ModelCard:
        if self.stored_card is not None:
            return self.stored_card
        specs = {s: {"type": type(n).__name__, **({"num_classes": getattr(n, "num_classes", 0)}
                                                   if slot_role(s) == "discriminator" else {})}
                 for s, n in self.nets.items()}
        return derive_card(self.task, self.recipe, specs, self.meta, self.config, self.nets,
                           Provenance(file=str(self.path)))

    @property
    def generator(self) -> nn.Module:
        return self.nets["generator"]

    @generator.setter
    def generator(self, net: nn.Module) -> None:
        self.nets["generator"] = net

    @property
    def discriminator(self) -> nn.Module | None:
        return self.nets.get("discriminator")

    def to(self, device: str | torch.device) -> LoadedModel:
        for net in self.nets.values():
            net.to(device)
        return self

    def fast(self, fold_bn: bool = True, probe: tuple[Any, ...] | None = None) -> LoadedModel:
        """Switch the generator to :func:`i2i.perf.fast_inference` (``--fast`` of the tools).

        ``probe``: the arguments of one typical generator call, on its device; on CUDA it
        decides fp16 (activations far inside its range) or bf16 (:func:`i2i.perf.inference_dtype`).
        A model without a ``generator`` slot (CycleGAN's ``generator_ab`` and ``generator_ba``)
        has each of its inference networks switched, without a probe (bf16 on CUDA).
        """
        from .perf import fast_inference

        slots = ["generator"] if "generator" in self.nets else [s for s in self.card.inference_slots if s in self.nets]
        for slot in slots:
            net = self.nets[slot]
            device = next(net.parameters()).device
            precision, p = fast_precision(self.card.dtypes, device.type, net, probe if slot == "generator" else None)
            self.nets[slot] = fast_inference(net, device, precision=precision, fold_bn=fold_bn, probe=p)
        return self


def fast_precision(dtypes: tuple[str, ...], device_type: str, net: nn.Module,
                   probe: tuple[Any, ...] | None) -> tuple[str, tuple[Any, ...] | None]:
    """``(precision, probe)`` for :func:`i2i.perf.fast_inference` within the card's ``dtypes``.

    Both half types allowed (i2i's own networks): ``auto`` as before (CUDA: fp16 when the probe's
    activations stay far inside its range, else bf16). No fp16 (spandrel: SwinIR, HAT, DAT): ``auto``
    without the probe, so CUDA takes bf16. No bf16: fp16 on CUDA only when the probe proves it safe,
    else fp32. Neither: fp32."""
    if "float16" in dtypes and "bfloat16" in dtypes:
        return "auto", probe
    if "bfloat16" in dtypes:
        return "auto", None
    if "float16" in dtypes and device_type == "cuda" and probe is not None:
        from .perf import FP16_SAFE_PEAK, activation_peak

        if activation_peak(net, *probe) < FP16_SAFE_PEAK:
            return "fp16", None
    return "fp32", None


class Reader(Protocol):
    """One kind of model file or folder."""

    name: str

    def accepts(self, path: Path) -> bool:
        """Whether this reader handles ``path`` (cheap: names and a few bytes, no weights)."""
        ...

    def read(self, path: str | Path, device: torch.device, with_discriminator: bool) -> LoadedModel:
        """The model at ``path`` (as the user gave it, for messages) on ``device``; one-line
        :class:`~i2i.errors.CheckpointError` otherwise."""
        ...


def file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


class I2IReader:
    """i2i's own folders: run, export, pretrained folder, checkpoint (see the module docstring)."""

    name = "i2i"

    def accepts(self, path: Path) -> bool:
        return True  # the last reader: folders, and anything no other reader took (read_saved says what is wrong)

    def read(self, path: str | Path, device: torch.device, with_discriminator: bool) -> LoadedModel:
        from . import nn as _nn  # noqa: F401  (fill the network registries)
        from .runs import build_network, read_saved

        saved = read_saved(path)
        stored = _stored_card(saved.path)
        roles = stored.slots if stored is not None else {s: slot_role(s) for s in saved.specs}
        slots = [s for s in saved.specs if roles.get(s) == "generator"]
        if with_discriminator:
            slots += [s for s in saved.specs if roles.get(s) == "discriminator"]
        nets = {s: build_network(saved, s, device) for s in slots}
        fmt = ("i2i-checkpoint" if not (saved.path / "config.json").is_file() else
               "i2i-pretrained" if any((saved.path / s / "model.safetensors").is_file() for s in saved.specs) else "i2i-export")
        files = sorted(f for f in saved.path.rglob("*.safetensors") if f.is_file())
        sha = {str(f.relative_to(saved.path)): file_sha256(f) for f in files}
        if stored is not None:
            card = stored.with_provenance(format=fmt, file=str(saved.path), sha256=sha)
        else:
            card = derive_card(saved.task, saved.recipe, saved.specs, saved.meta, saved.config, nets,
                               Provenance(format=fmt, file=str(saved.path), sha256=sha, step=saved.step))
        return LoadedModel(nets=nets, task=card.task, recipe=saved.recipe, meta=saved.meta, config=saved.config,
                           path=saved.path, stored_card=card)


def card_entry(folder: Path) -> dict[str, Any]:
    """``{"card": …}`` as stored in the folder's ``config.json``, or ``{}``: for writers that copy a
    model (``save_pretrained``) and must carry its card along."""
    card = _stored_card(folder)
    return {"card": card.to_dict()} if card is not None else {}


def _stored_card(folder: Path) -> ModelCard | None:
    """The ``card`` of an export's or pretrained folder's ``config.json`` (None: written before cards)."""
    f = folder / "config.json"
    if not f.is_file():
        return None
    try:
        info = json.loads(f.read_text(errors="replace"))
    except (ValueError, RecursionError):
        return None  # read_saved has already said what is wrong with it
    card = info.get("card") if isinstance(info, dict) else None
    return card_from_dict(card, f"{f}: card") if card is not None else None


READERS: list[Reader] = [I2IReader()]
"""Tried in order; the first that accepts a path reads it."""


def register_reader(reader: Reader, first: bool = True) -> Reader:
    """Add a reader: tried first by default, else just before the i2i folder reader (which takes
    whatever no other reader took, so it stays last); a duplicate name is an error."""
    if any(r.name == reader.name for r in READERS):
        raise KeyError(f"reader {reader.name!r} is already registered")
    READERS.insert(0 if first else max(0, len(READERS) - 1), reader)
    return reader


def read_model(path: str | Path, device: str | torch.device = "cpu", with_discriminator: bool = False) -> LoadedModel:
    """The model at ``path`` through the first reader that accepts it."""
    p = Path(path).expanduser()
    for reader in READERS:
        if reader.accepts(p):
            return reader.read(path, torch.device(device), with_discriminator)
    raise CheckpointError(f"{path}: not a model i2i can read (readers: {', '.join(r.name for r in READERS)})")


from .foreign import ForeignFolderReader, JunyanzReader, SpandrelReader  # noqa: E402  (they build on LoadedModel above)

READERS.insert(0, SpandrelReader())
READERS.insert(0, ForeignFolderReader())  # a pretrained folder made from one such file
READERS.insert(0, JunyanzReader())  # by name (*net_G[_A|_B].pth); spandrel hands it renamed ones too
