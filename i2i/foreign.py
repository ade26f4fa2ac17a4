"""Single weight files made by other projects, through spandrel (issue 24, part B, first slice).

``--checkpoint RealESRGAN_x4plus.pth`` (or ``.pt``, ``.ckpt``, ``.bin``, ``.safetensors``): the
file is read **by i2i** — safetensors, or ``torch.load(weights_only=True)`` for pickles, so a
file that would run code is refused and nothing runs (spandrel's own loader uses a restricted
unpickler instead) — with its size and tensor count capped. Its state dict is unwrapped the way
the field's files come (``params_ema``, ``params``, ``state_dict``, a ``module.`` prefix:
:func:`spandrel.canonicalize_state_dict`) and handed to spandrel (MIT; Kaiser et al.,
https://github.com/chaiNNer-org/spandrel), which detects the architecture from the tensors and
builds the network. Never ``spandrel_extra_arches`` (non-commercial architectures).

The result is a :class:`~i2i.readers.LoadedModel` whose :class:`~i2i.card.ModelCard` is filled
from spandrel's descriptor: scale, channels, size requirements (minimum, multiple of), dtypes
(fp16/bf16 support), architecture, sha256 of the file. The input is padded as each family's own
inference script pads it (:func:`peer_padding`: Real-ESRGAN x2plus reflect to 2, SwinIR flipped to its
window, HAT reflected to its window), so i2i gives the peer's own result, borders included; ``--outscale``
resizes as Real-ESRGAN's ``RealESRGANer`` does (the card's ``notes.outscale``). BasicSR's MSRResNet and
EDSR, which spandrel does not know, are read onto i2i's own networks (:mod:`i2i.basicsr_files`).
Its task is ``sr`` (super-resolution and restoration models, scale 1 for the latter), so the SR
pipeline, ``i2i-infer``, ``i2i-eval``, ONNX export and the demo run it. Tiling: spandrel does not
state a receptive radius; where it is knowable (RRDBNet without pixel-unshuffle, SRVGGNetCompact:
:func:`exact_tiling_radius`) the card says ``exact`` with that radius, else ``none`` (the SR
pipeline's default context is then 48 input pixels, close but not proven exact; ``tile=0`` runs
whole images), with a ``tiling_advice`` note for the windowed transformers (SwinIR, HAT, DAT: tiling
discouraged, window padding). The card's ``provenance.licence`` is the architecture's licence from
:data:`LICENCES` (``unknown`` where not verified), with a ``licence_note`` for families
with non-commercial or share-alike parts (:data:`LICENCE_NOTES`).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from .card import ALL_DTYPES, Directions, ModelCard, Provenance
from .errors import CheckpointError
from .junyanz import JUNYANZ_LICENCE, JUNYANZ_NAME, is_junyanz, junyanz_generator
from .nn.srvgg import compact_stage_plan
from .readers import LoadedModel, file_sha256
from .tiling import StagePlan, rrdb_lean

__all__ = ["SpandrelReader", "JunyanzReader", "ForeignFolderReader", "FOREIGN_KEY", "junyanz_model", "read_state_dict", "LICENCES", "LICENCE_NOTES", "licence_of", "PadToSize", "peer_padding", "WEIGHT_SUFFIXES",
           "MAX_FILE_BYTES", "MAX_TENSORS"]

from .weight_files import MAX_FILE_BYTES, MAX_TENSORS, WEIGHT_SUFFIXES, read_state_dict  # noqa: E402,F401  (re-exported)


class PadToSize(nn.Module):
    """Run ``net`` on inputs padded at the bottom/right to its size requirements (sides at least
    ``minimum``, multiples of ``multiple``, equal when ``square``) and crop the output back:
    (N, C, h, w) -> (N, C', h·scale, w·scale).

    ``mode``: ``"reflect"`` — reflection without repeating the edge pixel as far as the image allows
    (size - 1 pixels), edge replication beyond: what spandrel's own call adds (the result chaiNNer and
    the other spandrel users get), and what Real-ESRGAN's ``RealESRGANer`` and HAT's test code do;
    ``"symmetric"`` — the mirror image *with* the edge pixel (row h is row h - 1, then h - 2, …),
    repeated as often as needed: SwinIR's ``main_test_swinir.py`` (the image followed by its flip,
    cut to the padded size). ``beyond``: pad to the next multiple *above* the side even when it is
    one already (``(h // multiple + 1) · multiple``), as ``main_test_swinir.py`` computes its padding.
    :func:`peer_padding` picks the mode and multiple for each family."""

    def __init__(self, net: nn.Module, scale: int, multiple: int, minimum: int, square: bool = False,
                 mode: str = "reflect", beyond: bool = False):
        super().__init__()
        if mode not in ("reflect", "symmetric"):
            raise ValueError(f"PadToSize: mode must be reflect or symmetric, got {mode!r}")
        self.net, self.scale, self.multiple, self.minimum, self.square = net, scale, max(1, multiple), minimum, square
        self.mode, self.beyond = mode, beyond

    def target(self, h: int, w: int) -> tuple[int, int]:
        m = self.multiple
        least = self.minimum + (-self.minimum) % m  # the smallest multiple of m not below the minimum
        if self.beyond and m > 1:
            th, tw = max((h // m + 1) * m, least), max((w // m + 1) * m, least)
        else:
            th, tw = max(h + (-h) % m, least), max(w + (-w) % m, least)
        return (max(th, tw),) * 2 if self.square else (th, tw)  # type: ignore[return-value]

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        th, tw = self.target(h, w)
        if (th, tw) == (h, w):
            return self.net(x)
        if self.mode == "symmetric":
            x = x.index_select(-2, _symmetric_index(h, th, x.device)).index_select(-1, _symmetric_index(w, tw, x.device))
        else:
            rh, rw = min(th - h, h - 1), min(tw - w, w - 1)  # reflection needs padding < size
            x = torch.nn.functional.pad(x, (0, rw, 0, rh), mode="reflect")
            x = torch.nn.functional.pad(x, (0, tw - w - rw, 0, th - h - rh), mode="replicate")
        return self.net(x)[..., : h * self.scale, : w * self.scale]


def _symmetric_index(n: int, total: int, device: torch.device) -> Tensor:
    """Source row of each of ``total`` rows when ``n`` rows are mirrored with the edge repeated:
    0, 1, …, n-1, n-1, …, 0, 0, 1, … (period 2n)."""
    i = torch.arange(total, device=device) % (2 * n)
    return torch.where(i < n, i, 2 * n - 1 - i)


def peer_padding(arch_id: str, net: nn.Module, multiple: int, minimum: int) -> tuple[int, int, str, bool, str]:
    """``(multiple, minimum, mode, beyond, note)`` (:class:`PadToSize`'s arguments and a line for the
    card): how a family's input is padded so that i2i gives its
    peer's own inference result (issue 24: the peer's own procedure), from spandrel's size
    requirements (``multiple``, ``minimum``) and the network:

    - ESRGAN with a pixel-unshuffled input (Real-ESRGAN x2plus, x1): reflect to a multiple of the
      unshuffle factor (2 or 4), as ``RealESRGANer.pre_process`` does (spandrel asks for 4 either way;
      padding a ×2 image 2 rows further than Real-ESRGAN would change its bottom/right border);
    - SwinIR: symmetric (the flipped image) to the next multiple of its window above the side — a
      whole extra window when the side is a multiple already — as ``main_test_swinir.py``;
    - HAT: reflect to a multiple of its window, as HAT's test code (``HATModel.test``);
    - every other family: spandrel's requirements, padded as spandrel's own call pads (reflect, then
      replicate); the networks that need a window multiple (DAT, OmniSR) pad inside their forward
      (spandrel's port of their authors' code), so the peer's script and i2i agree there.
    The minimum side stays spandrel's (16 for the transformers; the peers' scripts have none): a
    smaller image is padded up to it in the family's mode."""
    window = getattr(net, "window_size", None)
    if arch_id == "ESRGAN" and (f := getattr(net, "shuffle_factor", None)):
        return int(f), minimum, "reflect", False, f"reflect to a multiple of {f} (Real-ESRGAN's RealESRGANer)"
    if arch_id in ("SwinIR", "HAT") and isinstance(window, int) and window > 1:
        m = math.lcm(max(1, multiple), window)
        if arch_id == "SwinIR":
            return m, minimum, "symmetric", True, (f"flip (symmetric) to the next multiple of {m} above the side "
                                                   "(SwinIR's main_test_swinir.py)")
        return m, minimum, "reflect", False, f"reflect to a multiple of {m} (HAT's test code)"
    return max(1, multiple), minimum, "reflect", False, (f"reflect to at least {minimum}" if minimum > 1 else "none") + (
        f", a multiple of {multiple}" if multiple > 1 else "") + " (spandrel's call)"


LICENCES: dict[str, str] = {
    "ESRGAN": "Apache-2.0 (ESRGAN, xinntao/ESRGAN) / BSD-3-Clause (Real-ESRGAN, xinntao/Real-ESRGAN)",
    "Compact": "BSD-3-Clause (Real-ESRGAN, xinntao/Real-ESRGAN)",
    "SwinIR": "Apache-2.0 (JingyunLiang/SwinIR)",
    "HAT": "Apache-2.0 (XPixelGroup/HAT)",
    "DAT": "Apache-2.0 (zhengchen1999/DAT)",
    "SPAN": "Apache-2.0 (hongyuanyu/SPAN)",
    "OmniSR": "Apache-2.0 (Francis0625/Omni-SR)",
}
"""Licence of each architecture's code, by spandrel architecture id, as stated in the authors' own
repositories (their LICENSE file or README: Omni-SR's README says "released under the Apache 2.0 license").
spandrel keeps each architecture's licence file in its ``__arch/`` folder on GitHub, but neither its
0.4.2 wheel nor its sdist ships them (checked), so the authors' repositories are the source here.
Any other family: ``unknown`` — spandrel's main package holds only MIT, Apache-2.0 or public-domain
architectures (its README), but i2i has not checked that family's repository. The *weights* in a file
may carry their own terms (training data, the publisher's licence): the card states the code's."""

LICENCE_NOTES: dict[str, str] = {
    "GFPGAN": "includes StyleGAN2 and DFDNet components whose licences restrict commercial use; check before such use",
    "RestoreFormer": "includes StyleGAN2/DFDNet-derived components with non-commercial terms; check before commercial use",
    "AuraSR": "its weights are published under share-alike terms; derived weights must keep them",
}
"""One line for families that spandrel's main package loads but whose parts or weights carry
non-commercial or share-alike terms (issue 24)."""


def licence_of(arch_id: str) -> tuple[str, str | None]:
    """``(licence, note)`` for a spandrel architecture id (``unknown`` where i2i has not verified it)."""
    return LICENCES.get(arch_id, "unknown"), LICENCE_NOTES.get(arch_id)


def staged_radius(net: nn.Module) -> int:
    """Receptive radius, in input pixels, of a feed-forward network of convolutions with nearest
    (``nn.Upsample``) or pixel-shuffle upsampling, its modules registered in forward order.

    The convolutions of each resolution stage add ``dilation · (k - 1) / 2`` pixels of that stage;
    going back through an upsampling by f, a stage radius R (plus what the later stages need, r)
    becomes ``ceil((R + r) / f)`` pixels of the stage before (output pixel i reads input
    ``floor(i / f)``, so R + r output pixels reach that many input pixels at most). Residual
    additions (including the nearest-upsampled input of SRVGGNetCompact) do not widen it; a
    dense block's longest path passes through all its convolutions, which are all counted.
    RRDBNet ×4 with B blocks: (1 + 15B + 1) + ceil((1 + ceil(3 / 2)) / 2) = 15B + 4."""
    stages: list[list[int | float]] = [[1, 0.0]]  # (upsampling into the stage, conv radius within it)
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            kh, kw = m.kernel_size
            dh, dw = m.dilation
            stages[-1][1] += max(dh * (kh - 1), dw * (kw - 1)) / 2
        elif isinstance(m, nn.PixelShuffle):
            stages.append([m.upscale_factor, 0.0])
        elif isinstance(m, nn.Upsample):
            stages.append([int(m.scale_factor if not isinstance(m.scale_factor, tuple) else max(m.scale_factor)), 0.0])
    r = 0
    for f, radius in reversed(stages):
        r = math.ceil((radius + r) / f)
    return int(r)


def exact_tiling_radius(arch_id: str, net: nn.Module) -> int | None:
    """The receptive radius that makes tiles exact for the families where it is knowable (pure
    convolution + nearest / pixel-shuffle upsampling: ESRGAN/Real-ESRGAN RRDBNet without
    pixel-unshuffle, SRVGGNetCompact); None for every other family (attention, global pooling,
    a pixel-unshuffled input whose 2×2 groups would depend on where a tile starts)."""
    if arch_id == "ESRGAN" and not getattr(net, "shuffle_factor", None):
        return staged_radius(net)
    if arch_id == "Compact":
        return staged_radius(net)
    return None


def spandrel_stage_plan(net: nn.Module) -> StagePlan | None:
    """Staged exact tiling (:func:`i2i.tiling.run_staged`) for spandrel's networks where the stages
    are plain: RRDBNet (ESRGAN / Real-ESRGAN) without pixel-unshuffle, and SRVGGNetCompact; None
    for any other network. RRDBNet's ``model`` is ``conv_first``, a shortcut around (the RRDBs,
    ``conv_body``), then the upsampling, HR and last convolutions; the tail adds the shortcut's
    input (``conv_first`` again, on the image) to ``conv_body``'s output and runs the rest. Each
    stage's radius is :func:`staged_radius` of its modules."""
    from spandrel.architectures.Compact import Compact
    from spandrel.architectures.ESRGAN import ESRGAN as RRDBNet

    if isinstance(net, Compact):
        return compact_stage_plan(net.body, net.upsampler, int(net.upscale))
    if not isinstance(net, RRDBNet) or net.shuffle_factor or len(net.model) < 3:
        return None
    head, shortcut, rest = net.model[0], net.model[1], nn.Sequential(*net.model[2:])
    sub = getattr(shortcut, "sub", None)
    if not isinstance(sub, nn.Sequential) or len(sub) < 1:
        return None
    modules, conv_body = tuple(sub[:-1]), sub[-1]
    blocks = tuple(_lean_rrdb(b) for b in modules)

    def tail(feats: Tensor, x: Tensor) -> Tensor:
        return rest(head(x) + conv_body(feats))

    width = next(m for m in conv_body.modules() if isinstance(m, nn.Conv2d)).out_channels
    return StagePlan(head=head, blocks=blocks, tail=tail, head_radius=staged_radius(head),
                     block_radius=max((staged_radius(b) for b in modules), default=0),
                     tail_radius=max(staged_radius(head), staged_radius(conv_body)) + staged_radius(rest),
                     width=int(width))


def _lean_rrdb(block: nn.Module) -> Callable[[Tensor], Tensor]:
    """spandrel's RRDB (``out · 0.2 + x`` around three dense blocks) with the dense blocks run
    without their concatenations (:func:`i2i.tiling.rrdb_lean`: the same values, less memory);
    the block itself where it is not the plain one (ESRGAN+'s 1×1 convolutions)."""
    rdbs = tuple(getattr(block, f"RDB{i}", None) for i in (1, 2, 3))
    if any(r is None or getattr(r, "conv1x1", None) is not None for r in rdbs):
        return block

    dense = tuple(((r.conv1, r.conv2, r.conv3, r.conv4), r.conv5, 0.2) for r in rdbs)
    return lambda x: rrdb_lean(x, dense, 0.2, block)


def _supported_families() -> str:
    from spandrel import MAIN_REGISTRY

    return ", ".join(sorted({a.architecture.name for a in MAIN_REGISTRY.architectures()}))


class SpandrelReader:
    """Single weight files of the image-restoration zoo (see the module docstring)."""

    name = "spandrel"

    def accepts(self, path: Path) -> bool:
        return path.is_file() and path.suffix.lower() in WEIGHT_SUFFIXES

    def read(self, path: str | Path, device: torch.device, with_discriminator: bool) -> LoadedModel:
        p = Path(path).expanduser()
        sd = read_state_dict(p)
        if is_junyanz(sd):  # a pix2pix/CycleGAN generator under another name
            return junyanz_model(sd, p, device, str(path))
        return self.from_state_dict(sd, p, device, str(path))

    def from_state_dict(self, sd: dict[str, Tensor], p: Path, device: torch.device, path: str) -> LoadedModel:
        """The model of a state dict read from file ``p`` (named ``path`` in messages)."""
        from spandrel import ImageModelDescriptor, ModelLoader, UnsupportedModelError

        try:
            desc = ModelLoader(device="cpu").load_from_state_dict(sd)
        except UnsupportedModelError:
            own = self.basicsr(sd, p, device, path)  # BasicSR's MSRResNet / EDSR: no spandrel architecture
            if own is not None:
                return own
            names = ", ".join(list(sd)[:4])
            raise CheckpointError(f"{path}: not an architecture i2i can read (first tensors: {names}); "
                                  f"supported: {_supported_families()}, MSRResNet, EDSR") from None
        except (RuntimeError, ValueError, KeyError, AssertionError) as e:
            raise CheckpointError(f"{path}: looks like {type(e).__name__} to spandrel's loader: {' '.join(str(e).split())[:160]}") from None
        if not isinstance(desc, ImageModelDescriptor):
            raise CheckpointError(f"{path}: a {desc.architecture.name} model ({desc.purpose}) is not an image-to-image "
                                  "model i2i can run")
        req = desc.size_requirements
        net: nn.Module = desc.model.eval()
        arch_id = str(desc.architecture.id)
        multiple, minimum, mode, beyond, padding = peer_padding(arch_id, net, int(req.multiple_of), int(req.minimum))
        if multiple > 1 or minimum > 1 or req.square:
            net = PadToSize(net, desc.scale, multiple, minimum, req.square, mode, beyond).eval()
        net.scale = desc.scale  # type: ignore[assignment]  (what a bare SR generator says about itself)
        dtypes = ("float32", *(("float16",) if desc.supports_half else ()), *(("bfloat16",) if desc.supports_bfloat16 else ()))
        licence, licence_note = licence_of(arch_id)
        radius = exact_tiling_radius(arch_id, desc.model)
        tiling_note = {} if radius is not None or desc.tiling.name.lower() == "supported" else {
            "tiling_advice": f"{desc.tiling.name.lower()}: run whole images (--tile 0); " + (
                f"the input is padded to a multiple of {window} (its attention window): {padding}"
                if (window := getattr(desc.model, "window_size", None)) else
                "its context is not a fixed radius")}
        card = ModelCard(task="sr", slots={"generator": "generator"}, scale=int(desc.scale),
                         in_channels=int(desc.input_channels), out_channels=int(desc.output_channels),
                         value_range=(0.0, 1.0), min_size=max(1, int(req.minimum)), multiple_of=int(req.multiple_of),
                         tiling="exact" if radius is not None else "none", receptive_radius=radius, dtypes=dtypes,
                         provenance=Provenance(format="spandrel", file=str(p), sha256={p.name: file_sha256(p)},
                                               architecture={"generator": str(desc.architecture.id)}, licence=licence),
                         notes={"purpose": desc.purpose, "tags": list(desc.tags),
                                "spandrel_tiling": desc.tiling.name.lower(), "padding": padding,
                                "outscale": "lanczos4", **tiling_note,  # --outscale as Real-ESRGAN's RealESRGANer resizes
                                **({"licence_note": licence_note} if licence_note else {})})
        return LoadedModel(nets={"generator": net.to(device)}, task="sr", path=p, stored_card=card)


    @staticmethod
    def basicsr(sd: dict[str, Tensor], p: Path, device: torch.device, path: str) -> LoadedModel | None:
        """BasicSR's MSRResNet / EDSR files on i2i's own networks (:mod:`i2i.basicsr_files`); None
        when the state dict is neither."""
        from .basicsr_files import BASICSR_LICENCE, basicsr_network
        from .errors import ConfigError

        try:
            found = basicsr_network(sd)
        except (RuntimeError, ConfigError) as e:
            raise CheckpointError(f"{path}: BasicSR keys whose tensors do not fit: {' '.join(str(e).split())[:160]}") from None
        if found is None:
            return None
        net, arch, settings = found
        net.scale = int(settings["scale"])  # type: ignore[assignment]
        radius = staged_radius(net)
        card = ModelCard(task="sr", slots={"generator": "generator"}, scale=int(settings["scale"]),
                         in_channels=int(net.conv_first.in_channels), out_channels=int(net.conv_last.out_channels),
                         value_range=(0.0, 1.0), tiling="exact", receptive_radius=radius, dtypes=ALL_DTYPES,
                         provenance=Provenance(format="basicsr", file=str(p), sha256={p.name: file_sha256(p)},
                                               architecture={"generator": arch}, licence=BASICSR_LICENCE),
                         notes={"purpose": "SR", "settings": settings, "padding": "none (BasicSR's test: the whole image)",
                                "outscale": "lanczos4"})
        return LoadedModel(nets={"generator": net.to(device)}, task="sr", path=p, stored_card=card)


class JunyanzReader:
    """``*net_G.pth``, ``*net_G_A.pth``, ``*net_G_B.pth`` (see the module docstring)."""

    name = "junyanz"

    def accepts(self, path: Path) -> bool:
        return path.is_file() and bool(JUNYANZ_NAME.search(path.name))

    def read(self, path: str | Path, device: torch.device, with_discriminator: bool) -> LoadedModel:
        p = Path(path).expanduser()
        sd = read_state_dict(p)
        if not is_junyanz(sd):
            names = ", ".join(list(sd)[:4])
            raise CheckpointError(f"{path}: not a pix2pix/CycleGAN generator (first tensors: {names}; expected "
                                  "model.model.0.weight (unet_*) or model.1.weight with conv_block (resnet_*))")
        return junyanz_model(sd, p, device, str(path))


def junyanz_model(sd: dict[str, Tensor], p: Path, device: torch.device, where: str) -> LoadedModel:
    """The LoadedModel of their generator state dict read from ``p``: a pix2pix model, or CycleGAN's
    one direction when the name ends in ``_G_A`` (A → B) / ``_G_B`` (B → A)."""
    net, arch = junyanz_generator(sd, where)
    c_in, c_out = _io(net)
    side = JUNYANZ_NAME.search(p.name)
    which = (side.group(1) or "").upper() if side else ""
    prov = Provenance(format="junyanz", file=str(p), sha256={p.name: file_sha256(p)}, licence=JUNYANZ_LICENCE)
    multiple = int(getattr(net, "multiple", 1))
    common = {"value_range": (-1.0, 1.0), "multiple_of": multiple, "tiling": "none", "dtypes": ALL_DTYPES,
              "notes": {"origin": "junyanz/pytorch-CycleGAN-and-pix2pix"}}
    if which in ("_A", "_B"):
        direction, slot = ("AtoB", "generator_ab") if which == "_A" else ("BtoA", "generator_ba")
        card = ModelCard(task="cyclegan", slots={slot: "generator"}, in_channels=c_in if which == "_A" else c_out,
                         out_channels=c_out if which == "_A" else c_in,
                         directions=Directions({direction: slot}, {direction: c_in}),
                         provenance=Provenance(**{**prov.__dict__, "architecture": {slot: arch}}), **common)
        return LoadedModel(nets={slot: net.to(device)}, task="cyclegan", path=p, stored_card=card)
    card = ModelCard(task="sketch2photo", slots={"generator": "generator"}, in_channels=c_in, out_channels=c_out,
                     provenance=Provenance(**{**prov.__dict__, "architecture": {"generator": arch}}), **common)
    return LoadedModel(nets={"generator": net.to(device)}, task="sketch2photo", path=p, stored_card=card)


def _io(net: nn.Module) -> tuple[int, int]:
    convs = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    first, last = convs[0], convs[-1]
    return int(first.in_channels), int(last.out_channels)


FOREIGN_KEY = "foreign_file"
"""``config.json`` key of a pretrained folder made from one foreign weights file (:func:`i2i.hub.save_pretrained_file`)."""


class ForeignFolderReader:
    """A pretrained folder made from one foreign file: ``config.json`` (format ``i2i-pretrained``,
    ``foreign_file``, ``card``) and ``generator/model.safetensors`` holding the file's own state dict
    (its peer's layout), rebuilt by the reader that read the file (spandrel or junyanz). The card is
    the stored one: source file name, its sha256, architecture and licence."""

    name = "foreign-folder"

    def accepts(self, path: Path) -> bool:
        import json

        f = path / "config.json"
        if not path.is_dir() or not f.is_file() or f.stat().st_size > 1 << 20:
            return False
        try:
            info = json.loads(f.read_text(errors="replace"))
        except (OSError, ValueError, RecursionError):
            return False
        return isinstance(info, dict) and isinstance(info.get(FOREIGN_KEY), dict)

    def read(self, path: str | Path, device: torch.device, with_discriminator: bool) -> LoadedModel:
        import json

        from .card import card_from_dict

        p = Path(path).expanduser()
        info = json.loads((p / "config.json").read_text(errors="replace"))
        src = info[FOREIGN_KEY]
        slot = str(src.get("slot", "generator"))
        weights = p / slot / "model.safetensors"
        sd = read_state_dict(weights)
        name = Path(str(src.get("name", "model.pth"))).name  # the original file name: junyanz's direction is in it
        model = junyanz_model(sd, Path(name), device, str(path)) if is_junyanz(sd) else \
            SpandrelReader().from_state_dict(sd, weights, device, str(path))
        stored = card_from_dict(info.get("card"), f"{p / 'config.json'}: card") if info.get("card") else model.card
        card = stored.with_provenance(format="i2i-pretrained", file=str(p))
        model.stored_card, model.path = card, p
        return model
