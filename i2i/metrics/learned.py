"""LPIPS and DISTS through torchmetrics, only where their ImageNet backbones are already on disk.

* **LPIPS** (Zhang et al., "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric",
  CVPR 2018): ``torchmetrics.image.lpip.LearnedPerceptualImagePatchSimilarity(net_type="alex")``, the
  AlexNet variant that SR papers report (Real-ESRGAN, BasicSR's ``calculate_lpips``). Lower = closer.
* **DISTS** (Ding et al., "Image Quality Assessment: Unifying Structure and Texture Similarity", TPAMI
  2020): torchmetrics' ``DISTSNetwork`` (VGG16 features + the authors' α/β). Lower = closer.

The metrics' own small weights (LPIPS's linear heads, DISTS's α/β) ship inside the torchmetrics wheel;
the backbones are torchvision's ImageNet weights, which torchvision would *download* into the torch hub
cache (``$TORCH_HOME/hub/checkpoints``, default ``~/.cache/torch/hub/checkpoints``). i2i never downloads
at run time: :func:`missing` checks for the file first and, when it is absent, gives one line naming the
file and how to get it; the caller then skips that metric and reports everything else. torchvision
would also unpickle that file with ``weights_only=False``; while the networks are built, its loader is
replaced by :func:`load_backbone` (``torch.load(..., weights_only=True)``, the cached file only), so no
code in a weights file ever runs and nothing is fetched.

Images are quantised to 8 bits first (:func:`i2i.metrics.image.quantize`, the images as saved), then
given to the networks as RGB in [0, 1] (LPIPS with ``normalize=True`` maps them to [-1, 1]).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..errors import MetricError
from .image import quantize

__all__ = ["BACKBONES", "LearnedMetrics", "backbone_file", "load_backbone", "missing"]


@dataclass(frozen=True)
class Backbone:
    """A torchvision ImageNet weights file that a learned metric needs."""

    weights: str  # torchvision's enum, e.g. AlexNet_Weights.IMAGENET1K_V1
    builder: str  # torchvision.models function that fetches it with weights="DEFAULT"
    file: str  # its name in the hub cache (the URL's last part, with torchvision's hash prefix)
    url: str


BACKBONES: dict[str, Backbone] = {
    # torchvision.models.AlexNet_Weights.IMAGENET1K_V1 / VGG16_Weights.IMAGENET1K_V1 (the DEFAULT the
    # torchmetrics classes ask for); checked against torchvision's own URL in the tests
    "lpips": Backbone("AlexNet_Weights.IMAGENET1K_V1", "alexnet", "alexnet-owt-7be5be79.pth",
                      "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"),
    "dists": Backbone("VGG16_Weights.IMAGENET1K_V1", "vgg16", "vgg16-397923af.pth",
                      "https://download.pytorch.org/models/vgg16-397923af.pth"),
}


def backbone_file(metric: str) -> Path:
    """Where torchvision looks for ``metric``'s backbone: ``torch.hub.get_dir()/checkpoints/<file>``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / BACKBONES[metric].file


def missing(metric: str) -> str | None:
    """None when ``metric`` can run without downloading; else one line saying what is missing and how to get it."""
    b = BACKBONES[metric]
    path = backbone_file(metric)
    if path.is_file():
        return None
    return (f"{metric.upper()} skipped: {path} is missing (torchvision's {b.weights}); nothing is downloaded at run time: "
            f"fetch it once where there is internet with python -c \"import torchvision; torchvision.models.{b.builder}"
            f"(weights='DEFAULT')\", or save {b.url} there")


def load_backbone(path: Path) -> dict[str, Tensor]:
    """A cached torchvision weights file as a state dict, with ``weights_only=True`` (never a download)."""
    if not path.is_file():
        raise MetricError(f"{path}: missing (nothing is downloaded at run time)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001  UnpicklingError for unsafe globals, RuntimeError for corrupt zips (as i2i.runs.safe_torch_load)
        raise MetricError(f"{path}: not a weights file that loads with weights_only=True "
                          f"({type(e).__name__}: {' '.join(str(e).split())[:160]})") from None
    if not isinstance(state, dict):
        raise MetricError(f"{path}: expected a state dict, got {type(state).__name__}")
    return state


@contextmanager
def _cached_weights_only() -> Iterator[None]:
    """While building torchmetrics' networks: torchvision's ``WeightsEnum.get_state_dict`` reads the hub
    cache through :func:`load_backbone` instead of ``load_state_dict_from_url`` (download, full unpickle)."""
    from torchvision.models import WeightsEnum

    original = WeightsEnum.get_state_dict

    def from_cache(self: WeightsEnum, *args: Any, **kwargs: Any) -> dict[str, Tensor]:
        return load_backbone(Path(torch.hub.get_dir()) / "checkpoints" / Path(self.url).name)

    WeightsEnum.get_state_dict = from_cache  # type: ignore[method-assign]
    try:
        yield
    finally:
        WeightsEnum.get_state_dict = original  # type: ignore[method-assign]


class LearnedMetrics:
    """LPIPS and/or DISTS per image pair, each only if its backbone is cached locally.

    Args:
        metrics: which to try, from ``("lpips", "dists")``.
        device: where the networks run.

    Attributes:
        names: the metrics that will be computed (those whose backbone is present).
        notes: one line per metric that was skipped (the missing file and how to get it).

    Example::

        lm = LearnedMetrics()
        for line in lm.notes:
            print(line)
        lm(sr, hr)  # {'lpips': 0.21, 'dists': 0.12} (only the available ones)
    """

    def __init__(self, metrics: tuple[str, ...] = ("lpips", "dists"), device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.notes: list[str] = []
        self._nets: dict[str, Any] = {}
        for m in metrics:
            if m not in BACKBONES:
                raise ValueError(f"unknown learned metric {m!r} (expected one of {', '.join(BACKBONES)})")
            why = missing(m)
            if why is not None:
                self.notes.append(why)
                continue
            with _cached_weights_only():
                self._nets[m] = self._build(m)

    def _build(self, metric: str) -> Any:
        if metric == "lpips":
            from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

            return LearnedPerceptualImagePatchSimilarity(net_type="alex", normalize=True).to(self.device).eval()
        try:
            # the network itself: torchmetrics' DISTS class rebuilds (and reloads VGG16) on every update
            from torchmetrics.functional.image.dists import DISTSNetwork
        except ImportError:  # torchmetrics before DISTS
            import torchmetrics

            self.notes.append(f"DISTS skipped: torchmetrics {torchmetrics.__version__} has no DISTS (upgrade torchmetrics)")
            return None
        return DISTSNetwork().to(self.device).eval()

    @property
    def names(self) -> list[str]:
        return [m for m, net in self._nets.items() if net is not None]

    @torch.no_grad()
    def __call__(self, pred: Tensor, target: Tensor) -> dict[str, float]:
        """pred, target: (1, 3, H, W) (or (3, H, W)) RGB, float in [0, 1] or uint8 -> ``{metric: value}``."""
        if pred.dim() == 3:
            pred, target = pred[None], target[None]
        if pred.shape != target.shape or pred.dim() != 4 or pred.shape[0] != 1 or pred.shape[1] != 3:
            raise ValueError(f"expected two (1, 3, H, W) RGB images of one shape, got {tuple(pred.shape)} and "
                             f"{tuple(target.shape)}")
        a = (quantize(pred) / 255.0).to(self.device, torch.float32)
        b = (quantize(target) / 255.0).to(self.device, torch.float32)
        out: dict[str, float] = {}
        for name in self.names:
            net = self._nets[name]
            if name == "lpips":
                net.reset()
                net.update(a, b)
                out[name] = float(net.compute())
            else:
                out[name] = float(net(a, b, require_grad=False))
        return out
