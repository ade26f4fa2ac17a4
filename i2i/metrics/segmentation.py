"""Semantic-segmentation metrics from a confusion matrix.

The measures of Luc et al., "Semantic Segmentation using Adversarial Networks" (2016),
§4 (after Long et al., FCN, CVPR 2015, §5): with M[t, p] the number of pixels of true
class t predicted as p, n_t = Σ_p M[t, p] (pixels of class t) and m_p = Σ_t M[t, p]:

* pixel accuracy  = Σ_c M[c, c] / Σ_t n_t
* class accuracy  = mean_c M[c, c] / n_t            (mean per-class recall)
* IoU_c           = M[c, c] / (n_c + m_c - M[c, c])
* mean IoU        = mean_c IoU_c

Conventions (stated because libraries differ): pixels whose target is ``ignore_index``
are not counted at all. A class absent from the targets (n_c = 0) is excluded from the
class accuracy. A class absent from both targets and predictions (n_c + m_c = 0) has an
undefined IoU (NaN in ``iou``) and is excluded from the mean IoU; a class that is only
predicted (n_c = 0, m_c > 0) has IoU 0 and counts. Predicted labels outside [0, C) are an
error. Where every class occurs, mean IoU equals torchmetrics'
``MulticlassJaccardIndex(average="macro", ignore_index=...)`` (tested).

Multi-process evaluation: :class:`ConfusionMatrix` either gathers per-image counts batch
by batch (``gather=accelerator.gather_for_metrics``, which drops the samples a
distributed sampler duplicated to pad the last batch, so that they are not counted
twice), or reduces the accumulated matrix once in :meth:`ConfusionMatrix.compute`
(``reduce=lambda t: accelerator.reduce(t, "sum")``), which is cheaper but counts padding
duplicates. Use one of the two, not both.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def _as_labels(pred: Tensor, target: Tensor) -> Tensor:
    """Logits/probabilities (N, C, H, W) -> argmax labels (N, H, W); labels pass through."""
    if pred.dim() == target.dim() + 1:
        return pred.argmax(1)
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} must be labels shaped like target {tuple(target.shape)} "
                         f"or scores (N, C, ...) ")
    if pred.is_floating_point():
        raise ValueError("pred labels must be integers; pass (N, C, H, W) scores to take the argmax")
    return pred


def confusion_counts(pred: Tensor, target: Tensor, num_classes: int, ignore_index: int | None = 255,
                     per_sample: bool = False) -> Tensor:
    """Confusion counts M[t, p] of one batch.

    Args:
        pred: (N, H, W) integer labels or (N, C, H, W) scores (argmax over dim 1).
        target: (N, H, W) integer labels in [0, C) or ``ignore_index``.
        num_classes: C.
        ignore_index: target value excluded from the counts (``None``: none).
        per_sample: return (N, C, C) per-image counts instead of the (C, C) sum.

    Returns:
        int64 (C, C) or (N, C, C); rows are targets, columns predictions.
    """
    pred = _as_labels(pred, target).long()
    target = target.long()
    c = num_classes
    valid = target != ignore_index if ignore_index is not None else torch.ones_like(target, dtype=torch.bool)
    bad_t = valid & ((target < 0) | (target >= c))
    if bad_t.any():
        raise ValueError(f"target labels outside [0, {c}) and not ignore_index: {target[bad_t].unique().tolist()[:10]}")
    bad_p = valid & ((pred < 0) | (pred >= c))
    if bad_p.any():
        raise ValueError(f"predicted labels outside [0, {c}): {pred[bad_p].unique().tolist()[:10]}")
    n = target.shape[0] if per_sample else 1
    sample = torch.arange(n, device=target.device).view(-1, *([1] * (target.dim() - 1))) if per_sample \
        else torch.zeros((), dtype=torch.long, device=target.device)
    idx = (sample * c * c + target * c + pred)[valid]
    counts = torch.bincount(idx, minlength=n * c * c)
    return counts.view(n, c, c) if per_sample else counts.view(c, c)


def segmentation_scores(matrix: Tensor, class_names: list[str] | None = None) -> dict[str, float]:
    """Scores from a (C, C) confusion matrix (rows = targets): see the module docstring.

    Returns ``{"pixel_acc", "class_acc", "miou", "iou/<name>" and "acc/<name>" (the
    class's recall) for each class}``; values in [0, 1], NaN where undefined (no labelled
    pixel at all; a class absent from the targets for its accuracy, from both for its IoU).
    """
    m = matrix.detach().to("cpu", torch.float64)
    c = m.shape[0]
    names = class_names or [str(i) for i in range(c)]
    if len(names) != c:
        raise ValueError(f"{len(names)} class names for a {c}-class confusion matrix")
    tp = m.diag()
    n_true = m.sum(1)
    n_pred = m.sum(0)
    total = m.sum()
    union = n_true + n_pred - tp
    recall = torch.where(n_true > 0, tp / n_true.clamp(min=1), torch.nan)
    iou = torch.where(union > 0, tp / union.clamp(min=1), torch.nan)
    nan = float("nan")
    out = {
        "pixel_acc": (tp.sum() / total).item() if total > 0 else nan,
        "class_acc": recall.nanmean().item() if (n_true > 0).any() else nan,
        "miou": iou.nanmean().item() if (union > 0).any() else nan,
    }
    out.update({f"iou/{name}": v for name, v in zip(names, iou.tolist())})
    out.update({f"acc/{name}": v for name, v in zip(names, recall.tolist())})
    return out


class ConfusionMatrix:
    """Accumulates a (C, C) confusion matrix over batches; correct under multi-process runs.

    Args:
        num_classes: C.
        ignore_index: target value that is not counted (``None``: none).
        gather: optional per-batch gather of (B, C·C) per-image counts, e.g.
            ``accelerator.gather_for_metrics`` (see the module docstring). Then every
            process holds the full matrix and ``compute`` needs no ``reduce``.
        class_names: names for the ``iou/<name>`` keys (default: the class index).

    Example::

        cm = ConfusionMatrix(21, gather=accelerator.gather_for_metrics)
        for batch in loader:
            cm.update(model(batch["image"]), batch["mask"])
        cm.compute()  # {'pixel_acc', 'class_acc', 'miou', 'iou/0', ...}
    """

    def __init__(self, num_classes: int, ignore_index: int | None = 255,
                 gather: Callable[[Tensor], Tensor] | None = None, class_names: list[str] | None = None):
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.gather = gather
        self.class_names = class_names
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.long)

    def reset(self) -> None:
        self.matrix = torch.zeros(self.num_classes, self.num_classes, dtype=torch.long)

    @torch.no_grad()
    def update(self, pred: Tensor, target: Tensor) -> None:
        """Add a batch: pred (N, H, W) labels or (N, C, H, W) scores; target (N, H, W)."""
        c = self.num_classes
        if self.gather is None:
            counts = confusion_counts(pred, target, c, self.ignore_index)
        else:
            # Per image, so that the gather can drop padding duplicates sample by sample.
            per = confusion_counts(pred, target, c, self.ignore_index, per_sample=True).view(-1, c * c)
            counts = self.gather(per).view(-1, c, c).sum(0)
        self.matrix += counts.to(self.matrix.device)

    def compute(self, reduce: Callable[[Tensor], Tensor] | None = None) -> dict[str, float]:
        """Scores of the accumulated matrix; ``reduce`` sums it over processes first
        (e.g. ``lambda t: accelerator.reduce(t, "sum")``; it may need the tensor on the
        accelerator's device, so move it there in the lambda if required)."""
        m = self.matrix.clone()
        if reduce is not None:
            m = reduce(m)
        return segmentation_scores(m, self.class_names)
