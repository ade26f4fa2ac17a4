"""Metrics for generated digits: label fidelity and a Fréchet distance on classifier features.

There is no Inception network for 28×28 grey digits (and none can be downloaded here), so,
as in the CGAN/ACGAN literature's "classification accuracy of generated samples", a small
CNN is trained on the *real training split* and used twice:

* **label fidelity** — its accuracy on samples generated for requested labels (how often a
  "7" comes out as a 7); reported beside its accuracy on the real test split, the ceiling;
* **Fréchet distance** — Heusel et al. 2017's FID formula, ‖μ₁-μ₂‖² + Tr(Σ₁ + Σ₂ - 2(Σ₁Σ₂)^½),
  on this classifier's penultimate features (128-d) instead of Inception's.

The classifier is cached per data set (content hash) under ``$I2I_CACHE`` (default
``~/.cache/i2i``) as safetensors, so evaluation is cheap after the first call.
"""
from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import MetricError


def cache_dir() -> Path:
    return Path(os.environ.get("I2I_CACHE", Path.home() / ".cache" / "i2i")).expanduser()


class DigitClassifier(nn.Module):
    """(N, 1, 28, 28) in [-1, 1] -> (logits (N, K), features (N, 128))."""

    def __init__(self, num_classes: int = 10, channels: int = 1):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(3),
            nn.Flatten(), nn.Linear(64 * 9, 128), nn.ReLU(inplace=True),
        )
        self.head = nn.Linear(128, num_classes)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        f = self.body(x)
        return self.head(f), f


def train_classifier(images: Tensor, labels: Tensor, num_classes: int = 10, epochs: int = 3, seed: int = 0,
                     batch_size: int = 128) -> DigitClassifier:
    """Train on uint8 (N, 28, 28) images; random ±2 px shifts as augmentation."""
    with torch.enable_grad(), torch.autocast("cpu", enabled=False), torch.random.fork_rng():
        return _train_classifier(images, labels, num_classes, epochs, seed, batch_size)


def _train_classifier(images: Tensor, labels: Tensor, num_classes: int, epochs: int, seed: int,
                      batch_size: int) -> DigitClassifier:
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = DigitClassifier(num_classes)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    n = len(images)
    per_epoch = max(1, n // batch_size)
    epochs = max(epochs, -(-600 // per_epoch))  # small sets (the embedded 1,437 digits): at least 600 steps
    steps = epochs * per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    model.train()
    step = 0
    from tqdm import tqdm

    bar = tqdm(total=steps, desc="evaluation classifier", unit="step", leave=False, file=sys.stderr, disable=None,
               dynamic_ncols=True, mininterval=1.0)  # quiet when stderr is not a terminal
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g)
        for b in range(max(1, n // batch_size)):
            idx = perm[b * batch_size : (b + 1) * batch_size]
            x = images[idx].float().div(127.5).sub(1)[:, None]
            dx, dy = torch.randint(-2, 3, (2,), generator=g).tolist()
            x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
            loss = F.cross_entropy(model(x)[0], labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            bar.update(1)
    bar.close()
    return model.eval()


def get_classifier(dataset, num_classes: int = 10) -> DigitClassifier:  # noqa: ANN001
    """The cached classifier for ``dataset`` (an :class:`i2i.data.digits.MNISTDigits`), trained if absent."""
    from safetensors.torch import load_file, save_file

    path = cache_dir() / "classifiers" / f"digits-v2-{dataset.fingerprint()}.safetensors"  # v2: bump when training changes
    model = DigitClassifier(num_classes)
    if path.is_file():
        model.load_state_dict(load_file(str(path)))
        return model.eval()
    if os.environ.get("RANK", "0") == "0":  # one line per job, not per process
        print(f"training the evaluation classifier once, on {len(dataset.images):,} digits "
              f"(later evaluations reuse it from {path.parent})", file=sys.stderr, flush=True)
    model = train_classifier(dataset.images, dataset.labels, num_classes)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    os.replace(tmp, path)
    return model


def _sqrtm(m: np.ndarray) -> np.ndarray:
    """SciPy's principal matrix square root, warnings silenced (near-singular products are normal
    for ReLU features and are handled by the caller). No ``disp=`` argument: SciPy 1.18 removed it."""
    from scipy import linalg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = linalg.sqrtm(m)
    return out[0] if isinstance(out, tuple) else out  # very old SciPy returned (sqrtm, errest) on request only


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     imag_tol: float = 1e-3) -> float:
    """‖μ₁-μ₂‖² + Tr(Σ₁ + Σ₂ - 2(Σ₁Σ₂)^½), in float64.

    (Σ₁Σ₂)^½ of two covariance matrices has real eigenvalues, so sqrtm's imaginary part is
    round-off; it is dropped only if every diagonal entry's is below ``imag_tol`` (Heusel et
    al.'s reference code uses the same test), else :class:`MetricError` — inputs that are not
    covariance matrices (negative eigenvalues) give a genuinely complex root.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if sigma1.shape != sigma2.shape or sigma1.ndim != 2 or sigma1.shape[0] != sigma1.shape[1] or mu1.shape != mu2.shape:
        raise MetricError(f"Fréchet distance: covariances {sigma1.shape}/{sigma2.shape} and means {mu1.shape}/{mu2.shape} "
                          "must be (d, d) and (d,)")
    diff = mu1 - mu2
    covmean = _sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():  # singular product: regularise as Heusel et al.'s code does
        eps = 1e-6 * np.eye(sigma1.shape[0])
        covmean = _sqrtm((sigma1 + eps) @ (sigma2 + eps))
    if np.iscomplexobj(covmean):
        imag = float(np.abs(np.diagonal(covmean).imag).max())
        if imag > imag_tol:
            raise MetricError(f"Fréchet distance: the matrix square root has an imaginary part of {imag:.3g} "
                              f"(> {imag_tol:g}); the covariances are not positive semi-definite")
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def feature_stats(features: Tensor) -> tuple[np.ndarray, np.ndarray]:
    f = features.double().cpu().numpy()
    return f.mean(axis=0), np.cov(f, rowvar=False)
