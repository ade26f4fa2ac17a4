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

Two architectures (``design``), written after the paper's Fig. 2 in structure (the
layer widths are scaled by ``width``):

* ``two_branch`` (the paper's Stanford Background adversary): the label maps and the
  image are convolved by separate branches (5×5 convs; the image branch has two), their
  features concatenated, then 3×3 convs with two 2×2 max-poolings.
* ``largefov`` (the paper's Pascal VOC adversary, named after DeepLab-LargeFOV): the
  image and label maps are concatenated at the input and processed by a single stack of
  3×3 convs whose dilation grows (1, 1, 2, 2, 4) to see a large field of view at low cost.

Both end in a 3×3 conv to one channel, averaged over the remaining positions: the output
is one logit per image, shape (N, 1), for any input size.

Ignored pixels (label = ``ignore_index``) must carry all-zero class maps in both the
ground-truth and the predicted input, so that the adversary cannot use them to tell the
two apart: :func:`to_onehot` returns zeros there and :func:`valid_mask` gives the mask
the recipe multiplies the softmax with.
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..registry import DISCRIMINATORS

Encoding = Literal["basic", "product", "scaling"]
Design = Literal["two_branch", "largefov"]


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


# --- the adversary ------------------------------------------------------------------------
def _conv(cin: int, cout: int, k: int, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=dilation * (k // 2), dilation=dilation), nn.ReLU(inplace=True))


@DISCRIMINATORS.register("seg_adversary")
class SegAdversary(nn.Module):
    """a(x, y): image + class-probability map -> one "is ground truth" logit per image.

    ``two_branch``::

        maps ─ conv5(w) ───────────────┐
        x ─ conv5(w/4) ─ conv5(w) ─────┴ cat ─ conv3(2w) ─ pool ─ conv3(4w) ─ pool
                                             ─ conv3(8w) ─ conv3(1) ─ mean ─► (N, 1)

    ``largefov``::

        cat(x, maps) ─ conv3(w) ─ conv3(w) ─ pool ─ conv3 d2(2w) ─ conv3 d2(2w) ─ pool
                     ─ conv3 d4(4w) ─ conv3(1) ─ mean ─► (N, 1)

    (``product``: the label-side input is the 3·C products and ``largefov`` gets no
    separate image.)

    Args:
        num_classes: C.
        image_channels: channels of x (3 for RGB).
        width: base channel count w.
        encoding: ``basic``, ``product`` or ``scaling`` (see the module docstring).
        design: ``two_branch`` or ``largefov``.
        tau: τ of the ``scaling`` encoding, read by the recipe (unused otherwise).

    Forward: ``image`` (N, image_channels, H, W) in [0, 1] and ``maps`` (N, C, H, W) in
    [0, 1] (zero at ignored pixels) -> logits (N, 1).
    """

    def __init__(self, num_classes: int, image_channels: int = 3, width: int = 64, encoding: Encoding = "basic",
                 design: Design = "two_branch", tau: float = 0.9):
        super().__init__()
        if num_classes < 1:
            raise ConfigError(f"must be >= 1, got {num_classes}", "num_classes")
        if width < 4:
            raise ConfigError(f"must be >= 4, got {width}", "width")
        if encoding not in ("basic", "product", "scaling"):
            raise ConfigError(f"expected basic, product or scaling, got {encoding!r}", "encoding")
        if design not in ("two_branch", "largefov"):
            raise ConfigError(f"expected two_branch or largefov, got {design!r}", "design")
        if not 0.0 <= tau <= 1.0:
            raise ConfigError(f"must be in [0, 1], got {tau}", "tau")
        self.num_classes = num_classes
        self.image_channels = image_channels
        self.encoding = encoding
        self.design = design
        self.tau = float(tau)
        w = width
        label_ch = num_classes * image_channels if encoding == "product" else num_classes
        if design == "two_branch":
            self.label_branch = _conv(label_ch, w, 5)
            self.image_branch = nn.Sequential(_conv(image_channels, max(1, w // 4), 5), _conv(max(1, w // 4), w, 5))
            self.trunk = nn.Sequential(
                _conv(2 * w, 2 * w, 3), nn.MaxPool2d(2, ceil_mode=True),
                _conv(2 * w, 4 * w, 3), nn.MaxPool2d(2, ceil_mode=True),
                _conv(4 * w, 8 * w, 3),
                nn.Conv2d(8 * w, 1, 3, padding=1),
            )
        else:
            cin = label_ch if encoding == "product" else label_ch + image_channels
            self.trunk = nn.Sequential(
                _conv(cin, w, 3), _conv(w, w, 3), nn.MaxPool2d(2, ceil_mode=True),
                _conv(w, 2 * w, 3, dilation=2), _conv(2 * w, 2 * w, 3, dilation=2), nn.MaxPool2d(2, ceil_mode=True),
                _conv(2 * w, 4 * w, 3, dilation=4),
                nn.Conv2d(4 * w, 1, 3, padding=1),
            )

    def forward(self, image: Tensor, maps: Tensor) -> Tensor:
        if image.dim() != 4 or image.shape[1] != self.image_channels:
            raise ValueError(f"image must be (N, {self.image_channels}, H, W), got {tuple(image.shape)}")
        if maps.dim() != 4 or maps.shape[1] != self.num_classes or maps.shape[-2:] != image.shape[-2:] \
                or maps.shape[0] != image.shape[0]:
            raise ValueError(f"maps must be (N, {self.num_classes}, H, W) matching image {tuple(image.shape)}, "
                             f"got {tuple(maps.shape)}")
        maps = maps.to(image.dtype)
        label_in = encode_maps(image, maps, self.encoding)
        centred = image * 2 - 1  # zero-mean-ish input for the image convs; products stay in [0, 1]
        if self.design == "two_branch":
            h = torch.cat([self.image_branch(centred), self.label_branch(label_in)], 1)
        else:
            h = label_in if self.encoding == "product" else torch.cat([centred, label_in], 1)
        return self.trunk(h).mean(dim=(2, 3))
