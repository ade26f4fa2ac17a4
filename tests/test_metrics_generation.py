"""Fréchet distance against closed forms; the digit classifier trains and is cached."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from i2i.metrics.generation import feature_stats, frechet_distance


def test_identical_gaussians_have_zero_distance() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 4))
    mu, s = a.mean(0), np.cov(a, rowvar=False)
    assert frechet_distance(mu, s, mu, s) == pytest.approx(0.0, abs=1e-6)


def test_diagonal_closed_form() -> None:
    # for diagonal covariances: ‖μ1-μ2‖² + Σ (σ1 + σ2 - 2√(σ1σ2))
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    s1, s2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    expected = 1 + 0 + 4 + sum(a + b - 2 * np.sqrt(a * b) for a, b in zip(s1, s2))
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-9)


def test_feature_stats_match_numpy() -> None:
    f = torch.randn(50, 3, dtype=torch.float64)
    mu, cov = feature_stats(f)
    assert np.allclose(mu, f.numpy().mean(0)) and np.allclose(cov, np.cov(f.numpy(), rowvar=False))


def test_classifier_learns_the_embedded_digits_and_is_cached(tmp_path, monkeypatch) -> None:
    from i2i.data.digits import MNISTDigits
    from i2i.metrics import generation

    monkeypatch.setenv("I2I_CACHE", str(tmp_path))
    train, test = MNISTDigits(None, "train"), MNISTDigits(None, "test")
    clf = generation.get_classifier(train)
    with torch.no_grad():
        x = torch.stack([test[i]["image"] for i in range(len(test))])
        acc = (clf(x)[0].argmax(1) == test.labels).float().mean().item()
    assert acc > 0.9, acc
    cached = list((tmp_path / "classifiers").glob("*.safetensors"))
    assert len(cached) == 1
    again = generation.get_classifier(train)  # loads, does not retrain
    for a, b in zip(clf.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
