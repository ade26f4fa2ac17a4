"""Super-resolution front-end: ``tools/infer.py --task sr`` and ``tools/eval.py --task sr``.

Inference (``infer``, and the Python API :func:`upscale`)::

    python tools/infer.py --task sr photo.jpg -o photo_x4.png          # shipped ×4 SRResNet
    python tools/infer.py --task sr --checkpoint runs/srgan-… photos/ more.png -o out/

* INPUTs are files or folders (a folder's images, not its sub-folders; files without an
  image extension are ignored). Every file is read by :func:`i2i.data.io.read_image`
  (EXIF orientation, palette, CMYK, 16-bit, gray, alpha).
* Output: for a single input file, ``-o`` may name the output file (its suffix picks the
  format); otherwise ``-o`` is a folder (default ``./sr_x{scale}``) that receives
  ``<stem>_x{scale}.<ext>`` (``--ext png|jpg|webp|auto``; ``--quality``, ``--png-compression``),
  never written next to the inputs, so re-running over a folder does not pick up its own
  outputs. Every file is written by :func:`i2i.data.io.save_image`.
* Throughput: equal-shaped tiles run ``--tile-batch`` per network call, and a reader thread
  decodes the next file while writer threads (``--io-threads``) encode finished ones
  (:func:`_pipeline`); the bytes written are those of the sequential path.
* Channels: RGB goes through the network. Gray images go through it as an RGB replica
  and are saved gray (BT.601 luma of the result). Alpha (RGBA, gray+alpha) is not a
  colour: it is upscaled separately with the project's MATLAB bicubic
  (:func:`i2i.data.resize.imresize`). Palette images come out RGB(A).
* Bit depth: 8-bit inputs give 8-bit PNGs; 16-bit inputs run in float and give 16-bit
  PNGs (16-bit colour needs OpenCV to write, as to read; without it: 8 bits + a warning).
* Memory: the network runs on ``--tile`` × ``--tile`` LR cores with ``--tile-overlap``
  LR pixels of context (:func:`i2i.tiling.tiled_apply`), writing straight into one
  preallocated uint8 (8-bit inputs) or float32 (16-bit) output buffer. The default
  overlap covers the network's receptive-field radius (:func:`receptive_radius`), so
  the tiled result equals the untiled one (to float round-off: ≤ 1/255 after rounding).
* Errors: a file that cannot be read (corrupt, truncated, empty, not an image) or
  written prints one ``error: <file>: <reason>`` line on stderr; the other files are
  still processed and the exit code is 1.

Evaluation (``evaluate``): PSNR/SSIM on RGB and on BT.601 Y with ``crop_border = scale``
on 8-bit quantised images (:mod:`i2i.metrics.image`), for the model and for MATLAB
bicubic, per image and averaged. ``--data`` is a folder of HR images (LR made by MATLAB
bicubic ×1/scale, 8-bit rounded; HR mod-cropped to the scale, as for Set5/Set14/BSD100)
or a folder with ``hr/`` and ``lr/`` (or ``HR``/``LR``) sub-folders; by default the
model's own validation split (for the shipped model: the embedded scikit-image val
photos chelsea, coffee, coins, brick), whole images, not the training-time centre crops.
"""
from __future__ import annotations

import argparse
import math
import sys
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..data.io import IMAGE_EXTENSIONS, is_image_file, read_image, save_image, sixteen_bit_note
from ..data.resize import imresize
from ..errors import ConfigError, DataError
from ..inference import LoadedModel, load_model
from ..tiling import tiled_apply
from .common import is_single_file, collect_inputs, output_paths

__all__ = ["upscale", "receptive_radius", "add_infer_args", "infer", "add_eval_args", "evaluate",
           "probe_input", "DEFAULT_TILE"]

DEFAULT_PNG_COMPRESSION = 1
"""zlib level of written PNGs. Measured on a 4096² RGB output (shared 2-core EPYC): level 6
(Pillow's default) 5.4 s / 9.3 MiB, level 1 1.2 s / 11.8 MiB, level 0 0.7 s / 48 MiB."""

DEFAULT_TILE = 192
"""LR pixels per tile side: a 192² core + 2×overlap context keeps the 16-block, 64-channel
SRResNet under ~1 GB of activations while wasting < 1/3 of the compute on context."""

# BT.601 luma (as i2i.data.io and Pillow's convert("L")): gray in -> gray out
_LUMA = (0.299, 0.587, 0.114)


# --- model helpers ------------------------------------------------------------------------
def receptive_radius(net: nn.Module) -> float:
    """Receptive-field radius of a feed-forward conv / pixel-shuffle net, in input pixels.

    Walks the modules in registration order (for :class:`~i2i.nn.srresnet.SRResNet` that
    is the forward order: head, body, upsampler, tail) adding ``dilation · (k - 1) / 2`` of
    each convolution divided by the upscaling reached so far (a 9×9 conv at ×4 sees 1 LR
    pixel to each side). Residual additions do not widen it. For SRResNet ×4 with B
    blocks: 4 + 2B + 1 (body) + 1 + 0.5 (upsampler) + 1 (tail) = 2B + 7.5.
    """
    radius, up = 0.0, 1
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            kh, kw = m.kernel_size
            dh, dw = m.dilation
            radius += max(dh * (kh - 1), dw * (kw - 1)) / 2 / up
        elif isinstance(m, nn.PixelShuffle):
            up *= m.upscale_factor
    return radius


def default_overlap(net: nn.Module) -> int:
    """Tile context that makes tiling exact: the receptive-field radius, rounded up, + 2."""
    r = receptive_radius(net)
    return int(math.ceil(r)) + 2 if r > 0 else 48


def _scale_of(model: LoadedModel | nn.Module) -> int:
    g = model.generator if isinstance(model, LoadedModel) else model
    s = getattr(g, "scale", None)
    if s is None and isinstance(model, LoadedModel):
        s = model.meta.get("scale") or model.recipe.get("scale")
    if s is None:
        raise ConfigError("cannot tell the model's upscaling factor (no .scale, no meta.scale)", "--checkpoint")
    return int(s)


def probe_input(model: LoadedModel) -> tuple[Tensor]:
    """One LR input for ``--fast``'s fp16/bf16 check (:func:`i2i.perf.inference_dtype`).

    Uniform noise in [0, 1]: busier than any photo, so its activation peak bounds a
    photo's (shipped model: 72 on noise, 3.0 on a ``coffee`` crop; fp16 is chosen below 4096).
    """
    device = next(model.generator.parameters()).device
    g = torch.Generator().manual_seed(0)
    channels = getattr(model.generator, "in_channels", 3)
    return (torch.rand(1, channels, 64, 64, generator=g).to(device),)


def _as_generator(model_or_path: LoadedModel | nn.Module | str | Path | None) -> tuple[nn.Module, int]:
    if isinstance(model_or_path, LoadedModel):
        return model_or_path.generator, _scale_of(model_or_path)
    if isinstance(model_or_path, nn.Module):
        return model_or_path, _scale_of(model_or_path)
    m = load_model(model_or_path, task="sr")
    return m.generator, _scale_of(m)


# --- the core: one (1, 3, h, w) float image -> upscaled buffer ------------------------------
@torch.no_grad()
def _sr_tiles(G: nn.Module, rgb: Tensor, scale: int, tile: int, overlap: int, gray: bool,
              out_dtype: torch.dtype, batch: int = 1) -> Tensor:
    """G on (1, 3, h, w) in [0, 1], tiled, clamped -> (1, 3 or 1, h·s, w·s) ``out_dtype``.

    uint8: values rounded to {0..255}; float32: in [0, 1]. Each tile is converted before it
    is written, so the full-size output exists only once, in its final dtype.
    """
    device = next(G.parameters()).device

    def fn(x: Tensor) -> Tensor:
        y = G(x.to(device, torch.float32)).clamp_(0.0, 1.0)
        if gray:  # the replica's result is (nearly) gray; keep its luma
            y = (y[:, 0:1] * _LUMA[0] + y[:, 1:2] * _LUMA[1] + y[:, 2:3] * _LUMA[2]).clamp_(0.0, 1.0)
        if out_dtype == torch.uint8:
            return y.mul_(255.0).round_().to(torch.uint8).cpu()
        return y.cpu()

    return tiled_apply(fn, rgb, scale=scale, tile=tile, overlap=overlap, output_device="cpu", batch=batch)


def default_tile_batch(G: nn.Module) -> int:
    """Tiles per network call: 8 on a GPU (enough work per launch), 1 on a CPU.

    On the CPU batching does pay (LR 1024², shipped model, shared 2-core EPYC: 57.3 s with 1,
    38.5 s with 4), but peak RSS grows with it (1.07 GiB -> 3.20 GiB), and bounded memory is
    the CPU's promise (< 2 GB for a 4096² output): ``--tile-batch 4`` opts in.
    """
    return 8 if next(G.parameters()).device.type == "cuda" else 1


def _upscale_array(G: nn.Module, scale: int, a: np.ndarray, tile: int, overlap: int,
                   batch: int = 1) -> np.ndarray:
    """(H, W) / (H, W, 2|3|4) uint8 or float32-in-[0, 1] -> same layout and dtype, ×scale."""
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"upscale: expected (H, W) or (H, W, 1|2|3|4), got shape {a.shape}")
    h, w, c = a.shape
    colour_c = 1 if c in (1, 2) else 3
    has_alpha = c in (2, 4)
    as_u8 = a.dtype == np.uint8
    if not as_u8 and not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"upscale: expected uint8 or float in [0, 1], got dtype {a.dtype}")
    # a copy: the caller's array may be read-only, and the LR image is small next to the output
    lr = torch.from_numpy(np.array(a[..., :colour_c], copy=True)).permute(2, 0, 1)[None]
    lr = lr.float().div_(255.0) if as_u8 else lr.float().clamp_(0.0, 1.0)
    if colour_c == 1:
        lr = lr.expand(1, 3, h, w)  # a view: the RGB replica costs no memory
    sr = _sr_tiles(G, lr, scale, tile, overlap, gray=colour_c == 1,
                   out_dtype=torch.uint8 if as_u8 else torch.float32, batch=batch)
    out = np.empty((h * scale, w * scale, c), dtype=np.uint8 if as_u8 else np.float32)
    out[..., :colour_c] = sr[0].permute(1, 2, 0).numpy()
    del sr
    if has_alpha:
        alpha = torch.from_numpy(np.array(a[..., -1], copy=True))[None, None]
        alpha = alpha.float().div_(255.0) if as_u8 else alpha.float()
        up = imresize(alpha, scale=float(scale)).clamp_(0.0, 1.0)[0, 0]
        out[..., -1] = up.mul_(255.0).round_().to(torch.uint8).numpy() if as_u8 else up.numpy()
    return out[..., 0] if c == 1 else out


def upscale(model_or_path: LoadedModel | nn.Module | str | Path | None, image: np.ndarray | Tensor,
            tile: int | None = DEFAULT_TILE, overlap: int | None = None, tile_batch: int | None = None) -> np.ndarray:
    """Super-resolve one image with bounded memory.

    Args:
        model_or_path: a :class:`~i2i.inference.LoadedModel`, a generator module (with a
            ``.scale``), a run/export/checkpoint path, or None for the shipped ×4 model.
        image: numpy (H, W) / (H, W, 1|2|3|4) uint8 in [0, 255] or float in [0, 1]
            (gray, gray+alpha, RGB, RGBA), or a torch (3, H, W) / (1, 3, H, W) float
            tensor in [0, 1].
        tile: LR core side per tile; None = the whole image at once.
        overlap: LR context around each tile; None = :func:`default_overlap` (exact).
        tile_batch: tiles per network call; None = :func:`default_tile_batch`.

    Returns:
        numpy array of the input's layout with H·s × W·s pixels: uint8 for uint8 input,
        float32 in [0, 1] otherwise; a tensor input gives (H·s, W·s, 3) float32.
        Colour goes through the network, alpha through MATLAB bicubic.
    """
    G, scale = _as_generator(model_or_path)
    if isinstance(image, Tensor):
        t = image.detach().cpu()
        if t.dim() == 4:
            if t.shape[0] != 1:
                raise ValueError(f"upscale takes one image, got a batch of shape {tuple(t.shape)}")
            t = t[0]
        if t.dim() != 3 or t.shape[0] != 3:
            raise ValueError(f"upscale: expected a (3, H, W) tensor, got shape {tuple(image.shape)}")
        arr = t.permute(1, 2, 0).float().numpy()
    else:
        arr = np.asarray(image)
    h, w = arr.shape[:2]
    tile = max(h, w) if tile is None else int(tile)
    overlap = default_overlap(G) if overlap is None else int(overlap)
    batch = default_tile_batch(G) if tile_batch is None else int(tile_batch)
    if tile < 1 or overlap < 0 or batch < 1:
        raise ValueError(f"upscale: need tile >= 1, overlap >= 0, tile_batch >= 1; got {tile}, {overlap}, {batch}")
    return _upscale_array(G, scale, arr, tile, overlap, batch)


# --- files ----------------------------------------------------------------------------------
def _is_16bit(path: Path) -> bool:
    """True for 16-bit gray or colour files (from the header; no pixel is decoded)."""
    from PIL import Image

    from ..data.io import _is_16bit_colour

    with Image.open(path) as img:
        return img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I") or _is_16bit_colour(img, path)


def _save(path: Path, a: np.ndarray, quality: int = 95, png_compression: int | None = DEFAULT_PNG_COMPRESSION) -> str:
    """Write (H, W[, C]) uint8 or float32-in-[0, 1] (-> 16 bit where the format allows).

    Returns a note ("" or why 16 bits became 8).
    """
    note = "" if a.dtype == np.uint8 else sixteen_bit_note(path, 1 if a.ndim == 2 else a.shape[2])
    bits = 16 if a.dtype != np.uint8 and not note else 8
    save_image(path, a, quality=quality, png_compression=png_compression, bits=bits)
    return note


def _collect(inputs: list[str]) -> tuple[list[Path], list[str], int]:
    """(image files, one error line per unusable INPUT, number of non-image files ignored)."""
    files, errors = collect_inputs([str(Path(i).expanduser()) for i in inputs])
    ignored = sum(1 for i in inputs if Path(i).expanduser().is_dir()
                  for q in Path(i).expanduser().iterdir() if q.is_file() and not is_image_file(q) and not q.name.startswith("."))
    return files, errors, ignored


def add_infer_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders of images")
    p.add_argument("-o", "--output", help="output file (one input) or folder (default ./sr_x<scale>/, "
                                          "files <stem>_x<scale>.<ext>)")
    p.add_argument("--tile", type=int, default=DEFAULT_TILE,
                   help=f"LR pixels per tile side (default {DEFAULT_TILE}); 0 = whole image at once")
    p.add_argument("--tile-overlap", type=int, default=None,
                   help="LR context pixels around each tile (default: the net's receptive-field radius + 2, "
                        "which makes tiling exact)")
    p.add_argument("--tile-batch", type=int, default=None,
                   help="tiles per network call (default 8 on CUDA, 1 on the CPU, where 4 was 1.5x "
                        "faster but tripled peak memory)")
    p.add_argument("--ext", default=None,
                   help="output format in a folder: png (default), jpg, webp, or auto (the input's own)")
    p.add_argument("--quality", type=int, default=95, help="JPEG/WebP quality 1-100 (default 95)")
    p.add_argument("--png-compression", type=int, default=DEFAULT_PNG_COMPRESSION,
                   help=f"PNG zlib level 0-9 (default {DEFAULT_PNG_COMPRESSION}: a 4096² output encodes "
                        "~4× faster than at Pillow's 6, ~25 %% larger; same pixels)")
    p.add_argument("--io-threads", type=int, default=2,
                   help="threads that decode the next file and encode finished ones while the network "
                        "runs (default 2; 0 = one step after another)")


def _tile_args(args: argparse.Namespace, G: nn.Module) -> tuple[int | None, int]:
    tile = getattr(args, "tile", DEFAULT_TILE)
    overlap = getattr(args, "tile_overlap", None)
    if tile is not None and tile < 0:
        raise ConfigError(f"must be >= 0 (0 = no tiling), got {tile}", "--tile")
    if overlap is not None and overlap < 0:
        raise ConfigError(f"must be >= 0, got {overlap}", "--tile-overlap")
    return (tile or None), (default_overlap(G) if overlap is None else overlap)


_EXTS = {"png": ".png", "jpg": ".jpg", "jpeg": ".jpg", "webp": ".webp", "auto": None}


def _output_ext(args: argparse.Namespace) -> str | None:
    """``--ext`` as a suffix (None = each input's own), checked along with the other output flags."""
    ext = "png" if args.ext is None else args.ext.lower().lstrip(".")
    if ext not in _EXTS:
        raise ConfigError(f"expected png, jpg, webp or auto, got {args.ext!r}", "--ext")
    if not 1 <= args.quality <= 100:
        raise ConfigError(f"must be in 1..100, got {args.quality}", "--quality")
    if not 0 <= args.png_compression <= 9:
        raise ConfigError(f"must be in 0..9, got {args.png_compression}", "--png-compression")
    if args.io_threads < 0:
        raise ConfigError(f"must be >= 0, got {args.io_threads}", "--io-threads")
    if args.tile_batch is not None and args.tile_batch < 1:
        raise ConfigError(f"must be >= 1, got {args.tile_batch}", "--tile-batch")
    named = args.output is not None and Path(args.output).suffix.lower() in IMAGE_EXTENSIONS
    if named and args.ext is not None and _EXTS[ext] not in (None, Path(args.output).suffix.lower()):
        raise ConfigError(f"-o {args.output} names the format already; drop --ext or change the name", "--ext")
    return _EXTS[ext]


def _decode(src: Path) -> np.ndarray:
    """The file's own layout; 16-bit files as float32 in [0, 1], others uint8."""
    try:
        deep = _is_16bit(src) if src.stat().st_size > 0 else False
    except Exception:  # noqa: BLE001  (read_image below gives the proper one-line reason)
        deep = False
    return read_image(src, mode="keep", dtype="float32" if deep else "uint8")


class _Inline:
    """An executor that runs each job at once (``--io-threads 0``): the same loop, no threads."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        f: Future = Future()
        try:
            f.set_result(fn(*args))
        except BaseException as e:  # noqa: BLE001  (re-raised by .result(), as a thread's would be)
            f.set_exception(e)
        return f

    def shutdown(self) -> None:
        pass


def _pipeline(files: list[Path], outs: list[Path], compute: Callable[[np.ndarray], np.ndarray],
              save: Callable[[Path, np.ndarray], str], threads: int, bar: Any) -> tuple[list[Path], int]:
    """Decode file i+1 and encode files < i while the network runs on file i.

    Bounded: one decoded image ahead, at most ``threads`` outputs waiting to be written.
    Each file's result is the same as sequentially (same calls, other threads). Errors are
    one line per file, in file order. Returns (written paths, number failed).
    """
    reader = ThreadPoolExecutor(1) if threads else _Inline()
    writer = ThreadPoolExecutor(threads) if threads else _Inline()
    pending: deque[tuple[Path, Path, Future]] = deque()
    written: list[Path] = []
    failed = 0

    def report(src: Path, e: BaseException) -> None:
        nonlocal failed
        failed += 1
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        bar.write(f"error: {msg if str(src) in msg else f'{src}: {msg}'}", file=sys.stderr)

    def finish(src: Path, dst: Path, job: Future) -> None:
        try:
            note = job.result()
        except (DataError, OSError, ValueError) as e:
            report(src, e)
            return
        if note:
            bar.write(f"warning: {dst}: {note}", file=sys.stderr)
        written.append(dst)
        bar.update(1)

    try:
        ahead = reader.submit(_decode, files[0]) if files else None
        for i, (src, dst) in enumerate(zip(files, outs)):
            job, ahead = ahead, (reader.submit(_decode, files[i + 1]) if i + 1 < len(files) else None)
            try:
                sr = compute(job.result())
            except (DataError, OSError, ValueError) as e:
                report(src, e)
                bar.update(1)
                continue
            pending.append((src, dst, writer.submit(save, dst, sr)))
            del sr
            while len(pending) > threads:
                finish(*pending.popleft())
        while pending:
            finish(*pending.popleft())
    finally:
        reader.shutdown()
        writer.shutdown()
    return written, failed


def infer(model: LoadedModel, args: argparse.Namespace) -> int:
    """Upscale every INPUT; returns 0, or 1 if any file failed (each reported on stderr)."""
    from tqdm import tqdm

    G, scale = model.generator, _scale_of(model)
    tile, overlap = _tile_args(args, G)
    ext = _output_ext(args)
    batch = default_tile_batch(G) if args.tile_batch is None else args.tile_batch
    files, errors, ignored = _collect(args.inputs)
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    if not files:
        if not errors:
            print("error: no input images", file=sys.stderr)
        return 1
    single = is_single_file(args.inputs, files)
    outs = output_paths(files, args.output, single, f"sr_x{scale}", suffix=f"_x{scale}", ext=ext)
    bar = tqdm(total=len(files), desc=f"SR ×{scale}", unit="img", disable=len(files) < 2,
               file=sys.stderr, dynamic_ncols=True)

    def compute(a: np.ndarray) -> np.ndarray:
        return _upscale_array(G, scale, a, tile or max(a.shape[:2]), overlap, batch)

    def save(dst: Path, sr: np.ndarray) -> str:
        return _save(dst, sr, args.quality, args.png_compression)

    written, failed = _pipeline(files, outs, compute, save, args.io_threads, bar)
    failed += len(errors)
    bar.close()
    where = written[0] if len(written) == 1 else (written[0].parent if written else "-")
    extra = f"; ignored {ignored} non-image file(s)" if ignored else ""
    print(f"wrote {len(written)} image(s) ×{scale} to {where}" + (f"; {failed} failed" if failed else "") + extra)
    return 1 if failed else 0


# --- evaluation -----------------------------------------------------------------------------
def add_eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scale", type=int, default=None, help="upscaling factor (default: the model's; must match it)")
    p.add_argument("--tile", type=int, default=DEFAULT_TILE, help=f"LR tile side (default {DEFAULT_TILE}; 0 = none)")
    p.add_argument("--tile-overlap", type=int, default=None, help="LR tile context (default: exact)")


def _eval_dataset(model: LoadedModel, data: str | None, scale: int) -> tuple[Any, str]:
    from ..data.super_resolution import SRFolder, SRPaired

    if data is None:
        if model.config.get("data"):
            from .common import dataset_from_config

            cfg = dict(model.config)
            cfg["data"] = {**cfg["data"], "scale": scale}
            val = cfg["data"].get("val_split", "val")
            # whole images, not the training-time centre crops
            ds = dataset_from_config(cfg, val, None, val_patch_size=None)
            root = cfg["data"].get("val_root") or cfg["data"].get("root")
            return ds, (f"{root} ({val})" if root else f"embedded scikit-image photos ({val})")
        return SRFolder(None, split="val", scale=scale), "embedded scikit-image photos (val)"
    root = Path(data).expanduser()
    if not root.is_dir():
        raise ConfigError(f"not a folder: {data}", "--data")
    if any((root / d).is_dir() for d in ("hr", "HR")) and any((root / d).is_dir() for d in ("lr", "LR")):
        return SRPaired(str(root), split="val", scale=scale), f"{root} (hr/ + lr/ pairs)"
    return SRFolder(str(root), split="val", scale=scale), f"{root} (HR; LR by MATLAB bicubic)"


def evaluate(model: LoadedModel, args: argparse.Namespace) -> dict[str, Any]:
    """Per-image and mean PSNR/SSIM (RGB and Y, border = scale) of the model and of bicubic."""
    from ..metrics.image import psnr, ssim
    from ..recipes.super_resolution import bicubic_upscale

    G, scale = model.generator, _scale_of(model)
    if args.scale is not None and args.scale != scale:
        raise ConfigError(f"the model upscales ×{scale}, not ×{args.scale}", "--scale")
    tile, overlap = _tile_args(args, G)
    ds, what = _eval_dataset(model, args.data, scale)
    device = next(G.parameters()).device

    def scores(pred: Tensor, hr: Tensor) -> dict[str, float]:
        return {"psnr": psnr(pred, hr, scale).item(), "ssim": ssim(pred, hr, scale).item(),
                "psnr_y": psnr(pred, hr, scale, True).item(), "ssim_y": ssim(pred, hr, scale, True).item()}

    rows: list[dict[str, Any]] = []
    with torch.no_grad():
        for i in range(len(ds)):
            item = ds[i]
            lr, hr = item["lr"][None], item["hr"][None]
            h, w = lr.shape[-2:]
            sr = tiled_apply(lambda x: G(x.to(device)).clamp_(0.0, 1.0).cpu(), lr, scale=scale,
                             tile=tile or max(h, w), overlap=overlap, batch=default_tile_batch(G))
            row: dict[str, Any] = {"name": ds.names[int(item["index"])], "size": [int(hr.shape[-1]), int(hr.shape[-2])]}
            row.update(scores(sr, hr))
            row.update({f"bicubic/{k}": v for k, v in scores(bicubic_upscale(lr, scale), hr).items()})
            rows.append(row)
    keys = ["psnr_y", "ssim_y", "psnr", "ssim"]
    mean = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    mean.update({f"bicubic/{k}": float(np.mean([r[f"bicubic/{k}"] for r in rows])) for k in keys})
    mean["gain/psnr_y"] = mean["psnr_y"] - mean["bicubic/psnr_y"]
    if not args.json:
        print(f"{'image':<20} {'size':>11}  {'PSNR-Y':>7} {'SSIM-Y':>7}  {'bic PSNR-Y':>10} {'bic SSIM-Y':>10}")
        for r in rows:
            print(f"{r['name'][:20]:<20} {r['size'][0]:>5}x{r['size'][1]:<5}  {r['psnr_y']:7.2f} {r['ssim_y']:7.4f}"
                  f"  {r['bicubic/psnr_y']:10.2f} {r['bicubic/ssim_y']:10.4f}")
        print()
    return {**mean, "scale": scale, "crop_border": scale, "data": what, "num_images": len(rows), "per_image": rows}


# --- a warm start for short SRResNet training runs -----------------------------------------
def interpolation_taps(scale: int, taps: int = 9) -> np.ndarray:
    """1-D kernel k (``taps`` long) such that nearest ×scale followed by k ≈ MATLAB bicubic ×scale.

    Least squares on random 1-D signals against :func:`i2i.data.resize.imresize`, away from
    the borders. Nearest ×s is box_s convolved with a pulse train, so box_s * k is the
    effective interpolation kernel; 9 taps at ×4 give a 12-tap kernel, close to bicubic's 16.
    """
    rng = np.random.default_rng(0)
    n, pad = 64, taps // 2
    rows, target = [], []
    for _ in range(32):
        x = np.cumsum(rng.normal(size=n)).astype(np.float32)  # a random walk: image-like spectrum
        big = imresize(torch.from_numpy(x)[None, None, None], scale=(1.0, float(scale)))[0, 0, 0].numpy()
        near = np.repeat(x, scale)
        for i in range(4 * scale, n * scale - 4 * scale):
            rows.append(near[i - pad:i + pad + 1][::-1])
            target.append(big[i])
    k, *_ = np.linalg.lstsq(np.asarray(rows, np.float64), np.asarray(target, np.float64), rcond=None)
    return k.astype(np.float32)


@torch.no_grad()
def init_as_interpolator(net: nn.Module, damp: float = 0.1) -> nn.Module:
    """Set an SRResNet (``i2i.nn.srresnet``) so that, untrained, it outputs ≈ bicubic ×scale.

    The RGB input rides through channel k = 0..2 of every stage: the head conv copies it
    (centre tap 1; PReLU is the identity on inputs ≥ 0), the body's last BN has γ = β = 0 so
    the long skip adds nothing (zero-init residual, as in Goyal et al. 2017), each upsampler
    conv copies channel k to all r² sub-pixel channels of k (PixelShuffle then makes a
    nearest-neighbour ×r), and the tail's 9×9 filter is the separable
    :func:`interpolation_taps` kernel. Every other weight keeps its random init times
    ``damp``, so gradients reach all of them (an all-zero block would never train).
    Training then starts at bicubic quality and only learns the residual detail, which is
    what makes a short CPU run beat bicubic; the architecture and its config are unchanged.
    """
    head = net.head[0]
    c = net.in_channels
    if c != 3 or net.out_channels != 3 or not isinstance(head, nn.Conv2d):
        raise ValueError("init_as_interpolator expects an RGB -> RGB SRResNet")
    kh = head.kernel_size[0] // 2
    head.weight.mul_(damp)
    head.bias.mul_(damp)
    for k in range(c):
        head.weight[k].zero_()
        head.weight[k, k, kh, kh] = 1.0
        head.bias[k] = 0.0
    last = net.body[-1]
    bn = [m for m in last.modules() if isinstance(m, nn.BatchNorm2d)]
    conv = [m for m in last.modules() if isinstance(m, nn.Conv2d)][0]
    if bn:
        bn[0].weight.zero_()
        bn[0].bias.zero_()
    else:
        conv.weight.zero_()
        if conv.bias is not None:
            conv.bias.zero_()
    mods = list(net.upsample)
    scale = 1
    for i, m in enumerate(mods):
        if isinstance(m, nn.Conv2d):
            r = next(s for s in mods[i + 1:] if isinstance(s, nn.PixelShuffle)).upscale_factor
            scale *= r
            m.weight.mul_(damp)
            m.bias.mul_(damp)
            for k in range(c):
                for j in range(r * r):
                    m.weight[k * r * r + j].zero_()
                    m.weight[k * r * r + j, k, 1, 1] = 1.0
                    m.bias[k * r * r + j] = 0.0
    tail = net.tail
    taps = tail.kernel_size[0]
    k1 = torch.from_numpy(interpolation_taps(scale, taps))
    tail.weight.mul_(damp)
    tail.bias.zero_()
    for k in range(c):
        tail.weight[k, :c].zero_()
        tail.weight[k, k] = torch.outer(k1, k1)
    return net
