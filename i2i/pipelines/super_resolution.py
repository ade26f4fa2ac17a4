"""Super-resolution pipeline: one image array in, the upscaled array out, in bounded memory.

    pipe = SuperResolutionPipeline(load_model(None, task="sr"))   # the shipped ×4 SRResNet
    big = pipe(photo)                                             # (H, W, 3) uint8 -> (4H, 4W, 3) uint8

* Channels: RGB goes through the network. Gray images go through it as an RGB replica
  and come out gray (BT.601 luma of the result). Alpha (RGBA, gray+alpha) is not a
  colour: it is upscaled separately with the project's MATLAB bicubic
  (:func:`i2i.data.resize.imresize`).
* Bit depth: uint8 in, uint8 out; float in [0, 1] (a 16-bit source, read with
  ``read_image(..., dtype="auto")``) runs and comes out in float32.
* Memory: the network runs on ``tile`` × ``tile`` LR cores with ``overlap`` LR pixels of
  context (:func:`i2i.tiling.tiled_apply`), each tile converted to the output dtype
  before it is written into one preallocated output, so the full-size result exists once.
  The default overlap covers the network's receptive-field radius
  (:func:`receptive_radius`), so the tiled result equals the untiled one (to float
  round-off: ≤ 1/255 after rounding). Equal-shaped tiles run ``tile_batch`` per network
  call (:func:`default_tile_batch`).
* Staged exact tiling: for networks that come in plain stages (RRDBNet, SRVGGNetCompact:
  :meth:`stage_plan`), the default (exact) tiling runs one stage at a time over a feature map of
  the whole LR image (:func:`i2i.tiling.run_staged`): the same exact result at about the untiled
  network's work, where one-pass tiles would need the whole network's radius as context (349 LR
  pixels for RRDBNet ×4). The map costs ``width`` × H × W values; above :data:`STAGED_MAP_BYTES`
  the one-pass tiles run instead. An explicit ``overlap`` always runs one-pass tiles.
* Precision: ``fast=True`` runs :func:`i2i.perf.fast_inference` (BN folded, channels-last,
  autocast); on CUDA it takes fp16 when the activations of :func:`probe_input` stay far
  inside fp16's range, else bf16 (:func:`i2i.perf.inference_dtype`).
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ..card import receptive_radius
from ..data.resize import imresize
from ..errors import ConfigError
from ..inference import LoadedModel, load_model
from ..tiling import StagePlan, run_staged, tiled_apply

__all__ = ["SuperResolutionPipeline", "upscale", "lanczos4_resize", "receptive_radius", "default_overlap", "default_tile_batch",
           "probe_input", "scale_of", "sr_tiles", "stage_plan", "DEFAULT_TILE", "BODY_TILE", "TAIL_TILE", "STAGED_MAP_BYTES"]

DEFAULT_TILE = 192
"""LR pixels per tile side: a 192² core + 2×overlap context keeps the 16-block, 64-channel
SRResNet under ~1 GB of activations while wasting < 1/3 of the compute on context."""

BODY_TILE = 128
"""LR core side of the body stages' tiles in staged exact tiling: RRDBNet's blocks need 15 pixels of
context, so a 128² core costs ((128 + 30) / 128)² = 1.52× its work at most (edge tiles less), for
~0.1 GB of one block's activations (fp32, concatenation-free dense blocks). Measured, RRDBNet ×4,
1024² -> 4096², the whole ``i2i-infer`` process (``tools/bench_peers.py`` procedure): peak RSS
1,322 / 1,332 MiB in 140 s at 128; 1,429 / 1,501 MiB (two runs) in 131 s at 192 — too close to
the 1.5 GB (1,430 MiB) that issue 24 asks for."""

TAIL_TILE = 64
"""LR core side of the tail's tiles in staged exact tiling: the tail runs at the
output's size, where one 64-channel fp32 tensor of a 64² LR core at ×4 is 64 × 256² × 4 B = 17 MB
(of a 192² core: 160 MB, and the convolutions' workspace grows with it), and its context is only a
few pixels."""

STAGED_MAP_BYTES = 2 * 1024**3
"""The largest feature map staged exact tiling keeps (``width`` × H × W values of the LR image,
fp32: 2 GiB is a 2896² LR image at 64 channels); above it the one-pass tiles run."""

# BT.601 luma (as i2i.data.io and Pillow's convert("L")): gray in -> gray out
_LUMA = (0.299, 0.587, 0.114)


# --- model facts ----------------------------------------------------------------------------
def default_overlap(net: nn.Module | LoadedModel) -> int:
    """Tile context that makes tiling exact: the receptive-field radius, rounded up, + 2.

    A loaded model's radius is its card's (:attr:`i2i.card.ModelCard.receptive_radius`); a bare
    conv / pixel-shuffle network's is :func:`receptive_radius`. No known radius: 48 pixels."""
    r = (model_radius(net) if isinstance(net, LoadedModel) else receptive_radius(net)) or 0.0
    return int(math.ceil(r)) + 2 if r > 0 else 48


def model_radius(model: LoadedModel) -> float | None:
    """The card's radius when it says tiles are exact, else None."""
    card = model.card
    return card.receptive_radius if card.tiling == "exact" else None


def default_tile_batch(G: nn.Module) -> int:
    """Tiles per network call: 8 on a GPU (enough work per launch), 1 on a CPU.

    On the CPU batching does pay (LR 1024², shipped model, shared 2-core EPYC: 57.3 s with 1,
    38.5 s with 4), but peak RSS grows with it (1.07 GiB -> 3.20 GiB), and bounded memory is
    the CPU's promise (< 2 GB for a 4096² output): ``tile_batch=4`` opts in.
    """
    return 8 if next(G.parameters()).device.type == "cuda" else 1


def scale_of(model: LoadedModel | nn.Module) -> int:
    """The upscaling factor: a loaded model's card (:attr:`~i2i.card.ModelCard.scale`), a bare generator's ``.scale``."""
    if isinstance(model, LoadedModel):
        return int(model.card.scale)
    s = getattr(model, "scale", None)
    if s is None:
        raise ConfigError("cannot tell the model's upscaling factor (no .scale, no meta.scale)", "--checkpoint")
    return int(s)


def probe_input(model: LoadedModel | nn.Module) -> tuple[Tensor]:
    """One LR input for the fp16/bf16 check of ``fast`` (:func:`i2i.perf.inference_dtype`).

    Uniform noise in [0, 1]: busier than any photo, so its activation peak bounds a
    photo's (shipped model: 72 on noise, 3.0 on a ``coffee`` crop; fp16 is chosen below 4096).
    """
    G = model.generator if isinstance(model, LoadedModel) else model
    device = next(G.parameters()).device
    g = torch.Generator().manual_seed(0)
    channels = (model.card.in_channels if isinstance(model, LoadedModel) else None) or getattr(G, "in_channels", 3)
    return (torch.rand(1, channels, 64, 64, generator=g).to(device),)


def stage_plan(G: nn.Module) -> StagePlan | None:
    """``G`` in stages for staged exact tiling, or None: the network's own ``stage_plan()`` (i2i's
    RRDBNet, SRVGGNetCompact), else spandrel's RRDBNet / SRVGGNetCompact
    (:func:`i2i.foreign.spandrel_stage_plan`). Under ``--fast`` (:class:`i2i.perf.FastInference`)
    every stage runs as the wrapper runs the network: NHWC inputs, under its autocast."""
    from ..foreign import PadToSize, spandrel_stage_plan
    from ..perf import FastInference, autocast, to_channels_last

    net = G.net if isinstance(G, FastInference) else G
    min_size = 1
    if isinstance(net, PadToSize) and net.multiple == 1 and not net.square:  # only a minimum side (ESRGAN: 2)
        net, min_size = net.net, net.minimum
    if getattr(type(net), "stage_plan", None) is not None:
        plan = net.stage_plan()
    elif type(net).__module__.startswith("spandrel."):
        plan = spandrel_stage_plan(net)
    else:
        return None
    plan = dataclasses.replace(plan, min_size=max(plan.min_size, min_size)) if plan is not None else None
    if plan is None or not isinstance(G, FastInference):
        return plan
    fast = G

    def under(f: Callable[..., Tensor]) -> Callable[..., Tensor]:
        def run(*xs: Tensor) -> Tensor:
            if fast.channels_last:
                xs = tuple(to_channels_last(x) for x in xs)
            with autocast(fast.device_type, fast.precision):
                return f(*xs)
        return run

    return dataclasses.replace(plan, head=under(plan.head), blocks=tuple(under(b) for b in plan.blocks),
                               tail=under(plan.tail))


# --- the core: (1, 3, h, w) float -> upscaled buffer ------------------------------------------
@torch.no_grad()
def sr_tiles(G: nn.Module, rgb: Tensor, scale: int, tile: int, overlap: int, gray: bool = False,
             out_dtype: torch.dtype = torch.float32, batch: int = 1,
             progress: Callable[[int, int], None] | None = None, plan: StagePlan | None = None) -> Tensor:
    """G on (N, 3, h, w) in [0, 1], tiled, clamped -> (N, 3 or 1, h·s, w·s) ``out_dtype`` on the CPU.

    uint8: values rounded to {0..255}; float32: in [0, 1]. Each tile is converted before it
    is written, so the full-size output exists only once, in its final dtype. ``gray``
    keeps the BT.601 luma of the result (for a gray image run as an RGB replica). With a
    ``plan`` (:func:`stage_plan`) an image bigger than one ``tile`` runs staged exact tiling
    (:func:`i2i.tiling.run_staged` on :data:`BODY_TILE` / :data:`TAIL_TILE` cores; ``overlap``
    unused) when its feature map fits :data:`STAGED_MAP_BYTES`.
    """
    device = next(G.parameters()).device

    def fn(x: Tensor) -> Tensor:
        return post(G(x.to(device, torch.float32)))

    def post(y: Tensor) -> Tensor:
        y = y.float().clamp_(0.0, 1.0)
        if gray:  # the replica's result is (nearly) gray; keep its luma
            y = (y[:, 0:1] * _LUMA[0] + y[:, 1:2] * _LUMA[1] + y[:, 2:3] * _LUMA[2]).clamp_(0.0, 1.0)
        if out_dtype == torch.uint8:
            return y.mul_(255.0).round_().to(torch.uint8).cpu()
        return y.cpu()

    n, _, h, w = rgb.shape
    if plan is not None and max(h, w) > tile and min(h, w) >= plan.min_size and plan.width * n * h * w * 4 <= STAGED_MAP_BYTES:
        from ..perf import release_free_memory

        out = run_staged(plan, rgb.to(device, torch.float32), scale, TAIL_TILE, BODY_TILE,
                         tail_fn=post, output_device="cpu", progress=progress)
        release_free_memory()  # the map is gone: its memory back, not kept for the writer's next allocations
        return out
    return tiled_apply(fn, rgb, scale=scale, tile=tile, overlap=overlap, output_device="cpu", batch=batch, progress=progress)


def _as_hwc(image: np.ndarray | Tensor) -> np.ndarray:
    """numpy as is; a torch (3, H, W) / (1, 3, H, W) float tensor -> (H, W, 3) float32."""
    if not isinstance(image, Tensor):
        return np.asarray(image)
    t = image.detach().cpu()
    if t.dim() == 4:
        if t.shape[0] != 1:
            raise ValueError(f"upscale takes one image, got a batch of shape {tuple(t.shape)}")
        t = t[0]
    if t.dim() != 3 or t.shape[0] != 3:
        raise ValueError(f"upscale: expected a (3, H, W) tensor, got shape {tuple(image.shape)}")
    return t.permute(1, 2, 0).float().numpy()


class SuperResolutionPipeline:
    """Upscale images with an SR generator, tile by tile.

    Args:
        model: a :class:`~i2i.inference.LoadedModel` or a generator module with a ``.scale``.
        tile: LR core side per tile; None or 0 = the whole image at once.
        overlap: LR context around each tile; None = :func:`default_overlap` (exact).
        tile_batch: tiles per network call; None = :func:`default_tile_batch`.
        fast: run :func:`i2i.perf.fast_inference` (fp16 or bf16 autocast, see the module docstring).
        outscale: the output's factor when it is not the network's (Real-ESRGAN's ``--outscale``):
            the network's ×scale, then MATLAB bicubic (:func:`i2i.data.resize.imresize`) to
            ``round(H · outscale)`` × ``round(W · outscale)``; for a model whose card says
            ``notes["outscale"] == "lanczos4"`` (the field's files read through spandrel) what
            Real-ESRGAN's ``RealESRGANer`` does instead: OpenCV's Lanczos-4 resize of the 8-bit output
            to ``int(W · outscale)`` × ``int(H · outscale)`` (:func:`lanczos4_resize`).

    Calling it: see :meth:`__call__`; :meth:`tensor` for batches of float tensors.
    """

    def __init__(self, model: LoadedModel | nn.Module, tile: int | None = DEFAULT_TILE, overlap: int | None = None,
                 tile_batch: int | None = None, fast: bool = False, outscale: float | None = None):
        G = model.generator if isinstance(model, LoadedModel) else model
        self.scale = scale_of(model)
        if outscale is not None and not 0 < outscale <= 64:
            raise ConfigError(f"must be in (0, 64], got {outscale}", "outscale")
        self.outscale = outscale  # the network's ×scale, then MATLAB bicubic (or the card's resize) to this factor
        notes = model.card.notes if isinstance(model, LoadedModel) else {}
        self.outscale_resize = "lanczos4" if notes.get("outscale") == "lanczos4" else "matlab_bicubic"
        if tile is not None and tile < 0:
            raise ConfigError(f"must be >= 0 (0 = no tiling), got {tile}", "tile")
        if overlap is not None and overlap < 0:
            raise ConfigError(f"must be >= 0, got {overlap}", "tile_overlap")
        if tile_batch is not None and tile_batch < 1:
            raise ConfigError(f"must be >= 1, got {tile_batch}", "tile_batch")
        self.tile = int(tile) if tile else None
        self.overlap = default_overlap(model) if overlap is None else int(overlap)
        self.tile_batch = default_tile_batch(G) if tile_batch is None else int(tile_batch)
        if fast:  # within the card's dtypes (a bare generator: any)
            from ..perf import fast_inference
            from ..readers import fast_precision

            device = next(G.parameters()).device
            dtypes = model.card.dtypes if isinstance(model, LoadedModel) else ("float32", "float16", "bfloat16")
            precision, probe = fast_precision(dtypes, device.type, G, probe_input(model))
            G = fast_inference(G, device, precision=precision, probe=probe)
        self.generator = G
        self.plan = stage_plan(G) if overlap is None and (not isinstance(model, LoadedModel) or model.card.tiling == "exact") else None
        """Staged exact tiling's stages (:func:`stage_plan`), when the default (exact) context is asked for."""
        self.progress: Callable[[int, int], None] | None = None
        """``progress(done, total)`` tiles of the image being upscaled (the tools' tile bar)."""

    def to_outscale(self, out: np.ndarray, h: int, w: int) -> np.ndarray:
        """The ×scale output (H·s, W·s, C) of an h × w image resized for ``outscale``: MATLAB
        bicubic to round(h·outscale) × round(w·outscale), or for the field's files (the card's
        ``notes.outscale: lanczos4``) RealESRGANer's OpenCV Lanczos-4 to int(h·outscale) × int(w·outscale)."""
        if self.outscale is None:
            return out
        if self.outscale_resize == "lanczos4":
            return lanczos4_resize(out, (max(1, int(h * self.outscale)), max(1, int(w * self.outscale))))
        return imresize(out, size=(max(1, round(h * self.outscale)), max(1, round(w * self.outscale))))

    def tensor(self, lr: Tensor) -> Tensor:
        """(N, 3, h, w) float in [0, 1] -> (N, 3, h·s, w·s) float32 in [0, 1], on the CPU."""
        return sr_tiles(self.generator, lr, self.scale, self.tile or max(lr.shape[-2:]), self.overlap,
                        batch=self.tile_batch, progress=self.progress, plan=self.plan)

    def __call__(self, image: np.ndarray | Tensor) -> np.ndarray:
        """Super-resolve one image.

        Args:
            image: numpy (H, W) / (H, W, 1|2|3|4) uint8 in [0, 255] or float in [0, 1]
                (gray, gray+alpha, RGB, RGBA), or a torch (3, H, W) / (1, 3, H, W) float
                tensor in [0, 1].

        Returns:
            numpy array of the input's layout with H·s × W·s pixels: uint8 for uint8 input,
            float32 in [0, 1] otherwise; a tensor input gives (H·s, W·s, 3) float32.
        """
        a = _as_hwc(image)
        if a.ndim == 2:
            a = a[..., None]
        if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
            raise ValueError(f"upscale: expected (H, W) or (H, W, 1|2|3|4), got shape {a.shape}")
        h, w, c = a.shape
        s = self.scale
        colour_c = 1 if c in (1, 2) else 3
        as_u8 = a.dtype == np.uint8
        if not as_u8 and not np.issubdtype(a.dtype, np.floating):
            raise ValueError(f"upscale: expected uint8 or float in [0, 1], got dtype {a.dtype}")
        # a copy: the caller's array may be read-only, and the LR image is small next to the output
        lr = torch.from_numpy(np.array(a[..., :colour_c], copy=True)).permute(2, 0, 1)[None]
        lr = lr.float().div_(255.0) if as_u8 else lr.float().clamp_(0.0, 1.0)
        if colour_c == 1:
            lr = lr.expand(1, 3, h, w)  # a view: the RGB replica costs no memory
        sr = sr_tiles(self.generator, lr, s, self.tile or max(h, w), self.overlap, gray=colour_c == 1,
                      out_dtype=torch.uint8 if as_u8 else torch.float32, batch=self.tile_batch, progress=self.progress,
                      plan=self.plan)
        out = np.empty((h * s, w * s, c), dtype=np.uint8 if as_u8 else np.float32)
        out[..., :colour_c] = sr[0].permute(1, 2, 0).numpy()
        del sr
        if c in (2, 4):  # alpha: MATLAB bicubic, not the network
            alpha = torch.from_numpy(np.array(a[..., -1], copy=True))[None, None]
            alpha = alpha.float().div_(255.0) if as_u8 else alpha.float()
            up = imresize(alpha, scale=float(s)).clamp_(0.0, 1.0)[0, 0]
            out[..., -1] = up.mul_(255.0).round_().to(torch.uint8).numpy() if as_u8 else up.numpy()
        if self.outscale is not None and self.outscale != s:
            out = self.to_outscale(out, h, w)
            if not as_u8:
                out = np.clip(out, 0.0, 1.0).astype(np.float32)
        return out[..., 0] if c == 1 else out


def lanczos4_resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, C) uint8 or float32 -> (size[0], size[1], C), same dtype: OpenCV's ``INTER_LANCZOS4``
    resize (8×8 Lanczos window), the one Real-ESRGAN's ``RealESRGANer.enhance`` applies for
    ``--outscale`` (uint8 saturates to [0, 255])."""
    import cv2

    out = cv2.resize(np.ascontiguousarray(image), (size[1], size[0]), interpolation=cv2.INTER_LANCZOS4)
    return out[..., None] if out.ndim == 2 else out


def upscale(model_or_path: LoadedModel | nn.Module | str | Path | None, image: np.ndarray | Tensor,
            tile: int | None = DEFAULT_TILE, overlap: int | None = None, tile_batch: int | None = None) -> np.ndarray:
    """Super-resolve one image: :class:`SuperResolutionPipeline` in one call.

    ``model_or_path``: a :class:`~i2i.inference.LoadedModel`, a generator module (with a
    ``.scale``), a run/export/checkpoint path, or None for the shipped ×4 model. The other
    arguments and the result are those of :class:`SuperResolutionPipeline`.
    """
    model = model_or_path
    if not isinstance(model, (LoadedModel, nn.Module)):
        model = load_model(model, task="sr")
    return SuperResolutionPipeline(model, tile, overlap, tile_batch)(image)
