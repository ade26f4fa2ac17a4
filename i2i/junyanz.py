"""pix2pix / CycleGAN generator files of junyanz/pytorch-CycleGAN-and-pix2pix, onto i2i's own generators.

Zhu, Park et al., https://github.com/junyanz/pytorch-CycleGAN-and-pix2pix (BSD-2-Clause):
``checkpoints/<name>/latest_net_G.pth`` (pix2pix), ``latest_net_G_A.pth`` (CycleGAN, A → B) and
``latest_net_G_B.pth`` (B → A), each a plain ``state_dict`` of their ``models/networks.py``
generators. spandrel has no reader for them; this module maps their keys onto
:class:`i2i.nn.unet.UNet` (``unet_128`` / ``unet_256``) and :class:`i2i.nn.resnet_generator.ResnetGenerator`
(``resnet_6blocks`` / ``resnet_9blocks``), which compute the same function (the layout is a
fact about their files; the code here is i2i's):

* **U-Net** (``UnetGenerator``): nested ``UnetSkipConnectionBlock`` s, outermost first. The
  block at depth ``d`` holds its layers at ``model.model.1.model.`` + ``3.model.`` × (d - 1); the outermost
  block has ``[downconv, submodule, uprelu, upconv, tanh]`` (convs at 0 and 3), the middle ones
  ``[downrelu, downconv, downnorm, submodule, uprelu, upconv, upnorm(, dropout)]`` (1, 2, 5, 6),
  the innermost ``[downrelu, downconv, uprelu, upconv, upnorm]`` (1, 3, 4).
* **ResNet** (``ResnetGenerator``): one ``model`` Sequential with i2i's own indices; the blocks'
  ``conv_block`` is i2i's ``body``.
* Their convolutions carry a bias exactly when the norm is InstanceNorm (``use_bias``). i2i's
  drop it where a norm follows: an InstanceNorm subtracts each channel's mean, so a per-channel
  bias before it cancels exactly. Where i2i has a bias and theirs has none (BatchNorm files, the
  U-Net's first and innermost down-convolutions), it is zero.
* Their U-Net blocks concatenate ``[skip, up]``, i2i's ``[up, skip]``: the transposed convolutions
  reading a concatenation get their input-channel halves swapped.
* Their InstanceNorm is ``affine=False, track_running_stats=False``; files written by PyTorch
  < 0.4 still hold its ``running_mean`` / ``running_var`` (their ``test.py`` patches them away
  before loading): ignored here the same way.
* Dropout (their ``--no_dropout`` off) adds no tensors in the U-Net and shifts the ResNet block's
  second convolution from index 5 to 6; it is inactive in eval mode (their ``test.py --eval``).

The card: task ``sketch2photo`` (``latest_net_G.pth``, run by the pix2pix front-end on the images
given, without a sketch style) or ``cyclegan`` for the one direction the file holds; values in
[-1, 1]; sizes padded to the generator's multiple; whole images (``tiling: none``: instance norm
and the U-Net's bottleneck see the whole image).
"""
from __future__ import annotations

import re

import torch
from torch import Tensor, nn

from .errors import CheckpointError

__all__ = ["JUNYANZ_LICENCE", "JUNYANZ_NAME", "is_junyanz", "junyanz_generator", "to_junyanz"]

JUNYANZ_LICENCE = "BSD-2-Clause"
"""Of junyanz/pytorch-CycleGAN-and-pix2pix (its LICENSE file); weights trained by others carry their data's terms."""
JUNYANZ_NAME = re.compile(r"net_G(_[AB])?\.(pth|pt)$", re.IGNORECASE)
_NORM_STATS = ("running_mean", "running_var", "num_batches_tracked")


def is_junyanz(sd: dict[str, Tensor]) -> bool:
    """Whether a state dict has the layout of their U-Net or ResNet generator."""
    return "model.model.0.weight" in sd or ("model.1.weight" in sd and any(".conv_block." in k for k in sd))


def _unet_prefix(depth: int) -> str:
    """The Sequential of the block at ``depth``: the outermost holds its submodule at 1, the others at 3."""
    return "model.model." + ("1.model." + "3.model." * (depth - 1) if depth else "")


def _norm_of(sd: dict[str, Tensor], prefix: str) -> str:
    """``batch`` when the norm at ``prefix`` is a BatchNorm (affine, so it has ``weight``); else ``instance``."""
    return "batch" if f"{prefix}.weight" in sd else "instance"


def _unet_map(sd: dict[str, Tensor]) -> tuple[dict[str, str], dict[str, int | str]]:
    """(i2i key prefix -> their key prefix for each conv/norm, the UNet's arguments)."""
    depth = 0
    while f"{_unet_prefix(depth + 1)}1.weight" in sd:
        depth += 1
    n = depth + 1  # num_downs
    if n < 2:
        raise ValueError("a U-Net of fewer than 2 levels")
    m = _unet_modules(n)
    p = _unet_prefix(n - 1)
    first = sd[_unet_prefix(0) + "0.weight"]  # (ngf, in, 4, 4)
    ngf = int(first.shape[0])
    norm = _norm_of(sd, _unet_prefix(1) + "2") if n > 2 else _norm_of(sd, p + "4")
    args = {"in_channels": int(first.shape[1]), "out_channels": int(sd[_unet_prefix(0) + "3.weight"].shape[1]),
            "num_downs": n, "base_channels": ngf, "max_channels": 8 * ngf, "norm": norm}
    return m, args


def _unet_modules(n: int) -> dict[str, str]:
    """i2i U-Net module -> their module, for ``num_downs`` n."""
    m = {"encoder.0.0": _unet_prefix(0) + "0", "head.0": _unet_prefix(0) + "3"}
    for d in range(1, n - 1):
        p = _unet_prefix(d)
        m.update({f"encoder.{d}.0": p + "1", f"encoder.{d}.1": p + "2",
                  f"decoder.{n - 1 - d}.0": p + "5", f"decoder.{n - 1 - d}.1": p + "6"})
    p = _unet_prefix(n - 1)
    m.update({f"encoder.{n - 1}.0": p + "1", "decoder.0.0": p + "3", "decoder.0.1": p + "4"})
    return m


def _unet_swapped(n: int) -> set[str]:
    """The U-Net weights reading a concatenation (theirs ``[skip, up]``, i2i's ``[up, skip]``)."""
    return {"head.0.weight", *(f"decoder.{j}.0.weight" for j in range(1, n - 1))}


def _resnet_map(sd: dict[str, Tensor]) -> tuple[dict[str, str], dict[str, int | str | float]]:
    idx = sorted({int(k.split(".")[1]) for k in sd if k.startswith("model.")})
    blocks = sorted({int(k.split(".")[1]) for k in sd if ".conv_block." in k})
    dropout = any(f"model.{blocks[0]}.conv_block.6.weight" == k for k in sd) if blocks else False
    first = sd["model.1.weight"]  # (ngf, in, 7, 7)
    last = sd[f"model.{idx[-1]}.weight"]  # (out, ngf, 7, 7)
    body_start = blocks[0] if blocks else idx[-1]
    n_down = sum(1 for i in idx if 1 < i < body_start and f"model.{i}.weight" in sd and sd[f"model.{i}.weight"].dim() == 4)
    m = {}
    for k in sd:
        base = k.rsplit(".", 1)[0]
        m[base.replace(".conv_block.", ".body.")] = base
    args = {"in_channels": int(first.shape[1]), "out_channels": int(last.shape[0]), "base_channels": int(first.shape[0]),
            "n_blocks": len(blocks), "n_downsampling": n_down, "norm": _norm_of(sd, "model.2"),
            "dropout": 0.5 if dropout else 0.0}
    return m, args


def junyanz_generator(sd: dict[str, Tensor], where: str = "file") -> tuple[nn.Module, str]:
    """i2i's generator holding the weights of their state dict ``sd``, in eval mode, and its
    architecture name (``unet_256``, ``resnet_9blocks``, …); one line naming ``where`` when the
    tensors do not fit."""
    from .nn.resnet_generator import ResnetGenerator
    from .nn.unet import UNet

    try:
        if "model.model.0.weight" in sd:
            mapping, args = _unet_map(sd)
            net: nn.Module = UNet(**args, init="default")  # type: ignore[arg-type]
            name = f"unet_{2 ** int(args['num_downs'])}"
            swap = _unet_swapped(int(args["num_downs"]))
        else:
            mapping, args = _resnet_map(sd)
            net = ResnetGenerator(**args, init="default")  # type: ignore[arg-type]
            name = f"resnet_{args['n_blocks']}blocks"
            swap = set()
    except (KeyError, IndexError, ValueError) as e:
        raise CheckpointError(f"{where}: not a pix2pix/CycleGAN generator layout ({type(e).__name__}: {e})") from None
    _load_mapped(net, sd, mapping, where, swap)
    return net.eval(), name


def _swap_halves(w: Tensor) -> Tensor:
    """A transposed conv's weight (in, out, k, k) for inputs whose two channel halves trade places."""
    h = w.shape[0] // 2
    return torch.cat([w[h:], w[:h]], 0)


def _load_mapped(net: nn.Module, sd: dict[str, Tensor], mapping: dict[str, str], where: str,
                 swap: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    """Fill ``net`` from ``sd`` through ``mapping`` (i2i module prefix -> theirs); every tensor of
    theirs must be used, or be one the module docstring says cancels (a bias before an
    InstanceNorm, an old InstanceNorm's running statistics). The weights named in ``swap`` see a
    concatenation in the other order (theirs ``cat([skip, up])``, i2i's ``cat([up, skip])``)."""
    own = net.state_dict()
    used: set[str] = set()
    missing: list[str] = []
    new: dict[str, Tensor] = {}
    for key, target in own.items():
        mod, leaf = key.rsplit(".", 1)
        src = f"{mapping.get(mod, '?')}.{leaf}"
        if src in sd:
            if sd[src].shape != target.shape:
                raise CheckpointError(f"{where}: {src} has shape {tuple(sd[src].shape)}, expected {tuple(target.shape)}")
            new[key] = (_swap_halves(sd[src]) if key in swap else sd[src]).to(target.dtype)
            used.add(src)
        elif leaf == "bias" or leaf == "num_batches_tracked":
            new[key] = torch.zeros_like(target)  # no bias in theirs (BatchNorm files); an old BN without a counter
        else:
            missing.append(key)
    by_module = {v: k for k, v in mapping.items()}
    ignorable = set()
    for k in set(sd) - used:
        mod, leaf = k.rsplit(".", 1)
        if leaf in _NORM_STATS and f"{mod}.weight" not in sd:
            ignorable.add(k)  # an old InstanceNorm's running statistics
        elif leaf == "bias" and by_module.get(mod) is not None and f"{by_module[mod]}.bias" not in own:
            ignorable.add(k)  # a conv bias before an InstanceNorm: cancelled by it
    unexpected = sorted(set(sd) - used - ignorable)
    if missing or unexpected:
        raise CheckpointError(f"{where}: pix2pix/CycleGAN generator keys do not fit i2i's; missing: "
                              f"{', '.join(missing[:6]) or '-'}; unexpected: {', '.join(unexpected[:6]) or '-'}")
    net.load_state_dict(new)


def to_junyanz(net: nn.Module, where: str = "generator") -> dict[str, Tensor]:
    """The state dict of i2i's U-Net / ResNet generator ``net`` in their layout (``i2i-export --format
    peer``), loadable by their ``networks.py`` with the same ``--norm`` and ``--netG``: a conv bias
    of theirs that i2i drops before an InstanceNorm is written as zeros (the norm cancels it); a bias
    of i2i's that their BatchNorm layout lacks (the U-Net's first and innermost down-convolutions)
    must be zero, else their network cannot compute the same and this is one line naming it."""
    from .nn.resnet_generator import ResnetGenerator
    from .nn.unet import UNet

    own = net.state_dict()
    if isinstance(net, UNet):
        modules, swap, last = _unet_modules(net.num_downs), _unet_swapped(net.num_downs), "head.0"
    elif isinstance(net, ResnetGenerator):
        convs = [k.rsplit(".", 1)[0] for k in own if k.endswith(".weight")]
        modules = {k: k.replace(".body.", ".conv_block.") for k in dict.fromkeys(k.rsplit(".", 1)[0] for k in own)}
        swap, last = set(), convs[-1]
    else:
        raise CheckpointError(f"{where}: a {type(net).__name__} has no pix2pix/CycleGAN layout (unet_*, resnet_* only)")
    instance = any(isinstance(m, nn.InstanceNorm2d) for m in net.modules())
    out: dict[str, Tensor] = {}
    for mod, theirs in modules.items():
        module = net.get_submodule(mod)
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            w = own[f"{mod}.weight"]
            out[f"{theirs}.weight"] = _swap_halves(w) if f"{mod}.weight" in swap else w
            bias = own.get(f"{mod}.bias")
            if instance or mod == last:
                out[f"{theirs}.bias"] = bias if bias is not None else torch.zeros(module.out_channels)
            elif bias is not None and bool(bias.abs().max() > 0):
                raise CheckpointError(f"{where}: {mod}.bias is not zero, and their BatchNorm generator has no bias there")
        elif isinstance(module, nn.BatchNorm2d):
            for leaf in ("weight", "bias", *_NORM_STATS):
                out[f"{theirs}.{leaf}"] = own[f"{mod}.{leaf}"]
    return {k: v.detach().clone().contiguous() for k, v in out.items()}
