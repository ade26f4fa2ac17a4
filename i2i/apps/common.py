"""What the task front-ends share: the file loop, output naming, evaluation loaders.

:class:`FileLoop` (:mod:`.loop`) is the one loop over image files (collect the inputs, name the
outputs, read → pipeline → write each file, one ``error: <file>: <reason>`` line per file
that fails, exit code 1 if any did, never writing over an input). This module holds input
collection, output naming and the per-file helpers; :mod:`.evaluation` the evaluation side
(datasets, loaders, the accelerator, the recipe); both are importable from here.
"""
from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..data.io import IMAGE_EXTENSIONS, list_images, read_image, save_image
from ..errors import ConfigError, I2IError


def collect_inputs(inputs: list[str]) -> tuple[list[Path], list[str]]:
    """Files to process (folders expanded) and one-line errors for inputs that are neither."""
    files: list[Path] = []
    errors: list[str] = []
    for item in inputs:
        p = Path(item).expanduser()
        if p.is_dir():
            try:
                files.extend(list_images(p))
            except I2IError as e:
                errors.append(str(e))
        elif p.exists():
            files.append(p)  # even without an image suffix: read_image says what is wrong
        else:
            errors.append(f"{p}: file not found")
    return files, errors


def is_single_file(inputs: list[str], files: list[Path]) -> bool:
    """One input that is a file (not a folder): then ``-o`` may name the output file."""
    return len(inputs) == 1 and len(files) == 1 and not Path(inputs[0]).expanduser().is_dir()


def output_paths(files: list[Path], output: str | None, single_file: bool, default_folder: str,
                 png_only: bool = False, suffix: str = "", ext: str | None = ".png") -> list[Path]:
    """Output path per input: ``-o`` is a file for one input with an image suffix, else a folder.

    In a folder, outputs are ``<stem><suffix><ext>`` (``ext=None``: the input's own image
    suffix, else ``.png``); two inputs with the same stem (``a.png`` from two folders) get
    ``a…`` and ``a_1…``. ``png_only`` rejects a non-PNG file name.
    """
    if output is not None and Path(output).suffix.lower() in IMAGE_EXTENSIONS and not Path(output).is_dir():
        if png_only and Path(output).suffix.lower() != ".png":
            raise ConfigError("masks are written as palette PNGs: use a .png name", "-o")
        if not single_file:
            raise ConfigError("several inputs need an output folder, not a file name", "-o")
        return refuse_overwriting_inputs(files, [Path(output)])
    folder = Path(output).expanduser() if output else Path(default_folder)
    used: dict[str, int] = {}
    out = []
    for f in files:
        n = used.get(f.stem, 0)
        used[f.stem] = n + 1
        e = ext or (f.suffix.lower() if f.suffix.lower() in IMAGE_EXTENSIONS else ".png")
        out.append(folder / (f"{f.stem}{suffix}{e}" if n == 0 else f"{f.stem}_{n}{suffix}{e}"))
    return refuse_overwriting_inputs(files, out)


def _identity(p: Path) -> tuple:
    """What makes two paths one file: device + inode when it exists (hard links, symlinks),
    else the resolved path."""
    try:
        st = p.stat()
        return (st.st_dev, st.st_ino)
    except OSError:
        return (str(p.expanduser().resolve()),)


def refuse_overwriting_inputs(inputs: list[Path], outputs: list[Path]) -> list[Path]:
    """``outputs`` unchanged, or a one-line error if one of them is an input file: a run
    never writes over what it reads (``-o`` naming the input, or the input's own folder)."""
    sources = {_identity(src): src for src in inputs}
    for dst in outputs:
        src = sources.get(_identity(dst))
        if src is not None:
            raise ConfigError(f"{dst} would overwrite the input {src}; choose another output file or folder", "-o")
    return outputs


# --- output formats ---------------------------------------------------------------------------
DEFAULT_PNG_COMPRESSION = 1
"""zlib level of written PNGs. Measured on a 4096² RGB output (shared 2-core EPYC): level 6
(Pillow's default) 5.4 s / 9.3 MiB, level 1 1.2 s / 11.8 MiB, level 0 0.7 s / 48 MiB."""

_EXTS: dict[str, str | None] = {"png": ".png", "jpg": ".jpg", "jpeg": ".jpg", "webp": ".webp", "auto": None}


def add_format_args(p: argparse.ArgumentParser) -> None:
    """``--ext``, ``--quality`` and ``--png-compression``: the format of the images written (see :func:`output_ext`)."""
    p.add_argument("--ext", default=None,
                   help="output format in a folder: png (default), jpg, webp, or auto (the input's own)")
    p.add_argument("--quality", type=int, default=95, help="JPEG/WebP quality 1-100 (default 95)")
    p.add_argument("--png-compression", type=int, default=DEFAULT_PNG_COMPRESSION,
                   help=f"PNG zlib level 0-9 (default {DEFAULT_PNG_COMPRESSION}: a 4096² output encodes "
                        "~4× faster than at Pillow's 6, ~25 %% larger; same pixels)")


def output_ext(args: argparse.Namespace) -> str | None:
    """``--ext`` as a suffix (None = each input's own), checked along with the other output flags."""
    ext = "png" if args.ext is None else args.ext.lower().lstrip(".")
    from .video import VIDEO_EXTENSIONS

    if f".{ext}" in VIDEO_EXTENSIONS:  # --ext mp4: the container of video outputs (i2i/apps/video.py); images: PNG
        ext = "png"
    if ext not in _EXTS:
        raise ConfigError(f"expected png, jpg, webp or auto, got {args.ext!r}", "--ext")
    if not 1 <= args.quality <= 100:
        raise ConfigError(f"must be in 1..100, got {args.quality}", "--quality")
    if not 0 <= args.png_compression <= 9:
        raise ConfigError(f"must be in 0..9, got {args.png_compression}", "--png-compression")
    named = args.output is not None and Path(args.output).suffix.lower() in IMAGE_EXTENSIONS
    if named and args.ext is not None and _EXTS[ext] not in (None, Path(args.output).suffix.lower()):
        raise ConfigError(f"-o {args.output} names the format already; drop --ext or change the name", "--ext")
    return _EXTS[ext]


# --- the file loop ------------------------------------------------------------------------------
def add_file_args(p: argparse.ArgumentParser, inputs_help: str, default_folder: str, output_help: str = "") -> None:
    """``INPUT...`` (files and/or folders) and ``-o/--output`` (a file for one input, else a folder)."""
    p.add_argument("inputs", nargs="+", metavar="INPUT", help=inputs_help)
    p.add_argument("-o", "--output", default=None,
                   help=output_help or f"output file (one input file) or folder (default ./{default_folder}/)")
    from .video import add_video_args

    add_video_args(p)  # video files (i2i/apps/video.py) and big jobs: --codec, --crf, --batch, --resume, …


@contextlib.contextmanager
def cli_flags() -> Iterator[None]:
    """A pipeline's :class:`~i2i.errors.ConfigError` about a parameter (``tile_batch``) named
    as the flag that set it (``--tile-batch``); other errors pass unchanged."""
    try:
        yield
    except ConfigError as e:
        if e.key and e.key.isidentifier():
            raise ConfigError(str(e)[len(e.key) + 2:], "--" + e.key.replace("_", "-")) from None
        raise


def one_line_error(src: Path, e: BaseException) -> str:
    """``<file>: <first line of the reason>`` (the file named once, even if the reason names it)."""
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return msg if str(src) in msg else f"{src}: {msg}"


PER_FILE_ERRORS = (I2IError, OSError, ValueError, RuntimeError)
"""What fails one file and not the run: bad data, unwritable outputs, odd arrays, a device
out of memory on one huge image. Anything else is a bug and stops the run."""


class TileBar:
    """``progress(done, total)`` for a tiled pipeline: a tqdm bar over one image's tiles, with the
    time left, for images of ``min_tiles`` tiles or more; quiet when stderr is not a terminal
    (``stream`` overrides, for tests). One bar per image, removed when the image is done."""

    def __init__(self, min_tiles: int = 4, stream: Any = None, mininterval: float = 0.5):
        self.min_tiles, self.stream, self.bar, self.updates = min_tiles, stream, None, 0
        self.mininterval = mininterval

    def __call__(self, done: int, total: int) -> None:
        import sys

        from tqdm import tqdm

        if self.bar is None and total >= self.min_tiles and done < total:
            self.bar = tqdm(total=total, desc="  tiles", unit="tile", leave=False, file=self.stream or sys.stderr,
                            disable=None if self.stream is None else False, dynamic_ncols=True,
                            mininterval=self.mininterval)
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
            self.updates += 1
            if done >= total:
                self.bar.close()
                self.bar = None


def check_writable(folders: set[Path]) -> None:
    """Each output folder made (if missing) and probed with a temporary file before any input is
    read: a read-only or missing-permission target is one line and exit 2, not one failure per file."""
    import tempfile

    from ..errors import write_error

    for folder in sorted(folders):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".i2i-probe-"):
                pass
        except OSError as e:
            raise write_error(folder, e) from None


def read_rgb(src: Path) -> np.ndarray:
    """The default reader: (H, W, 3) uint8 (:func:`i2i.data.io.read_image`; alpha on white)."""
    return read_image(src, "RGB")


def save_and_say(src: Path, dst: Path, image: Any) -> str:
    """The default writer: :func:`i2i.data.io.save_image`, then the line ``src -> dst``."""
    save_image(dst, image)
    return f"{src} -> {dst}"


from .evaluation import dataset_from_config, eval_loader, eval_recipe, item_names, make_accelerator  # noqa: E402,F401
from .loop import FileLoop, LoopResult  # noqa: E402,F401  (it builds on the helpers above)
