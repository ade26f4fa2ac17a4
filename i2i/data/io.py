"""Robust image reading and writing: the only place the package decodes image files.

Every task reads images through :func:`read_image` (photos) or :func:`read_mask`
(segmentation labels), so that the awkward cases are handled once:

* **EXIF orientation** is applied (``PIL.ImageOps.exif_transpose``): a phone photo stored
  landscape with orientation tag 6 comes back portrait, as every viewer shows it.
* **Modes**: palette (``P``/``PA``), ``1``, ``L``, ``LA``, ``RGB``, ``RGBA``, ``RGBX``,
  ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``, ``I``, ``I;16*`` and ``F`` are all turned into the
  requested layout. Grayscale from colour uses ITU-R BT.601 luma weights
  (0.299, 0.587, 0.114), the same as Pillow's ``convert("L")``. CMYK is converted by
  Pillow's naive formula (no ICC colour management).
* **Alpha**: for ``mode="RGB"``/``"L"`` a transparent image is composited on **white**
  by default (a transparent PNG logo then looks as it does in a browser), or the alpha
  channel is simply dropped with ``alpha="drop"``. ``mode="RGBA"`` keeps alpha (opaque
  images get alpha = max).
* **16 bit**: 16-bit grayscale PNG/TIFF (``I;16``/``I``) keep full precision with
  ``dtype="float32"`` (value / 65535) and are rounded to 8 bits (value / 257) for
  ``uint8``; Pillow's own ``convert("L")`` *clips* such values at 255, which is wrong.
  Pillow silently truncates 16-bit *colour* PNG/TIFF to 8 bits, so those are decoded with
  OpenCV (``opencv-python-headless``, declared; imported only for such files, and without
  it they are read as 8 bits with a warning). 16-bit gray+alpha PNGs
  are rare and go through Pillow (8-bit). Float (``F``) images are assumed to be in [0, 1]
  and are clipped to it.
* **Limits**: an image with more than ``max_pixels`` pixels is rejected from its header,
  *before* decoding (a decompression bomb costs nothing). Pillow's own bomb check
  (``PIL.Image.MAX_IMAGE_PIXELS``, about 89 MP) also applies and is reported the same way.
* **Errors**: a missing, empty, truncated or non-image file raises
  :class:`~i2i.errors.DataError` with one line that names the file and the reason, e.g.
  ``data/x.png: not a readable image (cannot identify image file)``.

:func:`save_image` writes atomically (temporary file in the same folder, then
``os.replace``), so an interrupted run never leaves a half-written PNG behind.
"""
from __future__ import annotations

import os
import struct
import tempfile
import warnings
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import DataError

IMAGE_EXTENSIONS: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
"""Lower-case suffixes recognised as images (matching is case-insensitive)."""

READ_EXTENSIONS: frozenset[str] = IMAGE_EXTENSIONS | {".gif"}
"""Suffixes read from input folders: the above plus GIF (its first frame, as Pillow opens it;
results are never written as GIF, a 256-colour format)."""

DEFAULT_MAX_PIXELS: int = 8192 * 8192
"""64 MP: far above any training photo (DIV2K is ≤ 2040×2040), below Pillow's bomb limit."""

ImageMode = Literal["RGB", "L", "RGBA", "keep"]

# Exceptions that Pillow's decoders raise on malformed data (besides OSError for truncation).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, IndexError)

# BT.601 luma, as Pillow's convert("L") uses: L = R*299/1000 + G*587/1000 + B*114/1000.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float64)


def is_image_file(path: str | Path) -> bool:
    """True if the suffix is an image extension (case-insensitive) and the name is not hidden."""
    p = Path(path)
    return p.suffix.lower() in READ_EXTENSIONS and not p.name.startswith(".")


def list_images(folder: str | Path, recursive: bool = False) -> list[Path]:
    """Image files in ``folder`` (optionally its sub-folders), sorted by relative path.

    Hidden files (``.foo.png``, macOS ``._foo.png`` resource forks) are skipped: they carry
    an image suffix but are not images. Raises :class:`DataError` naming the folder when it
    does not exist, is not a folder, or holds no image.
    """
    root = Path(folder)
    if not root.exists():
        raise DataError(f"{root}: folder not found")
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    candidates = root.rglob("*") if recursive else root.iterdir()
    files = [p for p in candidates if p.is_file() and is_image_file(p)
             and not any(part.startswith(".") for part in p.relative_to(root).parts[:-1])]
    if not files:
        exts = ", ".join(sorted(e.lstrip(".") for e in READ_EXTENSIONS))
        where = " (searched recursively)" if recursive else ""
        raise DataError(f"{root}: no images found{where}; expected files ending in {exts}")
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


# --- decoding ------------------------------------------------------------------------------
def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def _open_checked(path: Path, max_pixels: int | None) -> Image.Image:
    """``Image.open`` + size check before any pixel is decoded; errors become DataError."""
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: not a readable image (empty file, 0 bytes)")
    try:
        with warnings.catch_warnings():
            # Pillow only warns between 1x and 2x its limit; treat both as a refusal.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DataError(f"{path}: image too large ({_reason(e)})") from None
    except UnidentifiedImageError:
        raise DataError(f"{path}: not a readable image (cannot identify image file)") from None
    except _DECODE_ERRORS as e:
        raise DataError(f"{path}: not a readable image ({_reason(e)})") from None
    w, h = img.size
    if max_pixels is not None and w * h > max_pixels:
        img.close()
        raise DataError(f"{path}: image too large ({w}x{h} = {w * h} pixels > max_pixels={max_pixels})")
    return img


def _load(img: Image.Image, path: Path) -> Image.Image:
    """Decode pixels and apply EXIF orientation; truncated data becomes DataError."""
    try:
        img.load()
        out = ImageOps.exif_transpose(img)
        return out if out is not None else img
    except _DECODE_ERRORS as e:
        raise DataError(f"{path}: not a readable image ({_reason(e)})") from None


def _exif_orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(0x0112, 1))
    except Exception:  # a broken EXIF block must not make the image unreadable
        return 1


def _orient(a: np.ndarray, orientation: int) -> np.ndarray:
    """Apply EXIF orientation to an (H, W, ...) array, matching ``ImageOps.exif_transpose``."""
    if orientation == 2:
        return a[:, ::-1]
    if orientation == 3:
        return a[::-1, ::-1]
    if orientation == 4:
        return a[::-1]
    if orientation == 5:  # transpose
        return np.swapaxes(a, 0, 1)
    if orientation == 6:  # rotate 90° clockwise
        return np.rot90(a, -1)
    if orientation == 7:  # transverse
        return np.swapaxes(a, 0, 1)[::-1, ::-1]
    if orientation == 8:  # rotate 90° counter-clockwise
        return np.rot90(a, 1)
    return a


def _is_16bit_colour(img: Image.Image, path: Path) -> bool:
    """True for 16-bit-per-channel colour files, which Pillow would truncate to 8 bits."""
    if img.mode not in ("RGB", "RGBA"):
        return False
    if img.format == "PNG":
        try:
            with open(path, "rb") as f:
                head = f.read(26)
            return len(head) >= 26 and head[24] == 16  # IHDR bit depth
        except OSError:
            return False
    if img.format == "TIFF":
        bits = getattr(img, "tag_v2", {}).get(258)
        bits = bits if isinstance(bits, tuple) else (bits,)
        return any(isinstance(b, int) and b > 8 for b in bits)
    return False


def _decode_16bit_colour(path: Path, orientation: int) -> tuple[np.ndarray, str] | None:
    """(H, W, 3|4) float32 in [0, 1] via OpenCV, or None when OpenCV is unavailable/fails."""
    try:
        import cv2
    except ImportError:
        warnings.warn(f"{path}: 16-bit colour image read as 8 bits (install opencv to keep precision)",
                      stacklevel=3)
        return None
    a = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if a is None or a.ndim != 3 or a.shape[2] not in (3, 4):
        return None
    a = a[..., [2, 1, 0, 3][: a.shape[2]]]  # OpenCV is BGR(A)
    scale = 65535.0 if a.dtype == np.uint16 else 255.0
    a = _orient(a.astype(np.float32) / scale, orientation)
    return np.ascontiguousarray(a), ("RGBA" if a.shape[2] == 4 else "RGB")


def _canonical(img: Image.Image) -> tuple[np.ndarray, str]:
    """Pixels as (array, layout) with layout in L/LA/RGB/RGBA.

    The array is uint8 (8-bit sources), uint16 (16-bit grayscale) or float32 in [0, 1]
    (``F`` images). Channel meaning is fixed by the layout, whatever the source mode.
    """
    m = img.mode
    if m in ("I;16", "I;16L", "I;16B", "I;16N"):
        return np.asarray(img).astype(np.uint16), "L"
    if m == "I":  # 32-bit int: in practice 16-bit PNG/TIFF data, so clip to 16 bits
        return np.clip(np.asarray(img), 0, 65535).astype(np.uint16), "L"
    if m == "F":
        return np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0), "L"
    if m in ("1", "L"):
        return np.asarray(img.convert("L")), "L"
    if m in ("LA", "La"):
        return np.asarray(img.convert("LA")), "LA"
    if m in ("P", "PA"):
        has_alpha = m == "PA" or "transparency" in img.info
        return (np.asarray(img.convert("RGBA")), "RGBA") if has_alpha else (np.asarray(img.convert("RGB")), "RGB")
    if m in ("RGBA", "RGBa"):
        return np.asarray(img.convert("RGBA")), "RGBA"
    return np.asarray(img.convert("RGB")), "RGB"  # RGB, RGBX, CMYK, YCbCr, LAB, HSV


def _to_float(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535.0
    return a.astype(np.float32)


def _to_uint8(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.uint16:
        return ((a.astype(np.uint32) + 128) // 257).astype(np.uint8)  # round(v / 257)
    return np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8)


def _convert_layout(a: np.ndarray, layout: str, mode: str, alpha: str, dtype: str) -> np.ndarray:
    """Convert (array, layout) into the requested mode and dtype; see :func:`read_image`."""
    if mode == "keep":
        return _to_float(a) if dtype == "float32" else _to_uint8(a)
    # Work in float: exact for 8-bit (k/255 round-trips) and keeps 16-bit precision.
    exact_u8 = a.dtype == np.uint8 and dtype == "uint8"
    f = _to_float(a)
    if f.ndim == 2:
        f = f[..., None]
    colour, alpha_ch = (f[..., :-1], f[..., -1:]) if layout in ("LA", "RGBA") else (f, None)
    if mode == "RGBA":
        rgb = np.repeat(colour, 3, axis=2) if colour.shape[2] == 1 else colour
        alpha_ch = np.ones_like(rgb[..., :1]) if alpha_ch is None else alpha_ch
        out = np.concatenate([rgb, alpha_ch], axis=2)
    else:
        if alpha_ch is not None and alpha == "white":
            colour = colour * alpha_ch + (1.0 - alpha_ch)
        if mode == "RGB":
            out = np.repeat(colour, 3, axis=2) if colour.shape[2] == 1 else colour
        else:  # "L"
            out = colour[..., 0] if colour.shape[2] == 1 else (colour.astype(np.float64) @ _LUMA).astype(np.float32)
    if dtype == "float32":
        return np.ascontiguousarray(out, dtype=np.float32)
    if exact_u8 and out is f:
        return np.ascontiguousarray(a)
    return np.ascontiguousarray(np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8))


def read_image(path: str | Path, mode: ImageMode = "RGB", max_pixels: int | None = DEFAULT_MAX_PIXELS,
               dtype: Literal["uint8", "float32", "auto"] = "uint8",
               alpha: Literal["white", "drop"] = "white") -> np.ndarray:
    """Decode an image file into a numpy array.

    Args:
        path: the file.
        mode: ``"RGB"`` -> (H, W, 3); ``"L"`` -> (H, W) luma; ``"RGBA"`` -> (H, W, 4);
            ``"keep"`` -> the file's own layout: (H, W) gray, (H, W, 2) gray+alpha,
            (H, W, 3) RGB or (H, W, 4) RGBA (palette images are expanded to RGB(A)).
        max_pixels: refuse images with more pixels than this, from the header alone.
            ``None`` = no limit of ours (Pillow's ``Image.MAX_IMAGE_PIXELS`` still applies).
        dtype: ``"uint8"`` in [0, 255], or ``"float32"`` in [0, 1] (keeps 16-bit precision);
            ``"auto"``: float32 for 16-bit files (gray, or colour decoded by OpenCV), uint8
            for all others, so that a 16-bit source keeps its precision and an 8-bit one
            stays exact.
        alpha: how ``"RGB"``/``"L"`` treat transparency: ``"white"`` composites on white,
            ``"drop"`` discards the alpha channel.

    Returns:
        A C-contiguous array as described above, EXIF orientation applied.

    Raises:
        DataError: one line naming the file: missing, empty, not an image, truncated,
            or too large.
    """
    if mode not in ("RGB", "L", "RGBA", "keep"):
        raise ValueError(f"mode must be RGB, L, RGBA or keep, got {mode!r}")
    if dtype not in ("uint8", "float32", "auto"):
        raise ValueError(f"dtype must be uint8, float32 or auto, got {dtype!r}")
    if alpha not in ("white", "drop"):
        raise ValueError(f"alpha must be white or drop, got {alpha!r}")
    path = Path(path)
    img = _open_checked(path, max_pixels)
    with img:
        decoded = None
        if _is_16bit_colour(img, path):
            decoded = _decode_16bit_colour(path, _exif_orientation(img))
        deep = decoded is not None
        if decoded is None:
            decoded = _canonical(_load(img, path))
    a, layout = decoded
    if dtype == "auto":
        dtype = "float32" if deep or a.dtype == np.uint16 else "uint8"
    return _convert_layout(a, layout, mode, alpha, dtype)


def image_size(path: str | Path, max_pixels: int | None = DEFAULT_MAX_PIXELS, verify: bool = True) -> tuple[int, int]:
    """(H, W) as :func:`read_image` would return it, from the header: no pixel is decoded.

    Applies the same checks as :func:`read_image` (missing, empty, not an image, too large)
    and, with ``verify``, Pillow's cheap structural ``verify`` (catches many truncated PNGs).
    EXIF orientations 5-8 swap H and W, as :func:`read_image` rotates those by 90°.

    Raises:
        DataError: one line naming the file, as :func:`read_image`.
    """
    path = Path(path)
    with _open_checked(path, max_pixels) as img:
        w, h = img.size
        if _exif_orientation(img) in (5, 6, 7, 8):
            w, h = h, w
    if verify:
        with _open_checked(path, max_pixels) as img:  # verify() must directly follow open()
            try:
                img.verify()
            except _DECODE_ERRORS as e:
                raise DataError(f"{path}: not a readable image ({_reason(e)})") from None
    return h, w


def read_mask(path: str | Path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode a label image into (H, W) int64 class ids, with **no** colour conversion.

    Palette (``P``) PNGs give their palette indices (the VOC / ADE convention), grayscale
    (``L``, ``1``, ``I;16``, ``I``) their raw values. An alpha channel (``PA``/``LA``) is
    ignored. EXIF orientation is applied so that a mask stays aligned with its photo.
    Colour-coded masks (RGB) are refused: map colours to ids with the dataset's own table.

    Raises:
        DataError: as :func:`read_image`, or when the file is not single-channel.
    """
    path = Path(path)
    img = _open_checked(path, max_pixels)
    with img:
        img = _load(img, path)
        m = img.mode
        if m in ("P", "L", "I", "I;16", "I;16L", "I;16B", "I;16N"):
            a = np.asarray(img)
        elif m == "1":
            a = np.asarray(img.convert("L")) // 255
        elif m in ("PA", "LA"):
            a = np.asarray(img)[..., 0]
        else:
            raise DataError(f"{path}: expected a single-channel label image (palette or grayscale), got mode {m}")
    return np.ascontiguousarray(a, dtype=np.int64)


# --- writing -------------------------------------------------------------------------------
def _as_numpy_hwc(image: Any) -> np.ndarray:
    """numpy (H, W[, C]) or torch (C, H, W) / (1, C, H, W) / (H, W) -> numpy (H, W[, C])."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency of the package
        torch = None
    if torch is not None and isinstance(image, torch.Tensor):
        t = image.detach().cpu()
        if t.dim() == 4:
            if t.shape[0] != 1:
                raise ValueError(f"save_image takes one image, got a batch of shape {tuple(t.shape)}")
            t = t[0]
        if t.dim() == 3:
            t = t.permute(1, 2, 0)
        if t.dtype in (torch.float16, torch.bfloat16):
            t = t.float()
        return t.numpy()
    return np.asarray(image)


def sixteen_bit_note(path: str | Path, channels: int) -> str:
    """Why ``save_image(path, ..., bits=16)`` would not keep 16 bits for ``channels``, or "" if it would.

    PNG and TIFF hold 16-bit gray (Pillow) and 16-bit colour (OpenCV, when installed);
    JPEG/WebP/BMP hold 8 bits only.
    """
    ext = Path(path).suffix.lower()
    if ext not in (".png", ".tif", ".tiff"):
        return f"saved as 8 bits ({ext} holds no 16-bit data; use .png)"
    if channels == 2:
        return "saved as 8 bits (16-bit gray+alpha is not written)"
    if channels in (3, 4):
        try:
            import cv2  # noqa: F401
        except ImportError:
            return "saved as 8 bits (writing 16-bit colour needs OpenCV)"
    return ""


def _save_16bit(path: Path, a: np.ndarray) -> None:
    """(H, W) / (H, W, 3|4) float in [0, 1] as a 16-bit PNG/TIFF (see :func:`sixteen_bit_note`)."""
    u16 = np.clip(np.rint(np.nan_to_num(a.astype(np.float64)) * 65535.0), 0, 65535).astype(np.uint16)
    if u16.ndim == 2:
        fmt = "PNG" if path.suffix.lower() == ".png" else "TIFF"
        atomic_write(path, lambda t: Image.fromarray(u16).save(t, format=fmt))
        return
    import cv2

    bgr = np.ascontiguousarray(u16[..., [2, 1, 0, 3][: u16.shape[2]]])  # OpenCV is BGR(A)

    def write(t: str) -> None:
        if not cv2.imwrite(t, bgr):
            raise OSError(f"{path}: OpenCV could not write it")
    atomic_write(path, write)


def image_metadata(path: str | Path) -> dict[str, bytes]:
    """What an output should carry over from its source: the ICC colour profile and the EXIF
    block, with the orientation tag reset to 1 (:func:`read_image` has already applied it to the
    pixels). Empty for files without them, or that cannot be opened (the read reports those)."""
    out: dict[str, bytes] = {}
    try:
        with Image.open(path) as img:
            icc = img.info.get("icc_profile")
            if icc:
                out["icc_profile"] = icc
            exif = img.getexif()
            if len(exif):
                if 0x0112 in exif:
                    exif[0x0112] = 1
                out["exif"] = exif.tobytes()
    except Exception:  # noqa: BLE001  (metadata is a courtesy: never the reason a file fails)
        return {}
    return out


_METADATA_FORMATS = {"PNG", "JPEG", "WEBP", "TIFF"}  # Pillow writes icc_profile and exif for these


def save_image(path: str | Path, image: Any, palette: Sequence[int] | np.ndarray | None = None,
               quality: int = 95, png_compression: int | None = None, bits: Literal[8, 16] = 8,
               icc_profile: bytes | None = None, exif: bytes | None = None) -> Path:
    """Write an image atomically; returns the path.

    Args:
        path: destination; the format follows the suffix (parent folders are created).
        image: numpy (H, W) / (H, W, 1|2|3|4) or torch (C, H, W) / (1, C, H, W) / (H, W)
            (2 channels: gray + alpha). Floats are taken as [0, 1] (clipped, rounded to 8
            bits, or 16 with ``bits=16``); ``uint8`` as is; other integer (H, W) arrays are
            label maps saved exactly (8-bit, or 16-bit PNG when a value exceeds 255).
        palette: for label maps: flat ``[r0, g0, b0, r1, ...]`` or an (K, 3) array; the
            image is saved as a palette (``P``) PNG whose indices are the values, so
            :func:`read_mask` reads them back unchanged.
        quality: JPEG/WebP quality (1-100).
        png_compression: zlib level 0-9 of PNGs (None: Pillow's default, 6). Lower is faster
            and larger; every level decodes to the same pixels.
        bits: 16 keeps a float image's precision in a 16-bit PNG/TIFF where
            :func:`sixteen_bit_note` says it can (else ValueError).
        icc_profile, exif: metadata to embed (:func:`image_metadata` of the source) in PNG,
            JPEG, WebP and TIFF files written by Pillow; the 16-bit colour writer (OpenCV)
            drops them.
    """
    path = Path(path)
    a = _as_numpy_hwc(image)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (2, 3, 4)):
        raise ValueError(f"save_image expects (H, W), (H, W, 2|3|4) or (C, H, W) with C in 1..4; got {a.shape}")
    if png_compression is not None and not 0 <= png_compression <= 9:
        raise ValueError(f"png_compression must be in 0..9, got {png_compression}")
    if bits == 16 and np.issubdtype(a.dtype, np.floating):
        note = sixteen_bit_note(path, 1 if a.ndim == 2 else a.shape[2])
        if note:
            raise ValueError(f"{path}: {note}")
        _save_16bit(path, a)
        return path
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    if np.issubdtype(a.dtype, np.floating):
        a = np.clip(np.rint(np.nan_to_num(a.astype(np.float64)) * 255.0), 0, 255).astype(np.uint8)
    elif a.dtype != np.uint8:
        if a.ndim != 2:
            raise ValueError(f"integer images other than uint8 must be (H, W) label maps, got {a.shape} {a.dtype}")
        lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
        if lo < 0 or hi > 65535:
            raise ValueError(f"label values must be in [0, 65535], got [{lo}, {hi}]")
        a = a.astype(np.uint8) if hi <= 255 else a.astype(np.uint16)
    if palette is not None:
        if a.ndim != 2 or a.dtype != np.uint8:
            raise ValueError("a palette needs an (H, W) label map with values in [0, 255]")
        img = Image.frombytes("P", (a.shape[1], a.shape[0]), a.tobytes())
        flat = np.asarray(palette, dtype=np.uint8).reshape(-1).tolist()
        img.putpalette(flat + [0] * (768 - len(flat)) if len(flat) < 768 else flat[:768])
    else:
        img = Image.fromarray(a, "LA") if a.ndim == 3 and a.shape[2] == 2 else Image.fromarray(a)  # uint16 -> I;16
    ext = path.suffix.lower()
    fmt = Image.registered_extensions().get(ext)
    if fmt is None:
        raise ValueError(f"{path}: unknown image extension {path.suffix!r}")
    if fmt == "JPEG" and img.mode not in ("RGB", "L"):
        raise ValueError(f"{path}: JPEG cannot store mode {img.mode} (alpha); save as .png or .webp")
    params: dict[str, Any] = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    if fmt == "PNG" and png_compression is not None:
        params["compress_level"] = png_compression
    if fmt in _METADATA_FORMATS:
        params.update({k: v for k, v in (("icc_profile", icc_profile), ("exif", exif)) if v})
    atomic_write(path, lambda tmp: img.save(tmp, format=fmt, **params))
    return path


def save_image_keep_depth(path: str | Path, image: Any, quality: int = 95,
                          png_compression: int | None = None, **metadata: bytes) -> str:
    """Write what :func:`read_image` ``dtype="auto"`` returned, at the depth it came in.

    uint8 images are written as 8 bits; float images (in [0, 1], from 16-bit sources) as
    16 bits where the format and the installed libraries allow (:func:`sixteen_bit_note`),
    else rounded to 8 bits. Returns "" or the note saying why 16 bits became 8, for the
    caller to show as a warning.
    """
    a = _as_numpy_hwc(image)
    note = "" if a.dtype == np.uint8 else sixteen_bit_note(path, 1 if a.ndim == 2 else a.shape[2])
    bits: Literal[8, 16] = 16 if a.dtype != np.uint8 and not note else 8
    save_image(path, a, quality=quality, png_compression=png_compression, bits=bits, **metadata)
    return note


def atomic_write(path: str | Path, write: Any) -> Path:
    """``write(tmp_path)`` into a temp file beside ``path``, then rename it into place.

    An interrupted run never leaves a half-written file; the file gets the usual permissions
    (``mkstemp`` creates 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix or ".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path
