"""The adversary a(x, y) of adversarial semantic segmentation, and its label-map encodings.

Luc, Couprie, Chintala & Verbeek, "Semantic Segmentation using Adversarial Networks",
NIPS 2016 Workshop on Adversarial Training (arXiv:1611.08408).

The adversary sees an image x and a class-probability map y (N, C, H, W): the one-hot
ground truth, or the segmentor's softmax s(x), and outputs the logit of "y is ground
truth" (eq. 1: bce(a(x, y), 1) + bce(a(x, s(x)), 0)). Because a one-hot map is trivially
told apart from a softmax by its values alone, §3.2 gives three input encodings:

* ``basic``   -- the C probability maps as they are (channels: C, next to the image).
* ``product`` -- the image multiplied by each class map: ȳ_c = y_c ⊙ x, 3·C channels.
  The image itself is not given again (it is the sum of the products).
* ``scaling`` -- the *ground truth* is softened toward the prediction's confidence
  (:func:`scale_labels`, τ = 0.9 by default): at each pixel with true label l,
  ȳ_l = max(τ, s(x)_l) and every other class c gets s(x)_c·(1 - ȳ_l)/(1 - s(x)_l).
  The adversary's input layout is that of ``basic``; the recipe applies the scaling to
  the ground truth before calling the adversary (it reads ``encoding`` and ``tau``
  from this module).

Adversaries (registered discriminators; every one takes ``(image, maps)``):

=================  ==========================================================  =====================
name               what it is                                                  field of view
=================  ==========================================================  =====================
``luc_stanford``   the paper's Stanford Background adversary (Fig. 2, top)     34 (image), 30 (maps)
``luc_smallfov``   the paper's Pascal VOC "SmallFOV" adversary (Fig. 2)        18 (maps)
``luc_largefov``   the paper's Pascal VOC "LargeFOV" adversary (Fig. 2)        34 (maps)
``seg_adversary``  this project's own designs, ``two_branch`` (the Stanford    34 / 30, 64
                   layout with widths scaled by ``width``) and
                   ``dilated_fov64``; one logit per image
=================  ==========================================================  =====================

Fields of view are in input pixels, one side, derived from the layers by
:func:`field_of_view` and checked in ``tests/test_nn_seg_adversary.py`` by back-propagating
one output logit to the input.

**Where the layer tables come from.** The paper itself could not be read when this was
written (offline), so the tables are its Fig. 2 as two independent public
re-implementations reproduce it (facts only, no code taken): a TensorFlow one
(``stanford_bd_model`` and ``smallFOV``) and a PyTorch one (``StanfordBNet``). Both give
the Stanford convs below; the SmallFOV table is the TensorFlow one's (a Chainer one
agrees layer for layer). A public summary of
the paper (shortscience.org, arXiv 1611.08408) gives the VOC adversaries' fields of view as
18×18 ("SmallFOV") and 34×34 ("LargeFOV") label-map pixels; :func:`field_of_view` of
``luc_smallfov`` is 18 and of ``luc_largefov`` 34, which agree. Choices the tables leave open, made here:

* **Output.** The tables end in a conv to 2 channels (real / fake, softmax). A 2-way
  softmax is a sigmoid of the difference of its two logits, softmax(l₀, l₁)₀ = σ(l₀ − l₁),
  so one output channel is the same family of functions with one channel fewer: the
  ``luc_*`` nets output one logit per location, (N, 1, ⌈H/4⌉, ⌈W/4⌉), and i2i's
  adversarial losses average the per-location terms (each location judges one field of
  view, as a PatchGAN's patches do). The TensorFlow re-implementation also keeps the map
  (its mean over locations is commented out); the PyTorch one averages the logits over
  locations first, a different reduction that the tables do not settle.
* **Pooling.** 2×2 max-pooling, stride 2 (``ceil_mode``, so odd sizes work), as in the
  TensorFlow Stanford model. Its SmallFOV calls an average-pooling op under comments that
  say "Max-Pooling"; with the Stanford table's max-pooling and those comments, max it is
  here too. (The PyTorch ``StanfordBNet`` pools with stride 1 and also pools in its image
  branch; the TensorFlow model has no image-branch pools. With stride-2 image-branch pools
  the image would have to be 4× the label map's size; i2i's maps are the image's size.)
* **Padding** keeps the size ("same"): k // 2 for a k×k conv.
* **Image scaling.** The image branch sees x·2 − 1 (x in [0, 1]); the products of the
  ``product`` encoding use x in [0, 1].
* **SmallFOV input.** The label-side input only: C channels (``basic``/``scaling``) or
  3·C (``product``); the image is not concatenated (the TensorFlow model's input is C'
  channels). The public summary says the authors found that leaving the image out of
  ``basic`` did not change the results.

**LargeFOV** (stated field of view 34×34). Its layer table is the PyTorch re-implementation's
``LargeFOV`` class (3×3 convs 96-128-128, pool, 256-256, pool, 512, then the output conv),
checked against two independent facts: (1) its field of view, derived layer by layer, is
34, the paper's stated figure; (2) a third, Chainer re-implementation, whose ``SmallFOV``
equals the TensorFlow one's layer for layer, has a ``LargeFOVLight`` with exactly this
layout and the later widths reduced (96-128-128, pool, 128-128, pool, 256), the paper's
"light" capacity variant, so the full-width table is the one above. The light variants are
not registered.

``seg_adversary`` keeps the project's earlier designs under names that do not claim the
paper's: ``design: dilated_fov64`` (formerly ``largefov``) is a stack of 3×3 convs of
growing dilation on the concatenated image and maps, with a 64-pixel field of view; it is
*not* the paper's LargeFOV.

Ignored pixels (label = ``ignore_index``) must carry all-zero class maps in both the
ground-truth and the predicted input, so that the adversary cannot use them to tell the
two apart: :func:`to_onehot` returns zeros there and :func:`valid_mask` gives the mask
the recipe multiplies the softmax with.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..registry import DISCRIMINATORS

Encoding = Literal["basic", "product", "scaling"]
Design = Literal["two_branch", "dilated_fov64"]


# --- label maps ---------------------------------------------------------------------------
def valid_mask(labels: Tensor, ignore_index: int = 255) -> Tensor:
    """(N, H, W) int labels -> (N, 1, H, W) float mask: 1 where labelled, 0 where ignored."""
    return (labels != ignore_index).unsqueeze(1).float()


def to_onehot(labels: Tensor, num_classes: int, ignore_index: int = 255, check: bool = True) -> Tensor:
    """(N, H, W) int64 labels in [0, C) ∪ {ignore_index} -> (N, C, H, W) float one-hot.

    Ignored pixels get an all-zero column. Any other out-of-range label is an error
    (silently clamping it would train on a wrong class). ``check=False`` skips that test, which
    reads the labels on the host: the training step does, since on a GPU the read would stall
    every step, the datasets already map each mask through a class table (a wrong value is a
    DataError there) and the segmentor's cross-entropy rejects out-of-range targets itself.
    """
    if labels.dim() != 3:
        raise ValueError(f"labels must be (N, H, W), got shape {tuple(labels.shape)}")
    valid = labels != ignore_index
    bad = valid & ((labels < 0) | (labels >= num_classes)) if check else None
    if bad is not None and bad.any():
        raise ValueError(f"labels outside [0, {num_classes}) that are not ignore_index={ignore_index}: "
                         f"{sorted(labels[bad].unique().tolist())[:10]}")
    safe = torch.where(valid, labels, torch.zeros_like(labels))
    # a comparison, not F.one_hot: one_hot reads the labels' max on the host (a sync per step)
    classes = torch.arange(num_classes, device=labels.device).view(1, num_classes, 1, 1)
    onehot = (safe.long().unsqueeze(1) == classes).float()
    return onehot * valid.unsqueeze(1)


def scale_labels(onehot: Tensor, probs: Tensor, tau: float = 0.9) -> Tensor:
    """The paper's "scaling" encoding of the ground truth (§3.2).

    At each pixel with true label l (``onehot[:, l] == 1``):

        ȳ_l = max(τ, s_l),    ȳ_c = s_c · (1 - ȳ_l) / (1 - s_l)   for c ≠ l,

    so ȳ sums to 1, ȳ_l ≥ τ, the other classes keep the prediction's proportions, and
    ȳ = s exactly where the prediction is already at least τ-confident in the true class.

    Args:
        onehot: (N, C, H, W) one-hot ground truth; all-zero columns (ignored pixels) stay zero.
        probs: (N, C, H, W) softmax of the segmentor, each column summing to 1. It is
            used as a constant (detached): the paper's segmentor loss has no term through
            the ground-truth input.
        tau: τ in [0, 1]; τ = 1 returns the one-hot unchanged.

    Returns:
        (N, C, H, W) float in [0, 1].
    """
    if onehot.shape != probs.shape:
        raise ValueError(f"onehot {tuple(onehot.shape)} and probs {tuple(probs.shape)} differ in shape")
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"tau must be in [0, 1], got {tau}")
    probs = probs.detach().to(onehot.dtype)
    s_true = (probs * onehot).sum(1, keepdim=True)  # s_l, (N, 1, H, W); 0 at ignored pixels
    y_true = s_true.clamp(min=tau)
    # Where s_l >= τ the ratio is exactly 1 (ȳ = s); elsewhere 1 - s_l > 1 - τ >= 0, so
    # the division is safe; the clamp only guards the τ = 1, s_l = 1 corner.
    ratio = torch.where(s_true >= tau, torch.ones_like(s_true), (1 - y_true) / (1 - s_true).clamp(min=1e-12))
    labelled = onehot.sum(1, keepdim=True)  # 1 where labelled, 0 where ignored
    return (onehot * y_true + (1 - onehot) * probs * ratio) * labelled


def encode_maps(image: Tensor, maps: Tensor, encoding: str) -> Tensor:
    """The label-side input: ``maps`` for basic/scaling, per-class products for ``product``.

    image (N, 3, H, W) in [0, 1], maps (N, C, H, W) -> (N, C, H, W) or (N, 3·C, H, W)
    ordered class-major (class 0's three colour channels first).
    """
    if encoding == "product":
        n, c, h, w = maps.shape
        return (maps.unsqueeze(2) * image.unsqueeze(1)).reshape(n, c * image.shape[1], h, w)
    return maps


# --- the adversaries -----------------------------------------------------------------------
def _conv(cin: int, cout: int, k: int, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=dilation * (k // 2), dilation=dilation), nn.ReLU(inplace=True))


def _pool() -> nn.MaxPool2d:
    return nn.MaxPool2d(2, ceil_mode=True)


class _Adversary(nn.Module):
    """What every adversary shares: C, the encoding, τ, and the input checks.

    Subclasses build their layers and list, in :meth:`input_paths`, the modules each input
    passes through on its way to the output (read by :func:`field_of_view`).
    """

    def __init__(self, num_classes: int, image_channels: int, encoding: str, tau: float):
        super().__init__()
        if num_classes < 1:
            raise ConfigError(f"must be >= 1, got {num_classes}", "num_classes")
        if image_channels < 1:
            raise ConfigError(f"must be >= 1, got {image_channels}", "image_channels")
        if encoding not in ("basic", "product", "scaling"):
            raise ConfigError(f"expected basic, product or scaling, got {encoding!r}", "encoding")
        if not 0.0 <= tau <= 1.0:
            raise ConfigError(f"must be in [0, 1], got {tau}", "tau")
        self.num_classes = num_classes
        self.image_channels = image_channels
        self.encoding = encoding
        self.tau = float(tau)

    @property
    def label_channels(self) -> int:
        """C' of the label-side input: C, or 3·C for ``product``."""
        return self.num_classes * self.image_channels if self.encoding == "product" else self.num_classes

    def _inputs(self, image: Tensor, maps: Tensor) -> tuple[Tensor, Tensor]:
        """Check shapes; return (image scaled to [-1, 1], label-side input (N, C', H, W))."""
        if image.dim() != 4 or image.shape[1] != self.image_channels:
            raise ValueError(f"image must be (N, {self.image_channels}, H, W), got {tuple(image.shape)}")
        if maps.dim() != 4 or maps.shape[1] != self.num_classes or maps.shape[-2:] != image.shape[-2:] \
                or maps.shape[0] != image.shape[0]:
            raise ValueError(f"maps must be (N, {self.num_classes}, H, W) matching image {tuple(image.shape)}, "
                             f"got {tuple(maps.shape)}")
        maps = maps.to(image.dtype)
        return image * 2 - 1, encode_maps(image, maps, self.encoding)

    def input_paths(self) -> dict[str, list[nn.Module]]:
        raise NotImplementedError


@DISCRIMINATORS.register("luc_stanford")
class LucStanford(_Adversary):
    """Luc et al.'s Stanford Background adversary (Fig. 2, top; see the module docstring)::

        maps (C') ─ conv5 64 ───────────────┐
        x (3) ─ conv5 16 ─ conv5 64 ─────────┴ cat 128 ─ conv3 128 ─ pool ─ conv3 256 ─ pool
                                                        ─ conv3 512 ─ conv3 1 ─► (N, 1, H/4, W/4)

    ReLU after every conv but the last; pools are 2×2 max, stride 2. Field of view: 34
    image pixels, 30 label-map pixels. Parameters: 1600·C' + 1,654,465 (C' = C, or 3·C
    for ``product``): 1,665,665 for C = 7.

    Args:
        num_classes: C.
        image_channels: channels of x (3 for RGB).
        encoding: ``basic``, ``product`` or ``scaling`` (module docstring).
        tau: τ of the ``scaling`` encoding, read by the recipe (unused otherwise).

    Forward: ``image`` (N, image_channels, H, W) in [0, 1] and ``maps`` (N, C, H, W) in
    [0, 1] (zero at ignored pixels) -> logits (N, 1, ⌈⌈H/2⌉/2⌉, ⌈⌈W/2⌉/2⌉), one per location.
    """

    def __init__(self, num_classes: int, image_channels: int = 3, encoding: Encoding = "basic", tau: float = 0.9):
        super().__init__(num_classes, image_channels, encoding, tau)
        self.label_branch = _conv(self.label_channels, 64, 5)
        self.image_branch = nn.Sequential(_conv(image_channels, 16, 5), _conv(16, 64, 5))
        self.trunk = nn.Sequential(
            _conv(128, 128, 3), _pool(),
            _conv(128, 256, 3), _pool(),
            _conv(256, 512, 3),
            nn.Conv2d(512, 1, 3, padding=1),
        )

    def input_paths(self) -> dict[str, list[nn.Module]]:
        return {"image": [self.image_branch, self.trunk], "maps": [self.label_branch, self.trunk]}

    def forward(self, image: Tensor, maps: Tensor) -> Tensor:
        x, labels = self._inputs(image, maps)
        return self.trunk(torch.cat([self.image_branch(x), self.label_branch(labels)], 1))


class _LabelOnly(_Adversary):
    """The Pascal VOC adversaries: one conv stack on the label-side input only (C' = C for
    ``basic``/``scaling``; the 3·C products, which carry the image, for ``product``).
    Subclasses give the stack in :meth:`_layers`."""

    def __init__(self, num_classes: int, image_channels: int = 3, encoding: Encoding = "basic", tau: float = 0.9):
        super().__init__(num_classes, image_channels, encoding, tau)
        self.net = nn.Sequential(*self._layers(self.label_channels))

    def _layers(self, c_in: int) -> list[nn.Module]:
        raise NotImplementedError

    def input_paths(self) -> dict[str, list[nn.Module]]:
        paths: dict[str, list[nn.Module]] = {"maps": [self.net]}
        if self.encoding == "product":
            paths["image"] = [self.net]
        return paths

    def forward(self, image: Tensor, maps: Tensor) -> Tensor:
        _, labels = self._inputs(image, maps)
        return self.net(labels)


@DISCRIMINATORS.register("luc_smallfov")
class LucSmallFOV(_LabelOnly):
    """Luc et al.'s Pascal VOC "SmallFOV" adversary (Fig. 2; see the module docstring)::

        maps (C') ─ conv3 96 ─ conv1 128 ─ pool ─ conv3 256 ─ conv1 256 ─ pool
                  ─ conv3 512 ─ conv1 1 ─► (N, 1, H/4, W/4)

    ReLU after every conv but the last; pools are 2×2 max, stride 2. It sees the label-side
    input only (C' = C for ``basic``/``scaling``; the 3·C products, which carry the image,
    for ``product``). Field of view: 18 label-map pixels. Parameters: 864·C' + 1,554,145:
    1,572,289 for VOC's C = 21, 1,560,193 for C = 7.

    Args, forward: as :class:`LucStanford` (``image`` is checked, and used by ``product``).
    """

    def _layers(self, c_in: int) -> list[nn.Module]:
        return [_conv(c_in, 96, 3), _conv(96, 128, 1), _pool(),
                _conv(128, 256, 3), _conv(256, 256, 1), _pool(),
                _conv(256, 512, 3), nn.Conv2d(512, 1, 1)]


@DISCRIMINATORS.register("luc_largefov")
class LucLargeFOV(_LabelOnly):
    """Luc et al.'s Pascal VOC "LargeFOV" adversary (Fig. 2; sources in the module docstring)::

        maps (C') ─ conv3 96 ─ conv3 128 ─ conv3 128 ─ pool ─ conv3 256 ─ conv3 256 ─ pool
                  ─ conv3 512 ─ conv3 1 ─► (N, 1, H/4, W/4)

    SmallFOV's widths with every 1×1 conv a 3×3 one and a third conv before the first pool.
    ReLU after every conv but the last; pools are 2×2 max, stride 2; label-side input only,
    as :class:`LucSmallFOV`. Field of view: 34 label-map pixels, the paper's stated 34×34.
    Parameters: 864·C' + 2,328,417: 2,346,561 for VOC's C = 21, 2,334,465 for C = 7.

    Args, forward: as :class:`LucStanford` (``image`` is checked, and used by ``product``).
    """

    def _layers(self, c_in: int) -> list[nn.Module]:
        return [_conv(c_in, 96, 3), _conv(96, 128, 3), _conv(128, 128, 3), _pool(),
                _conv(128, 256, 3), _conv(256, 256, 3), _pool(),
                _conv(256, 512, 3), nn.Conv2d(512, 1, 3, padding=1)]


@DISCRIMINATORS.register("seg_adversary")
class SegAdversary(_Adversary):
    """This project's adversaries: image + class-probability map -> one logit per image.

    Not the paper's networks (those are :class:`LucStanford`, :class:`LucSmallFOV` and
    :class:`LucLargeFOV`).

    ``two_branch`` (the Stanford layout of :class:`LucStanford`, widths scaled by ``width``;
    at ``width=64`` the same convs, but the last one to 1 channel is averaged here)::

        maps ─ conv5(w) ───────────────┐
        x ─ conv5(w/4) ─ conv5(w) ─────┴ cat ─ conv3(2w) ─ pool ─ conv3(4w) ─ pool
                                             ─ conv3(8w) ─ conv3(1) ─ mean ─► (N, 1)

    ``dilated_fov64`` (this project's design, formerly misnamed ``largefov``; field of view
    64 pixels)::

        cat(x, maps) ─ conv3(w) ─ conv3(w) ─ pool ─ conv3 d2(2w) ─ conv3 d2(2w) ─ pool
                     ─ conv3 d4(4w) ─ conv3(1) ─ mean ─► (N, 1)

    (``product``: the label-side input is the 3·C products and ``dilated_fov64`` gets no
    separate image.)

    Args:
        num_classes: C.
        image_channels: channels of x (3 for RGB).
        width: base channel count w.
        encoding: ``basic``, ``product`` or ``scaling`` (see the module docstring).
        design: ``two_branch`` or ``dilated_fov64``.
        tau: τ of the ``scaling`` encoding, read by the recipe (unused otherwise).

    Forward: ``image`` (N, image_channels, H, W) in [0, 1] and ``maps`` (N, C, H, W) in
    [0, 1] (zero at ignored pixels) -> logits (N, 1).
    """

    def __init__(self, num_classes: int, image_channels: int = 3, width: int = 64, encoding: Encoding = "basic",
                 design: Design = "two_branch", tau: float = 0.9):
        super().__init__(num_classes, image_channels, encoding, tau)
        if width < 4:
            raise ConfigError(f"must be >= 4, got {width}", "width")
        if design == "largefov":
            raise ConfigError("'largefov' was renamed 'dilated_fov64' (it is not the paper's LargeFOV; "
                              "the paper's adversaries are luc_stanford and luc_smallfov)", "design")
        if design not in ("two_branch", "dilated_fov64"):
            raise ConfigError(f"expected two_branch or dilated_fov64, got {design!r}", "design")
        self.design = design
        w = width
        label_ch = self.label_channels
        if design == "two_branch":
            self.label_branch = _conv(label_ch, w, 5)
            self.image_branch = nn.Sequential(_conv(image_channels, max(1, w // 4), 5), _conv(max(1, w // 4), w, 5))
            self.trunk = nn.Sequential(
                _conv(2 * w, 2 * w, 3), _pool(),
                _conv(2 * w, 4 * w, 3), _pool(),
                _conv(4 * w, 8 * w, 3),
                nn.Conv2d(8 * w, 1, 3, padding=1),
            )
        else:
            cin = label_ch if encoding == "product" else label_ch + image_channels
            self.trunk = nn.Sequential(
                _conv(cin, w, 3), _conv(w, w, 3), _pool(),
                _conv(w, 2 * w, 3, dilation=2), _conv(2 * w, 2 * w, 3, dilation=2), _pool(),
                _conv(2 * w, 4 * w, 3, dilation=4),
                nn.Conv2d(4 * w, 1, 3, padding=1),
            )

    def input_paths(self) -> dict[str, list[nn.Module]]:
        if self.design == "two_branch":
            return {"image": [self.image_branch, self.trunk], "maps": [self.label_branch, self.trunk]}
        return {"image": [self.trunk], "maps": [self.trunk]}

    def forward(self, image: Tensor, maps: Tensor) -> Tensor:
        centred, label_in = self._inputs(image, maps)
        if self.design == "two_branch":
            h = torch.cat([self.image_branch(centred), self.label_branch(label_in)], 1)
        else:
            h = label_in if self.encoding == "product" else torch.cat([centred, label_in], 1)
        return self.trunk(h).mean(dim=(2, 3))


# --- field of view ------------------------------------------------------------------------
def _walk(modules: Iterable[nn.Module]) -> int:
    """Field of view (one side) of one output of a chain, by the usual recurrence from
    r = 1, jump = 1: each k×k conv or pool with dilation d and stride s does
    r += (k - 1)·d·jump, jump *= s. Padding does not change it."""
    r, jump = 1, 1
    for top in modules:
        for m in top.modules():
            if isinstance(m, nn.Conv2d):
                k, s, d = m.kernel_size, m.stride, m.dilation
            elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
                k, s, d = m.kernel_size, m.stride, getattr(m, "dilation", 1)
            else:
                continue
            k, s, d = (v if isinstance(v, tuple) else (v, v) for v in (k, s, d))
            if len(set(k)) != 1 or len(set(s)) != 1 or len(set(d)) != 1:
                raise ValueError(f"field_of_view handles square kernels only, got {m}")
            r += (k[0] - 1) * d[0] * jump
            jump *= s[0]
    return r


def field_of_view(net: nn.Module) -> dict[str, int]:
    """The field of view of one output logit, in input pixels (one side), per input.

    ``{"image": r, "maps": r}`` for the inputs that reach the output (``luc_smallfov``
    with ``basic``/``scaling`` never sees the image: ``{"maps": 18}``). Derived from the
    layers each input passes through (:meth:`input_paths`); the tests check it against the
    input region that one output logit's gradient reaches.
    """
    paths = getattr(net, "input_paths", None)
    if paths is None:
        raise TypeError(f"{type(net).__name__} does not list its input paths")
    return {name: _walk(mods) for name, mods in paths().items()}
