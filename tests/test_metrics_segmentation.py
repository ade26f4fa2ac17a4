"""Confusion-matrix metrics: hand-computed values, ignore pixels, references, multi-process paths."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from i2i.metrics.segmentation import ConfusionMatrix, confusion_counts, segmentation_scores

I = 255  # noqa: E741  (ignore)

# 3 classes; two images of 2×3 pixels; class 2 never occurs in the target but is predicted once.
TARGET = torch.tensor([[[0, 0, 1], [1, 1, I]],
                       [[0, 1, I], [0, 0, 1]]])
PRED = torch.tensor([[[0, 1, 1], [1, 0, 2]],      # the 2 is on an ignored pixel: not counted
                     [[0, 1, 0], [2, 0, 1]]])
# rows = target, cols = pred, over the 10 non-ignored pixels
HAND = torch.tensor([[3, 1, 1],
                     [1, 4, 0],
                     [0, 0, 0]])


def test_counts_match_hand_computed():
    torch.testing.assert_close(confusion_counts(PRED, TARGET, 3), HAND)
    per = confusion_counts(PRED, TARGET, 3, per_sample=True)
    assert per.shape == (2, 3, 3)
    torch.testing.assert_close(per.sum(0), HAND)
    assert per[0].sum() == 5 and per[1].sum() == 5


def test_scores_hand_computed():
    s = segmentation_scores(HAND, ["a", "b", "c"])
    assert s["pixel_acc"] == pytest.approx(7 / 10)
    assert s["class_acc"] == pytest.approx((3 / 5 + 4 / 5) / 2)  # class c has no target pixel
    iou_a, iou_b = 3 / (5 + 4 - 3), 4 / (5 + 5 - 4)
    assert s["iou/a"] == pytest.approx(iou_a)
    assert s["iou/b"] == pytest.approx(iou_b)
    assert s["iou/c"] == 0.0  # predicted but absent from the target: IoU 0, counts in the mean
    assert s["miou"] == pytest.approx((iou_a + iou_b + 0.0) / 3)
    # per-class accuracy = recall; undefined for a class with no target pixel
    assert s["acc/a"] == pytest.approx(3 / 5) and s["acc/b"] == pytest.approx(4 / 5) and math.isnan(s["acc/c"])


def test_class_absent_from_both_is_excluded():
    m = torch.tensor([[2, 0, 0], [1, 3, 0], [0, 0, 0]])
    s = segmentation_scores(m)
    assert math.isnan(s["iou/2"])
    assert s["miou"] == pytest.approx((2 / 3 + 3 / 4) / 2)


def test_logits_are_argmaxed():
    logits = torch.nn.functional.one_hot(PRED.clamp(max=2), 3).permute(0, 3, 1, 2).float() * 5
    torch.testing.assert_close(confusion_counts(logits, TARGET, 3), HAND)


def test_against_sklearn_and_torchmetrics():
    from sklearn.metrics import confusion_matrix
    from torchmetrics.classification import MulticlassJaccardIndex

    g = torch.Generator().manual_seed(0)
    target = torch.randint(0, 5, (3, 9, 7), generator=g)
    target[torch.rand(3, 9, 7, generator=g) < 0.15] = I
    pred = torch.randint(0, 5, (3, 9, 7), generator=g)
    cm = ConfusionMatrix(5)
    cm.update(pred[:2], target[:2])
    cm.update(pred[2:], target[2:])
    keep = (target != I).flatten().numpy()
    ref = confusion_matrix(target.flatten().numpy()[keep], pred.flatten().numpy()[keep], labels=list(range(5)))
    np.testing.assert_array_equal(cm.matrix.numpy(), ref)
    jac = MulticlassJaccardIndex(num_classes=5, ignore_index=I, average="macro")
    assert cm.compute()["miou"] == pytest.approx(jac(pred, target).item(), abs=1e-6)


def test_gather_and_reduce_paths():
    # gather: a fake 2-process gather that also returns the other rank's per-image counts
    other = confusion_counts(PRED, TARGET, 3, per_sample=True).view(2, 9)
    cm = ConfusionMatrix(3, gather=lambda t: torch.cat([t, other]))
    cm.update(PRED, TARGET)
    torch.testing.assert_close(cm.matrix, 2 * HAND)
    # reduce: applied once, at compute, on a copy
    cm2 = ConfusionMatrix(3)
    cm2.update(PRED, TARGET)
    s = cm2.compute(reduce=lambda t: t * 2)
    torch.testing.assert_close(cm2.matrix, HAND)
    want = segmentation_scores(2 * HAND)
    assert s.keys() == want.keys()
    assert all(s[k] == want[k] or (math.isnan(s[k]) and math.isnan(want[k])) for k in s)


def test_errors():
    with pytest.raises(ValueError, match="outside"):
        confusion_counts(torch.tensor([[[3]]]), torch.tensor([[[0]]]), 3)
    with pytest.raises(ValueError, match="outside"):
        confusion_counts(torch.tensor([[[0]]]), torch.tensor([[[7]]]), 3)
    empty = segmentation_scores(torch.zeros(2, 2, dtype=torch.long))
    assert math.isnan(empty["pixel_acc"]) and math.isnan(empty["miou"])
