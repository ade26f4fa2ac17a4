"""Pixel-wise reconstruction losses: L1, MSE and Charbonnier.

* ``l1``:          mean |x̂ - x|
* ``mse``:         mean (x̂ - x)²   (SRResNet's pixel-wise MSE, Ledig et al. 2017, eq. 4)
* ``charbonnier``: mean sqrt((x̂ - x)² + ε²), a differentiable L1 (Charbonnier et al.,
  "Two deterministic half-quadratic regularization algorithms...", 1994; used by
  Lai et al., LapSRN, 2017, eq. 2, with ε = 1e-3).

Each loss is a function plus a registered ``nn.Module`` (kornia style). The module
takes ``weight`` (λ from the YAML) and returns ``weight × mean loss``. Inputs are any
two tensors of the same shape, typically images (N, C, H, W) in [0, 1]; the mean runs
over every element. Half-precision inputs are upcast to float32 so that a bf16/fp16
autocast region does not lose precision in the reduction.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..registry import LOSSES

__all__ = ["l1_loss", "mse_loss", "charbonnier_loss", "L1Loss", "MSELoss", "CharbonnierLoss"]


def _check(pred: Tensor, target: Tensor) -> None:
    if not isinstance(pred, Tensor) or not isinstance(target, Tensor):
        raise TypeError(f"expected two tensors, got {type(pred).__name__} and {type(target).__name__}")
    if pred.shape != target.shape:
        # broadcasting would silently average a wrong loss (e.g. (N,3,H,W) vs (N,1,H,W))
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")


def _up(x: Tensor) -> Tensor:
    """fp16/bf16 -> fp32 for the reduction; fp32/fp64 are left alone."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def l1_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error over all elements; pred/target of the same shape. Returns a scalar."""
    _check(pred, target)
    return (_up(pred) - _up(target)).abs().mean()


def mse_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean squared error over all elements; pred/target of the same shape. Returns a scalar."""
    _check(pred, target)
    return (_up(pred) - _up(target)).pow(2).mean()


def charbonnier_loss(pred: Tensor, target: Tensor, eps: float = 1e-3) -> Tensor:
    """Mean of sqrt((pred - target)² + eps²) over all elements. Returns a scalar.

    Note the loss of two equal tensors is ``eps``, not 0 (the definition in LapSRN; some
    codebases subtract eps, which changes the value but not the gradient).
    """
    _check(pred, target)
    d = _up(pred) - _up(target)
    return torch.sqrt(d * d + eps * eps).mean()


class _PixelLoss(nn.Module):
    def __init__(self, weight: float = 1.0):
        super().__init__()
        self.weight = float(weight)

    def extra_repr(self) -> str:
        return f"weight={self.weight}"


@LOSSES.register("l1")
class L1Loss(_PixelLoss):
    """λ · mean |pred - target|. ``forward(pred, target)`` -> scalar tensor.

    Args:
        weight: λ, the factor on the returned loss.
    """

    def __init__(self, weight: float = 1.0):
        super().__init__(weight)

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return self.weight * l1_loss(pred, target)


@LOSSES.register("mse")
class MSELoss(_PixelLoss):
    """λ · mean (pred - target)². ``forward(pred, target)`` -> scalar tensor.

    Args:
        weight: λ, the factor on the returned loss.
    """

    def __init__(self, weight: float = 1.0):
        super().__init__(weight)

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return self.weight * mse_loss(pred, target)


@LOSSES.register("charbonnier")
class CharbonnierLoss(_PixelLoss):
    """λ · mean sqrt((pred - target)² + ε²). ``forward(pred, target)`` -> scalar tensor.

    Args:
        weight: λ, the factor on the returned loss.
        eps: ε > 0; smaller is closer to L1 (LapSRN uses 1e-3 for images in [0, 1]).
    """

    def __init__(self, weight: float = 1.0, eps: float = 1e-3):
        super().__init__(weight)
        if not eps > 0:
            raise ConfigError(f"must be > 0, got {eps}", "eps")
        self.eps = float(eps)

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return self.weight * charbonnier_loss(pred, target, self.eps)

    def extra_repr(self) -> str:
        return f"weight={self.weight}, eps={self.eps}"
