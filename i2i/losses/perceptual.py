"""VGG perceptual (content) loss.

Johnson et al., "Perceptual Losses for Real-Time Style Transfer and Super-Resolution",
ECCV 2016, eq. 2; Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a
GAN", CVPR 2017, eq. 5 (the VGG loss)::

    l_VGG/i,j = 1/(W_ij H_ij) Σ_x,y ( φ_ij(I_HR) - φ_ij(G(I_LR)) )²_x,y

where φ_ij is the feature map after the j-th convolution's activation before the i-th
max-pooling of an ImageNet-trained VGG19 (Simonyan & Zisserman 2015): "VGG22" =
``relu2_2``, "VGG54" = ``relu5_4``. SRGAN rescales the features by 1/12.75 (§3.2), i.e.
``feature_scale=1/12.75``, which multiplies an MSE by 1/12.75². Here the loss is

    λ · Σ_l w_l · criterion(s·φ_l(x̂), s·φ_l(x))

with ``criterion`` the mean squared (or absolute) error over all elements of the layer,
``w_l`` the per-layer weights of ``layers`` and ``s = feature_scale``.

Real-ESRGAN (Wang et al., ICCVW 2021, §4.1; ESRGAN, Wang et al. 2018, §3.3) compares
*pre-activation* features — ESRGAN's point is that features before the ReLU are denser and
keep the brightness consistent — of five layers, with the L1 criterion::

    layers: realesrgan   ==  {conv1_2: 0.1, conv2_2: 0.1, conv3_4: 1, conv4_4: 1, conv5_4: 1}

(``train_realesrgan_x4plus.yml``'s ``layer_weights``; with ``criterion: l1`` and λ = 1 this is
BasicSR's ``PerceptualLoss`` with ``perceptual_weight: 1``, ``style_weight: 0``). ``layers``
takes a preset name from :data:`LAYER_PRESETS` or a {layer: weight} mapping.

Layer names follow the VGG papers: ``convI_J``, ``reluI_J`` (block I, conv J) and
``poolI``; they are mapped to indices of torchvision's ``vgg19().features`` /
``vgg16().features`` (conv, ReLU, ..., MaxPool with no batch norm), so torchvision state
dicts load unchanged. The network is truncated after the deepest requested layer.

The VGG is **not a registered submodule**: it is frozen, always in eval mode, absent
from ``state_dict()`` / ``parameters()`` (a checkpoint of a recipe never stores 20 M
constant weights, and an optimizer or EMA built over the loss's parameters never sees
them), yet ``.to()`` / ``.cuda()`` / ``.half()`` still move it because ``_apply`` is
forwarded to it. Gradients flow through it to ``pred``.

Weights: a torchvision enum name (``IMAGENET1K_V1``, ``DEFAULT``; VGG16 also
``IMAGENET1K_FEATURES``, whose own normalisation is then used) is loaded through
torchvision's weight API from the torch hub cache (``$TORCH_HOME/hub/checkpoints``,
default ``~/.cache/torch/hub/checkpoints``), downloading only if it is missing; a local
``.pth``/``.pt`` (loaded with ``weights_only=True``) or ``.safetensors`` file with
torchvision keys (``features.0.weight`` ...; classifier keys are ignored) or bare
feature keys (``0.weight`` ...); or ``None`` for random weights (tests only).
"""
from __future__ import annotations

import contextlib

import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import CheckpointError, ConfigError
from ..registry import LOSSES

__all__ = ["PerceptualLoss", "VGG_CONFIGS", "LAYER_PRESETS", "vgg_layer_indices", "build_vgg_features", "load_vgg_state"]

# Simonyan & Zisserman 2015, Table 1, configurations D (VGG16) and E (VGG19): the
# output channels of every 3×3 conv, "M" = 2×2 max-pooling (torchvision's cfgs "D", "E")
VGG_CONFIGS: dict[str, list[int | str]] = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}
# named layer sets: SRGAN's VGG54 (Ledig et al. 2017, §2.2.1) and Real-ESRGAN's five
# pre-activation layers (train_realesrgan_x4plus.yml, perceptual_opt.layer_weights)
LAYER_PRESETS: dict[str, dict[str, float]] = {
    "srgan": {"relu5_4": 1.0},
    "realesrgan": {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0, "conv4_4": 1.0, "conv5_4": 1.0},
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg_layer_indices(arch: str) -> dict[str, int]:
    """Layer name -> index in torchvision's ``features``: ``{'conv1_1': 0, 'relu1_1': 1, ...}``."""
    names: dict[str, int] = {}
    index, block, conv = 0, 1, 0
    for v in VGG_CONFIGS[arch]:
        if v == "M":
            names[f"pool{block}"] = index
            index, block, conv = index + 1, block + 1, 0
        else:
            conv += 1
            names[f"conv{block}_{conv}"] = index
            names[f"relu{block}_{conv}"] = index + 1
            index += 2
    return names


def build_vgg_features(arch: str, last_index: int) -> nn.Sequential:
    """torchvision's VGG ``features`` layout (same indices) up to and including ``last_index``.

    Built here rather than through ``torchvision.models.vgg19()`` to avoid allocating and
    initialising the 120 M-parameter classifier that the loss never uses. ReLUs are not
    in-place, so that a stored ``convI_J`` output is not overwritten by the next ReLU.
    """
    layers: list[nn.Module] = []
    cin = 3
    for v in VGG_CONFIGS[arch]:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, int(v), 3, padding=1), nn.ReLU(inplace=False)]
            cin = int(v)
    return nn.Sequential(*layers[: last_index + 1])


def _weights_enum(arch: str) -> Any:
    from torchvision.models import VGG16_Weights, VGG19_Weights

    return {"vgg16": VGG16_Weights, "vgg19": VGG19_Weights}[arch]


def _read_file(path: Path) -> Mapping[str, Any]:
    suffix = path.suffix.lower()
    if not path.is_file():
        raise CheckpointError(f"VGG weights file not found: {path}")
    try:
        if suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt / pickled module / wrong format: one line naming the file
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"cannot read VGG weights from {path}: {msg}") from None
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: expected a state dict (mapping of tensors), got {type(obj).__name__}")
    return obj


def _from_torchvision(arch: str, name: str) -> tuple[Mapping[str, Any], str, tuple[float, ...], tuple[float, ...]]:
    """Load an enum's weights from the hub cache (downloading if possible) -> (state, source, mean, std)."""
    from torch.hub import get_dir

    weights = _weights_enum(arch)[name]
    filename = os.path.basename(weights.url)
    cached = os.path.join(get_dir(), "checkpoints", filename)
    try:
        state = weights.get_state_dict(progress=False, map_location="cpu")
    except Exception as e:  # offline (URLError/OSError), interrupted or corrupt download
        reason = " ".join(str(e).split()) or type(e).__name__
        raise CheckpointError(
            f"{arch} weights {name} are not in the torch hub cache and could not be downloaded ({reason}); "
            f"put {filename} (from {weights.url}) at {cached}, or set weights: to a local .pth/.safetensors path"
        ) from None
    kw = getattr(weights.transforms, "keywords", {}) or {}
    return state, cached, tuple(kw.get("mean", IMAGENET_MEAN)), tuple(kw.get("std", IMAGENET_STD))


def load_vgg_state(features: nn.Sequential, state: Mapping[str, Any], source: str, arch: str) -> None:
    """Copy the conv weights ``features`` needs from a torchvision-style state dict.

    Accepts keys ``features.N.weight`` (a full VGG; other keys such as ``classifier.*``
    are ignored), bare ``N.weight``, and either behind a ``module.`` prefix. Raises
    :class:`CheckpointError` naming ``source`` and the first missing or misshapen key.
    """
    bare: dict[str, Any] = {}
    for key, value in state.items():
        k = key[len("module."):] if key.startswith("module.") else key
        if k.startswith("features."):
            bare[k[len("features."):]] = value
        elif k.split(".", 1)[0].isdigit():
            bare.setdefault(k, value)
    names = {i: n for n, i in vgg_layer_indices(arch).items() if n.startswith("conv")}
    needed: dict[str, Tensor] = {}
    for key, param in features.state_dict().items():
        idx = int(key.split(".", 1)[0])
        if key not in bare:
            raise CheckpointError(
                f"{source}: missing key 'features.{key}' ({arch} {names.get(idx, idx)}); expected a torchvision "
                f"{arch} state dict (keys 'features.N.weight' or 'N.weight')")
        value = bare[key]
        if not isinstance(value, Tensor) or value.shape != param.shape:
            got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise CheckpointError(f"{source}: 'features.{key}' has shape {got}, {arch} needs {tuple(param.shape)}")
        needed[key] = value.float()
    features.load_state_dict(needed, strict=True)


@LOSSES.register("perceptual")
class PerceptualLoss(nn.Module):
    """λ · Σ_l w_l · criterion(s·φ_l(pred), s·φ_l(target)) over frozen VGG feature maps.

    Args:
        layers: layer name -> weight w_l, e.g. ``{"relu5_4": 1.0}`` (SRGAN's VGG54) or
            ``{"relu2_2": 1.0}`` (VGG22), or a preset name of :data:`LAYER_PRESETS`
            (``realesrgan``: the five pre-activation layers, 0.1/0.1/1/1/1). Names:
            ``convI_J`` (before the ReLU), ``reluI_J``, ``poolI``.
        arch: ``vgg19`` (SRGAN) or ``vgg16`` (Johnson et al.).
        criterion: ``mse`` (SRGAN, eq. 5) or ``l1``; a mean over all elements.
        feature_scale: s, multiplies the features before the criterion (SRGAN: 1/12.75).
        input_range: (lo, hi) of the images given to ``forward``; mapped to [0, 1] and
            then normalised with the weights' mean/std (ImageNet).
        weights: torchvision enum name, local ``.pth``/``.pt``/``.safetensors`` path, or
            ``None`` for random weights (tests only).
        weight: λ, the factor on the returned loss.
        low_precision: run the VGG under the caller's autocast (bf16/fp16). Off by default,
            as a precaution: the loss subtracts two nearly equal feature maps, which bf16
            rounds before the subtraction. Its effect could not be measured here (no
            ImageNet weights offline; with random weights the relu5_4 features vanish, and
            the SRGAN step's bf16 gradient error, 27 %, came entirely from the adversarial
            term — README "Performance"). On, the SRGAN step is 1.4× faster again on a
            bf16 CPU (2.00 s vs 2.76 s, batch 16, HR 96²).

    ``forward(pred, target)``: (N, 3, H, W) images in ``input_range`` -> scalar. The
    gradient reaches ``pred`` (and ``target`` if it requires grad), never the VGG.
    """

    def __init__(self, layers: dict[str, float] | str = {"relu5_4": 1.0},  # noqa: B006  (never mutated: copied)
                 arch: Literal["vgg19", "vgg16"] = "vgg19", criterion: Literal["mse", "l1"] = "mse",
                 feature_scale: float = 1.0, input_range: tuple[float, float] = (0.0, 1.0),
                 weights: str | None = "IMAGENET1K_V1", weight: float = 1.0, low_precision: bool = False):
        super().__init__()
        self.low_precision = low_precision
        if arch not in VGG_CONFIGS:
            raise ConfigError(f"must be one of {', '.join(VGG_CONFIGS)}, got {arch!r}", "arch")
        if criterion not in ("mse", "l1"):
            raise ConfigError(f"must be 'mse' or 'l1', got {criterion!r}", "criterion")
        index = vgg_layer_indices(arch)
        if isinstance(layers, str):
            if layers not in LAYER_PRESETS:
                raise ConfigError(f"unknown preset {layers!r}; choose from {', '.join(LAYER_PRESETS)} or give "
                                  f"{{layer: weight}}", "layers")
            layers = LAYER_PRESETS[layers]
        if not layers:
            raise ConfigError("give at least one layer, e.g. {relu5_4: 1.0}", "layers")
        for name, w in layers.items():
            if name not in index:
                raise ConfigError(f"{name!r} is not a {arch} layer; choose from {', '.join(index)}", "layers")
            if not math.isfinite(w):
                raise ConfigError(f"weight of {name!r} must be finite, got {w}", "layers")
        if not (len(input_range) == 2 and input_range[1] > input_range[0]):
            raise ConfigError(f"must be (lo, hi) with hi > lo, got {input_range!r}", "input_range")
        if not feature_scale > 0:
            raise ConfigError(f"must be > 0, got {feature_scale}", "feature_scale")

        self.arch = arch
        self.layers = dict(layers)
        self.criterion = criterion
        self.feature_scale = float(feature_scale)
        self.input_range = (float(input_range[0]), float(input_range[1]))
        self.weight = float(weight)
        self.weights_source = weights
        self._index_name = {index[n]: n for n in self.layers}  # features index -> layer name

        features = build_vgg_features(arch, max(self._index_name))
        mean, std = IMAGENET_MEAN, IMAGENET_STD
        if weights is not None:
            enum = _weights_enum(arch)
            if weights in enum.__members__:
                state, source, mean, std = _from_torchvision(arch, weights)
            else:
                path = Path(os.path.expanduser(weights))
                if path.suffix.lower() not in (".pth", ".pt", ".safetensors"):
                    raise ConfigError(
                        f"expected a torchvision {arch} weights name ({', '.join(enum.__members__)}), a .pth/.pt/"
                        f".safetensors path, or null; got {weights!r}", "weights")
                state, source = _read_file(path), str(path)
            load_vgg_state(features, state, source, arch)
        features.eval().requires_grad_(False)
        # a plain attribute (not a submodule): out of state_dict/parameters; see _apply
        object.__setattr__(self, "vgg", features)
        # non-persistent: move with .to() but stay out of checkpoints
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def _apply(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> PerceptualLoss:
        # .to()/.cuda()/.half() go through _apply; forward it to the unregistered VGG
        super()._apply(fn, *args, **kwargs)
        self.vgg._apply(fn, *args, **kwargs)
        return self

    def train(self, mode: bool = True) -> PerceptualLoss:
        """Mode of this module only; the VGG stays in eval mode (fixed feature extractor)."""
        super().train(mode)
        self.vgg.eval()
        return self

    def normalize(self, x: Tensor) -> Tensor:
        """Images in ``input_range`` (N, 3, H, W) -> VGG input ((x01 - mean) / std)."""
        lo, hi = self.input_range
        x01 = (x - lo) / (hi - lo)
        return (x01 - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def features(self, x: Tensor) -> dict[int, Tensor]:
        """The requested feature maps of images ``x`` in ``input_range``: {features index: (N, C_l, h_l, w_l)}."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"perceptual loss expects (N, 3, H, W) RGB images, got {tuple(x.shape)}")
        out: dict[int, Tensor] = {}
        precision = contextlib.nullcontext() if self.low_precision else torch.autocast(x.device.type, enabled=False)
        with precision:  # fp32 unless asked: see ``low_precision``
            h = self.normalize(x if self.low_precision else x.to(self.mean.dtype))
            for i, layer in enumerate(self.vgg):
                h = layer(h)
                if i in self._index_name:
                    out[i] = h
        return out

    def layer_losses(self, pred: Tensor, target: Tensor) -> dict[str, Tensor]:
        """Unweighted criterion(s·φ_l(pred), s·φ_l(target)) per requested layer name (for logging)."""
        if pred.shape != target.shape:
            raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
        fp, ft = self.features(pred), self.features(target)
        crit = F.mse_loss if self.criterion == "mse" else F.l1_loss
        s = self.feature_scale
        return {self._index_name[i]: crit(s * fp[i].float(), s * ft[i].float()) for i in fp}

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        per_layer = self.layer_losses(pred, target)
        total = sum(self.layers[name] * value for name, value in per_layer.items())
        return self.weight * total  # type: ignore[return-value]

    def extra_repr(self) -> str:
        return (f"arch={self.arch}, layers={self.layers}, criterion={self.criterion}, "
                f"feature_scale={self.feature_scale}, weights={self.weights_source!r}, weight={self.weight}")
