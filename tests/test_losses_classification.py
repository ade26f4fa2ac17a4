"""i2i.losses.classification: cross-entropy on class logits and on logit maps, against values
computed by hand (log-softmax written out), with ignored pixels, weight and label smoothing."""
from __future__ import annotations

import math

import pytest
import torch

from i2i.losses.classification import CrossEntropyLoss, cross_entropy
from i2i.registry import LOSSES


def nll(row: list[float], target: int) -> float:
    """−log softmax(row)[target], by hand."""
    return -(row[target] - math.log(sum(math.exp(v) for v in row)))


def test_class_logits_against_the_hand_computed_mean() -> None:
    logits = [[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    want = (nll(logits[0], 0) + nll(logits[1], 2)) / 2
    assert want == pytest.approx((-math.log(math.e**2 / (math.e**2 + 2)) - math.log(1 / (math.e + 2))) / 2)
    got = cross_entropy(torch.tensor(logits), torch.tensor([0, 2]))
    assert got.item() == pytest.approx(want, rel=1e-6)


def test_logit_maps_exclude_ignored_pixels_from_the_mean() -> None:
    # (1, 2, 1, 3): three pixels; the middle one is VOC's void label
    logits = torch.tensor([[[[1.0, 5.0, 0.0]], [[0.0, -5.0, 2.0]]]])
    target = torch.tensor([[[0, 255, 1]]])
    want = (nll([1.0, 0.0], 0) + nll([0.0, 2.0], 1)) / 2  # the mean over the two counted pixels
    assert cross_entropy(logits, target, ignore_index=255).item() == pytest.approx(want, rel=1e-6)
    assert CrossEntropyLoss(weight=0.5, ignore_index=255)(logits, target).item() == pytest.approx(0.5 * want, rel=1e-6)


def test_label_smoothing() -> None:
    row, eps = [1.0, 2.0, -1.0], 0.3
    log_p = [-nll(row, c) for c in range(3)]
    want = (1 - eps) * nll(row, 1) + eps * -sum(log_p) / 3  # (1 − ε)·NLL + ε·mean over classes of −log p
    got = CrossEntropyLoss(label_smoothing=eps)(torch.tensor([row]), torch.tensor([1]))
    assert got.item() == pytest.approx(want, rel=1e-6)


def test_half_precision_logits_are_computed_in_float32() -> None:
    logits = torch.tensor([[8.0, -8.0, 0.5]])
    for dtype in (torch.float16, torch.bfloat16):
        got = cross_entropy(logits.to(dtype), torch.tensor([2], dtype=torch.int32))  # any integer targets
        assert got.dtype == torch.float32
        assert got.item() == pytest.approx(nll([8.0, -8.0, 0.5], 2), rel=1e-6)


def test_built_by_name_from_yaml() -> None:
    loss = LOSSES.build({"type": "cross_entropy", "weight": 2.0, "ignore_index": 255}, "losses.segmentation")
    assert isinstance(loss, CrossEntropyLoss) and (loss.weight, loss.ignore_index, loss.label_smoothing) == (2.0, 255, 0.0)
    assert list(loss.parameters()) == []
