"""Fréchet distance against closed forms; the digit classifier trains and is cached."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from i2i.errors import MetricError
from i2i.metrics.generation import feature_stats, frechet_distance


@pytest.fixture
def scipy_without_disp(monkeypatch):
    """``scipy.linalg.sqrtm`` as SciPy 1.18 has it: no ``disp`` argument, one array back.

    This project's CPU resolves an older SciPy (1.18 needs Python 3.12), so the signature the
    quick start met on a current install is imposed here; the square root itself is SciPy's."""
    from scipy import linalg

    real = linalg.sqrtm
    calls = []

    def sqrtm(A, *, blocksize=64):  # noqa: ANN001, N803  (SciPy's own names)
        calls.append(A.shape)
        out = real(A)
        return out[0] if isinstance(out, tuple) else out

    monkeypatch.setattr(linalg, "sqrtm", sqrtm)
    return calls


def test_identical_gaussians_have_zero_distance(scipy_without_disp) -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 4))
    mu, s = a.mean(0), np.cov(a, rowvar=False)
    assert frechet_distance(mu, s, mu, s) == pytest.approx(0.0, abs=1e-6)


def test_diagonal_closed_form(scipy_without_disp) -> None:
    # for diagonal covariances: ‖μ1-μ2‖² + Σ (σ1 + σ2 - 2√(σ1σ2))
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    s1, s2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    expected = 1 + 0 + 4 + sum(a + b - 2 * np.sqrt(a * b) for a, b in zip(s1, s2))
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-9)
    assert scipy_without_disp  # the SciPy 1.18 signature was the one called


def test_full_covariances_match_the_symmetric_form(scipy_without_disp) -> None:
    # Tr((Σ1Σ2)^½) = Tr((Σ1^½ Σ2 Σ1^½)^½): the right side is symmetric PSD, so eigh gives it exactly
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(300, 5)), rng.normal(size=(300, 5)) @ rng.normal(size=(5, 5))
    mu1, s1, mu2, s2 = a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(s1)
    r1 = v @ np.diag(np.sqrt(w)) @ v.T
    tr = np.sqrt(np.clip(np.linalg.eigvalsh(r1 @ s2 @ r1), 0, None)).sum()
    expected = (mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * tr
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)


def test_a_complex_square_root_is_an_error_not_a_silent_real_part(scipy_without_disp) -> None:
    # not a covariance (eigenvalue -1): the root is genuinely complex (imaginary part 1 on the diagonal)
    s_bad, s_ok = np.diag([1.0, -1.0]), np.eye(2)
    with pytest.raises(MetricError, match=r"imaginary part of 1 .*not positive semi-definite"):
        frechet_distance(np.zeros(2), s_bad, np.zeros(2), s_ok)
    with pytest.raises(MetricError, match=r"must be \(d, d\)"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def test_quick_start_evaluation_runs_end_to_end(tmp_path, monkeypatch, scipy_without_disp) -> None:
    """The quick start's last step: training ends with the digits evaluation (classifier, label
    fidelity, Fréchet distance), here on SciPy 1.18's sqrtm signature."""
    import json

    from i2i.config import load_config
    from i2i.engine.trainer import Trainer

    # the session's test cache: the classifier is trained once for this test and the tools' eval test
    root = __import__("pathlib").Path(__file__).resolve().parent.parent
    cfg = load_config(root / "tasks/acgan_mnist.yaml",
                      ["train.max_steps=4", "logging.tracker=none", "logging.progress=false", "eval.every=0",
                       "eval.at_end=true", "logging.sample_every=0", "models.generator.base_channels=16",
                       "models.discriminator.base_channels=16", "recipe.eval_samples_per_class=20"])
    Trainer(cfg, output_dir=tmp_path / "run").fit()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    final = [r for r in rows if "eval/frechet_distance" in r]
    assert len(final) == 1 and final[0]["step"] == 4
    assert np.isfinite(final[0]["eval/frechet_distance"]) and final[0]["eval/frechet_distance"] > 0
    assert 0 <= final[0]["eval/label_fidelity"] <= 1 and final[0]["eval/real_accuracy"] > 0.9
    assert scipy_without_disp


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
    # loads, does not retrain: training is made impossible, and the cached file is marked so that
    # only a load can return the marked weights (a seeded retrain would give the original ones)
    from safetensors.torch import load_file, save_file

    monkeypatch.setattr(generation, "train_classifier", lambda *a, **k: pytest.fail("retrained instead of loading"))
    marked = {k: v + 1 if v.is_floating_point() else v for k, v in load_file(str(cached[0])).items()}
    save_file(marked, str(cached[0]))
    again = generation.get_classifier(train)
    for k, v in again.state_dict().items():
        assert torch.equal(v, marked[k]), k
