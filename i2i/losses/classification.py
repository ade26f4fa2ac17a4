"""Cross-entropy for class logits: ACGAN's auxiliary term and segmentation's mce.

Works on (N, C) logits with (N,) targets and on (N, C, H, W) logit maps with (N, H, W)
targets; pixels equal to ``ignore_index`` are excluded from the mean (Luc et al. 2016 exclude
VOC's 255 "void" label from the loss).
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ..registry import LOSSES


def cross_entropy(logits: Tensor, target: Tensor, ignore_index: int = -100, label_smoothing: float = 0.0) -> Tensor:
    """Mean multi-class cross-entropy over non-ignored elements (computed in float32)."""
    return F.cross_entropy(logits.float(), target.long(), ignore_index=ignore_index, label_smoothing=label_smoothing)


@LOSSES.register("cross_entropy")
class CrossEntropyLoss(nn.Module):
    """``weight`` × cross-entropy; see :func:`cross_entropy`."""

    def __init__(self, weight: float = 1.0, ignore_index: int = -100, label_smoothing: float = 0.0):
        super().__init__()
        self.weight, self.ignore_index, self.label_smoothing = float(weight), ignore_index, label_smoothing

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return self.weight * cross_entropy(logits, target, self.ignore_index, self.label_smoothing)
