"""seg_adversarial recipe: the paper's losses on known tensors, ignore handling, monitoring, export."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from i2i.errors import ConfigError
from i2i.losses.adversarial import AdversarialLoss
from i2i.losses.classification import CrossEntropyLoss
from i2i.metrics.segmentation import confusion_counts, segmentation_scores
from i2i.nn.seg_adversary import LucLargeFOV, LucSmallFOV, LucStanford, SegAdversary, scale_labels
from i2i.nn.segmentor import SmallSegmentor
from i2i.recipes.segmentation import SegAdversarial

C = 3
I = 255  # noqa: E741


class FakeAccelerator:
    reduce = staticmethod(lambda t, reduction="sum": t)
    gather_for_metrics = staticmethod(lambda x: x)


class RecordingD(nn.Module):
    """Stands in for the adversary: a fixed linear score of its inputs, recording them."""

    def __init__(self, encoding: str = "basic", tau: float = 0.9):
        super().__init__()
        self.num_classes, self.encoding, self.tau = C, encoding, tau
        self.w = nn.Parameter(torch.linspace(-1.0, 1.0, C).view(1, C, 1, 1))
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, image, maps):
        self.calls.append((image, maps))
        return (maps * self.w).mean(dim=(1, 2, 3)).unsqueeze(1) * 4 + image.mean(dim=(1, 2, 3)).unsqueeze(1)


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.randint(0, C, (2, 9, 10), generator=g)
    mask[:, :2, :3] = I
    return {"image": torch.rand(2, 3, 9, 10, generator=g), "mask": mask}


def _recipe(objective="non_saturating", weight=0.5, with_adv=True):
    losses = {"segmentation": CrossEntropyLoss(ignore_index=I)}
    if with_adv:
        losses["adversarial"] = AdversarialLoss(objective=objective, weight=weight)
    return SegAdversarial(losses, num_classes=C)


def _setup(recipe, D, G=None):
    G = G or SmallSegmentor(C, width=4, depth=2)
    recipe.setup({"generator": G, "discriminator": D} if D is not None else {"generator": G})
    return G


def _bce(logits, target):
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def _paper_inputs(batch, probs, encoding="basic", tau=0.9):
    """Independent construction of a's inputs: one-hot GT and softmax, zeroed at ignore."""
    mask = batch["mask"]
    valid = (mask != I).unsqueeze(1).float()
    onehot = F.one_hot(mask.clamp(max=C - 1), C).permute(0, 3, 1, 2).float() * valid
    if encoding == "scaling":
        onehot = scale_labels(onehot, probs, tau)
    return onehot, probs * valid


def test_d_loss_is_the_papers_adversary_objective():
    torch.manual_seed(0)
    recipe, D = _recipe(), RecordingD()
    G = _setup(recipe, D)
    batch = _batch()
    out = recipe(G, batch)
    loss, logs = recipe.d_loss(D, batch, out)
    real, fake = _paper_inputs(batch, torch.softmax(G(batch["image"]), 1))
    expect = _bce(D(batch["image"], real), 1.0) + _bce(D(batch["image"], fake), 0.0)
    torch.testing.assert_close(loss, expect)
    assert set(logs) == {"d/real", "d/fake", "d/loss"}
    torch.testing.assert_close(logs["d/real"], torch.sigmoid(D(batch["image"], real)).mean())
    loss.backward()  # the prediction is detached: no gradient reaches the segmentor
    assert all(p.grad is None for p in G.parameters())
    assert D.w.grad is not None


@pytest.mark.parametrize("objective", ["minimax", "non_saturating"])
def test_g_loss_is_mce_plus_weighted_adversarial_term(objective):
    torch.manual_seed(0)
    lam = 0.7
    recipe, D = _recipe(objective, lam), RecordingD()
    G = _setup(recipe, D)
    batch = _batch(1)
    out = recipe(G, batch)
    loss, logs = recipe.g_loss(D, batch, out)
    logits = G(batch["image"])
    ce = F.cross_entropy(logits, batch["mask"], ignore_index=I)
    _, fake = _paper_inputs(batch, torch.softmax(logits, 1))
    a_fake = D(batch["image"], fake)
    # minimax: ℓ's segmentor part Σ mce − λ bce(a(x, s(x)), 0); non-saturating: + λ bce(a(x, s(x)), 1)
    adv = -lam * _bce(a_fake, 0.0) if objective == "minimax" else lam * _bce(a_fake, 1.0)
    torch.testing.assert_close(loss, ce + adv)
    torch.testing.assert_close(logs["g/ce"], ce)
    torch.testing.assert_close(logs["g/adv"], adv)
    torch.testing.assert_close(logs["g/total"], ce + adv)
    loss.backward()
    assert all(p.grad is not None for p in G.parameters())


def test_ignored_pixels_are_zero_in_both_adversary_inputs():
    recipe, D = _recipe(), RecordingD()
    G = _setup(recipe, D)
    batch = _batch()
    out = recipe(G, batch)
    recipe.d_loss(D, batch, out)
    recipe.g_loss(D, batch, out)
    (_, real), (_, fake), (_, fake_g) = D.calls
    ignored = (batch["mask"] == I).unsqueeze(1).expand_as(real)
    for maps in (real, fake, fake_g):
        assert (maps[ignored] == 0).all()
        assert (maps[~ignored] != 0).any()
    torch.testing.assert_close(real.sum(1)[batch["mask"] != I], torch.ones((batch["mask"] != I).sum().item()))


def test_scaling_encoding_is_read_from_the_adversary():
    recipe, D = _recipe(), RecordingD(encoding="scaling", tau=0.8)
    G = _setup(recipe, D)
    batch = _batch(2)
    out = recipe(G, batch)
    recipe.d_loss(D, batch, out)
    real = D.calls[0][1]
    expect, _ = _paper_inputs(batch, out["probs"].detach(), "scaling", 0.8)
    torch.testing.assert_close(real, expect)
    assert ((real * F.one_hot(batch["mask"].clamp(max=C - 1), C).permute(0, 3, 1, 2)).sum(1)[batch["mask"] != I]
            >= 0.8 - 1e-6).all()


def test_baseline_without_adversary_and_zero_weight():
    torch.manual_seed(0)
    recipe = _recipe(with_adv=False)
    G = _setup(recipe, None)
    batch = _batch()
    loss, logs = recipe.g_loss(None, batch, recipe(G, batch))
    torch.testing.assert_close(loss, F.cross_entropy(G(batch["image"]), batch["mask"], ignore_index=I))
    assert logs["g/adv"] == 0
    r0, D = _recipe(weight=0.0), RecordingD()
    G0 = _setup(r0, D)
    r0.g_loss(D, batch, r0(G0, batch))
    assert D.calls == []  # λ = 0: the adversary is not even run in the segmentor step


@pytest.mark.parametrize("make_d", [lambda: SegAdversary(C, width=4, encoding="product", design="dilated_fov64"),
                                    lambda: LucStanford(C, encoding="scaling"), lambda: LucSmallFOV(C, encoding="product"),
                                    lambda: LucLargeFOV(C, encoding="basic")],
                         ids=["dilated_fov64", "luc_stanford", "luc_smallfov", "luc_largefov"])
def test_real_adversary_end_to_end_step(make_d):
    torch.manual_seed(0)
    recipe = _recipe()
    D = make_d()
    G = _setup(recipe, D)
    assert (recipe.encoding, recipe.tau) == (D.encoding, D.tau)  # read from the adversary
    batch = _batch()
    out = recipe(G, batch)
    ld, _ = recipe.d_loss(D, batch, out)
    lg, _ = recipe.g_loss(D, batch, out)
    assert torch.isfinite(ld) and torch.isfinite(lg)
    lg.backward()
    assert all(p.grad is not None for p in G.parameters())


def test_evaluate_samples_export():
    torch.manual_seed(0)
    recipe = _recipe(with_adv=False)

    class DS:
        classes = ("a", "b", "c")
        palette = ((255, 0, 0), (0, 255, 0), (0, 0, 255))

    G = SmallSegmentor(C, width=4, depth=2).eval()
    recipe.setup({"generator": G}, DS())
    batches = [_batch(0), _batch(1)]
    metrics = recipe.evaluate(G, iter(batches), FakeAccelerator())
    with torch.no_grad():
        m = sum(confusion_counts(G(b["image"]), b["mask"], C) for b in batches)
    assert metrics == {**segmentation_scores(m, ["a", "b", "c"]), "labelled_pixels": float(m.sum())}
    assert {"pixel_acc", "class_acc", "miou", "iou/a", "iou/b", "iou/c"} <= set(metrics)
    grid = recipe.samples(G, batches[0])
    assert grid.shape == (6, 3, 9, 10) and grid.min() >= 0 and grid.max() <= 1
    # ground truth row: class 1 in green, ignore in VOC's void colour
    gt, mask = grid[2], batches[0]["mask"][0]
    torch.testing.assert_close(gt[:, mask == 1], torch.tensor([[0.0], [1.0], [0.0]]).expand(3, int((mask == 1).sum())))
    torch.testing.assert_close(gt[:, 0, 0], torch.tensor([224, 224, 192]) / 255.0)
    meta = recipe.export_meta()
    assert meta["class_names"] == ["a", "b", "c"] and meta["palette"][2] == [0, 0, 255]
    assert meta["num_classes"] == C and meta["ignore_index"] == I and meta["value_range"] == [0, 1]


def test_config_errors():
    with pytest.raises(ConfigError, match="losses.segmentation.ignore_index"):
        SegAdversarial({"segmentation": CrossEntropyLoss()}, num_classes=C)  # default -100 ≠ 255
    with pytest.raises(ConfigError, match="objective"):
        SegAdversarial({"segmentation": CrossEntropyLoss(ignore_index=I),
                        "adversarial": AdversarialLoss(objective="hinge")}, num_classes=C)
    recipe = _recipe()
    with pytest.raises(ConfigError, match="models.generator.num_classes"):
        recipe.setup({"generator": SmallSegmentor(C + 1, width=4)})
    with pytest.raises(ConfigError, match="models.discriminator"):
        _recipe(weight=0.5).setup({"generator": SmallSegmentor(C, width=4)})
