"""The model card: one typed description of a loaded model, read by everything that runs it.

A :class:`ModelCard` says what a model is and how to call it: its task, the upscaling factor,
input and output channels, the value range of its images, the sizes it accepts (minimum side,
multiple), how it may be tiled (and the receptive-field radius that makes tiles exact), the
dtypes it runs in, the task's extras (a segmentor's class table, a digit GAN's latent size,
CycleGAN's directions, pix2pix's sketch style) and where it came from (format, file, sha256,
architecture, licence). The idea is timm's ``PretrainedCfg`` and spandrel's
``ModelDescriptor``: the model says what it is, in one typed object.

Training writes it (``card`` in an export's ``config.json``, beside the older ``meta``); a
reader (:mod:`i2i.readers`) fills it for every model it loads. Files written before the card
existed (exports, runs, checkpoints, pretrained folders, the shipped ``i2i/weights``) get one
derived by :func:`derive_card` from their ``meta``, their network specs and the networks
themselves, exactly as the pipelines used to read those. ``docs/model_card.md`` lists the fields.

Foundation of the running wing: imports no recipe, engine or training dataset.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
from torch import nn

from .errors import CheckpointError

__all__ = ["ModelCard", "ClassTable", "Latent", "Directions", "Sketch", "Provenance", "derive_card",
           "card_from_dict", "receptive_radius", "slot_role", "ALL_DTYPES", "CARD_VERSION"]

CARD_VERSION = 1
ALL_DTYPES = ("float32", "float16", "bfloat16")
"""The dtypes i2i's own networks run in (``--fast``: fp16 or bf16 autocast, :mod:`i2i.perf`)."""

Tiling = Literal["exact", "none"]
"""``exact``: tiles with ``receptive_radius`` pixels of context give the untiled result
(feed-forward convolutions); ``none``: run whole images (U-Nets, segmentors, generators of noise)."""


@dataclass(frozen=True)
class ClassTable:
    """A segmentor's classes: ``names[i]`` and ``palette[i]`` (RGB 0..255) for class id i."""

    names: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    ignore_index: int = 255


@dataclass(frozen=True)
class Latent:
    """A digit GAN's input: z ~ N(0, I) of ``z_dim``; class labels in ``range(num_classes)``
    when ``conditional`` (G takes a label) / ``d_conditional`` (D takes one)."""

    z_dim: int
    num_classes: int
    conditional: bool
    d_conditional: bool = False
    image_shape: tuple[int, int, int] = (1, 28, 28)


@dataclass(frozen=True)
class Directions:
    """CycleGAN: the network slot and the source domain's channels for ``AtoB`` and ``BtoA``
    (channels None: the input is taken as given)."""

    slots: dict[str, str]
    channels: dict[str, int | None]


@dataclass(frozen=True)
class Sketch:
    """How a pix2pix model's training inputs were made: ``data_type`` (``photo_sketch``: sketches
    computed from photos by ``kind`` = xdog | canny with ``params``, ``channels`` of them), and
    the training ``direction``. Pipelines sketch a photo the same way (``from_photo``)."""

    data_type: str | None
    direction: str = "AtoB"
    kind: str = "xdog"
    channels: int = 1
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Provenance:
    """Where the weights came from.

    ``format``: ``i2i-export``, ``i2i-pretrained`` or ``i2i-checkpoint`` (later: foreign files);
    ``file``: the folder or file read; ``sha256``: weight file name -> hex digest of the bytes read;
    ``architecture``: the networks' registered types (``slot: type``); ``licence``: of the weights,
    None when unknown (a user's own run); ``recipe``/``step``: what trained them and when."""

    format: str = "i2i-export"
    file: str = ""
    sha256: dict[str, str] = field(default_factory=dict)
    architecture: dict[str, str] = field(default_factory=dict)
    licence: str | None = None
    recipe: str | None = None
    step: int = 0


@dataclass(frozen=True)
class ModelCard:
    """One loaded model's contract (see the module docstring and ``docs/model_card.md``).

    Images go in as (N, in_channels, H, W) float in ``value_range`` with H, W >= ``min_size`` and
    divisible by ``multiple_of``, and come out as (N, out_channels, H·scale, W·scale) in the same range
    (a segmentor's output is logits, a digit GAN's input is noise: see ``latent``).
    """

    task: str
    slots: dict[str, str]  # network slot -> role: "generator" (runs at inference) or "discriminator"
    scale: int = 1
    in_channels: int | None = None
    out_channels: int | None = None
    value_range: tuple[float, float] = (0.0, 1.0)
    min_size: int = 1
    multiple_of: int = 1
    tiling: Tiling = "none"
    receptive_radius: float | None = None
    dtypes: tuple[str, ...] = ALL_DTYPES
    train_size: int | None = None  # the image side it was trained at (data.crop_size), None when unknown
    classes: ClassTable | None = None
    latent: Latent | None = None
    directions: Directions | None = None
    sketch: Sketch | None = None
    provenance: Provenance = field(default_factory=Provenance)
    notes: dict[str, Any] = field(default_factory=dict)  # other facts of the export's meta (degradation, normalisation)

    @property
    def inference_slots(self) -> tuple[str, ...]:
        """The networks run at inference (the generators), in slot order."""
        return tuple(s for s, role in self.slots.items() if role == "generator")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``config.json``'s ``card``), with the card's ``version``."""
        return {"version": CARD_VERSION, **asdict(self)}

    def with_provenance(self, **changes: Any) -> ModelCard:
        return replace(self, provenance=replace(self.provenance, **changes))


def _tuple2(v: Any) -> tuple[float, float]:
    lo, hi = list(v)[:2]
    return float(lo), float(hi)


def card_from_dict(d: dict[str, Any], where: str = "card") -> ModelCard:
    """A card written by :meth:`ModelCard.to_dict`; one line naming ``where`` when it is not one."""
    try:
        if not isinstance(d, dict) or int(d.get("version", 0)) != CARD_VERSION:
            raise ValueError(f"expected a card of version {CARD_VERSION}")
        d = {k: v for k, v in d.items() if k != "version"}
        cls = d.pop("classes", None)
        lat = d.pop("latent", None)
        dirs = d.pop("directions", None)
        sk = d.pop("sketch", None)
        prov = d.pop("provenance", None) or {}
        return ModelCard(
            **{**d, "value_range": _tuple2(d.get("value_range", (0.0, 1.0))), "dtypes": tuple(d.get("dtypes", ALL_DTYPES))},
            classes=ClassTable(tuple(cls["names"]), tuple(tuple(int(x) for x in c) for c in cls["palette"]),
                               int(cls.get("ignore_index", 255))) if cls else None,
            latent=Latent(**{**lat, "image_shape": tuple(lat.get("image_shape", (1, 28, 28)))}) if lat else None,
            directions=Directions(dict(dirs["slots"]), dict(dirs["channels"])) if dirs else None,
            sketch=Sketch(**sk) if sk else None,
            provenance=Provenance(**prov))
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        raise CheckpointError(f"{where}: not a valid model card ({type(e).__name__}: {str(e)[:120]})") from None


# --- deriving a card from what older files hold -------------------------------------------------
def receptive_radius(net: nn.Module) -> float:
    """Receptive-field radius of a feed-forward conv / pixel-shuffle net, in input pixels.

    Walks the modules in registration order (for :class:`~i2i.nn.srresnet.SRResNet` that
    is the forward order: head, body, upsampler, tail) adding ``dilation · (k - 1) / 2`` of
    each convolution divided by the upscaling reached so far (a 9×9 conv at ×4 sees 1 LR
    pixel to each side). Residual additions do not widen it. For SRResNet ×4 with B
    blocks: 4 + 2B + 1 (body) + 1 + 0.5 (upsampler) + 1 (tail) = 2B + 7.5.
    Only true for such networks: a card states it for i2i's own SR generators, not for others.
    """
    radius, up = 0.0, 1
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            kh, kw = m.kernel_size
            dh, dw = m.dilation
            radius += max(dh * (kh - 1), dw * (kw - 1)) / 2 / up
        elif isinstance(m, nn.PixelShuffle):
            up *= m.upscale_factor
    return radius


def slot_role(slot: str) -> str:
    """A slot's role where no card says it: i2i's recipes name their discriminators
    ``discriminator`` / ``discriminator_a`` / ``discriminator_b``, everything else is run."""
    return "discriminator" if slot.startswith("discriminator") else "generator"


def _convs(net: nn.Module | None) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))] if net is not None else []


def _io_channels(net: nn.Module | None) -> tuple[int | None, int | None]:
    convs = _convs(net)
    return (convs[0].in_channels, convs[-1].out_channels) if convs else (None, None)


_META_FIELDS = {"scale", "value_range", "multiple", "in_channels", "out_channels", "a_channels", "b_channels",
                "directions", "num_classes", "class_names", "palette", "ignore_index", "z_dim", "conditional",
                "image_shape"}


def derive_card(task: str, recipe: dict[str, Any], specs: dict[str, dict[str, Any]], meta: dict[str, Any],
                config: dict[str, Any], nets: dict[str, nn.Module], provenance: Provenance | None = None) -> ModelCard:
    """The card of a model described the pre-card way: the export's ``meta`` (:meth:`Recipe.export_meta`),
    the recipe and network specs, the training config, and the built networks ``nets`` (slot -> module;
    the generators at least). Where ``meta`` lacks a fact (a bare checkpoint), it is read from the
    networks and the recipe's YAML keys, as the pipelines did before the card."""
    meta = dict(meta or {})
    slots = {s: slot_role(s) for s in specs}
    G = nets.get("generator")
    prov = provenance or Provenance()
    prov = replace(prov, architecture=prov.architecture or {s: str(spec.get("type")) for s, spec in specs.items()},
                   recipe=prov.recipe or recipe.get("type"))
    notes = {k: v for k, v in meta.items() if k not in _META_FIELDS}
    c_in, c_out = _io_channels(G)
    crop = (config.get("data") or {}).get("crop_size")
    common: dict[str, Any] = {"task": task, "slots": slots, "provenance": prov, "notes": notes,
                              "train_size": crop if isinstance(crop, int) and not isinstance(crop, bool) else None}
    if "value_range" in meta:
        common["value_range"] = _tuple2(meta["value_range"])
    if task == "sr":
        scale = meta.get("scale") or getattr(G, "scale", None) or recipe.get("scale")
        if scale is None:
            raise CheckpointError(f"{prov.file or 'model'}: cannot tell the model's upscaling factor (no .scale, no meta.scale)")
        radius = receptive_radius(G) if G is not None else None
        return ModelCard(**common, scale=int(scale), in_channels=getattr(G, "in_channels", c_in), out_channels=c_out,
                         tiling="exact" if radius else "none", receptive_radius=radius)
    if task == "sketch2photo":
        data = config.get("data") or {}
        sketch = Sketch(data.get("type"), str(data.get("direction", "AtoB")), str(data.get("sketch", "xdog")),
                        int(data.get("sketch_channels", 1)), dict(data.get("sketch_params") or {}))
        common.setdefault("value_range", (-1.0, 1.0))
        return ModelCard(**common, in_channels=int(meta.get("in_channels") or c_in or 3),
                         out_channels=int(meta.get("out_channels") or c_out or 3),
                         multiple_of=int(meta.get("multiple") or getattr(G, "multiple", 1)), sketch=sketch)
    if task == "seg":
        from .data.palette import pascal_palette

        n = int(meta.get("num_classes") or getattr(G, "num_classes", 0) or recipe.get("num_classes", 21))
        names = meta.get("class_names") or recipe.get("class_names") or [f"class_{i}" for i in range(n)]
        palette = meta.get("palette") or recipe.get("palette") or [list(c) for c in pascal_palette(len(names))]
        ignore = int(meta.get("ignore_index", recipe.get("ignore_index", 255)))
        colours = np.asarray(palette, dtype=np.int64).reshape(-1, 3).tolist()
        table = ClassTable(tuple(str(x) for x in names), tuple((c[0], c[1], c[2]) for c in colours), ignore)
        return ModelCard(**common, in_channels=c_in or 3, out_channels=len(table.names), classes=table)
    if task == "digits":
        z_dim = int(meta.get("z_dim") or getattr(G, "z_dim", 0))
        g_classes = int(getattr(G, "num_classes", 0) or 0)
        conditional = bool(meta.get("conditional", g_classes > 0))
        d_spec = specs.get("discriminator") or {}
        num_classes = int(meta.get("num_classes") or recipe.get("num_classes") or g_classes or 10)
        latent = Latent(z_dim, num_classes, conditional, bool(d_spec.get("num_classes", 0)),
                        tuple(int(v) for v in meta.get("image_shape", (1, 28, 28))))
        common.setdefault("value_range", (-1.0, 1.0))
        return ModelCard(**common, out_channels=c_out, latent=latent)
    if task == "cyclegan":
        directions = {"AtoB": "generator_ab", "BtoA": "generator_ba", **(meta.get("directions") or {})}
        multiple = meta.get("multiple") or recipe.get("multiple")
        if multiple is None:  # the generators' own multiples, as the recipe's setup reads them
            multiple = math.lcm(*(int(getattr(nets.get(s), "multiple", 1)) for s in directions.values()))
        a, b = meta.get("a_channels"), meta.get("b_channels")
        if a is None or b is None:
            a_io, b_io = _io_channels(nets.get(directions["AtoB"])), _io_channels(nets.get(directions["BtoA"]))
            a = a if a is not None else a_io[0] or b_io[1]
            b = b if b is not None else a_io[1] or b_io[0]
        common.setdefault("value_range", (-1.0, 1.0))
        return ModelCard(**common, in_channels=a, out_channels=b, multiple_of=int(multiple),
                         directions=Directions(directions, {"AtoB": a, "BtoA": b}))
    return ModelCard(**common, in_channels=c_in, out_channels=c_out)
