"""What the task front-ends share: the file loop, output naming, evaluation loaders.

:class:`FileLoop` is the one loop over image files (collect the inputs, name the
outputs, read → pipeline → write each file, one ``error: <file>: <reason>`` line per file
that fails, exit code 1 if any did, never writing over an input). Video files go frame by
frame through the same per-image function (:mod:`i2i.apps.video`); under a multi-process
launch the files are shared between the processes (:mod:`i2i.apps.jobs`).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..data.io import IMAGE_EXTENSIONS, is_image_file, list_images, read_image, save_image
from ..errors import ConfigError, I2IError


def dataset_from_config(config: dict[str, Any], split: str, root: str | None = None, **overrides: Any) -> Dataset:
    """Rebuild the run's dataset (its ``data:`` section) for ``split``; ``root`` replaces ``data.root``."""
    from ..engine.build import build_dataset

    return build_dataset(config.get("data") or {}, split, root=root, root_key="--data", **overrides)


def eval_recipe(model: Any) -> Any:
    """The training recipe of a loaded model (losses built with their YAML weights, ``setup`` run on
    its networks), for ``i2i-eval``: the recipe owns the evaluation metrics. Running a model
    never needs it (the pipelines read the model card)."""
    from ..engine.build import build_recipe

    # the content loss may need VGG weights; no evaluation needs it
    recipe = build_recipe(model.recipe, model.config.get("losses", {}), skip_losses=("content",))
    recipe.setup(dict(model.nets))
    return recipe


def eval_loader(accelerator: Any, dataset: Dataset, batch_size: int, num_workers: int = 0) -> Any:
    """A loader sharded across processes; ``gather_for_metrics`` drops its padding duplicates."""
    loader = DataLoader(dataset, batch_size=batch_size * accelerator.num_processes, shuffle=False, num_workers=num_workers)
    return accelerator.prepare_data_loader(loader)


def make_accelerator(device: torch.device | None = None) -> Any:
    """An Accelerator on ``device`` (``args.device`` of the tools), so that model and batches agree.

    Accelerate itself takes CUDA whenever it is present; ``--device cpu`` must say ``cpu=True``.
    A single process on ``cuda:N`` makes N the current device: Accelerate's ``cuda`` means it.
    """
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration

    from ..distributed import use_cpu

    cpu = use_cpu() or (device is not None and device.type == "cpu" and torch.cuda.is_available())
    if device is not None and device.type == "cuda":
        if use_cpu():
            raise ConfigError(f"{device} conflicts with accelerate launch --cpu", "--device")
        if device.index is not None and "LOCAL_RANK" not in os.environ:
            torch.cuda.set_device(device)
    return Accelerator(cpu=cpu, dataloader_config=DataLoaderConfiguration(split_batches=True))


def item_names(ds: Any) -> list[str]:
    """A short name per item, in dataset order (photo name, A|B file, or B file)."""
    if hasattr(ds, "names"):
        names = [Path(n).name for n in ds.names]
    elif hasattr(ds, "files"):
        names = [Path(f).name for f in ds.files]
    elif hasattr(ds, "pairs"):
        names = [Path(b).name for _, b in ds.pairs]
    else:
        return [str(i) for i in range(len(ds))]
    reps = len(ds) // max(1, len(names))
    return [n if reps == 1 else f"{n}#{r}" for r in range(reps) for n in names]


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


class TileBar:
    """``progress(done, total)`` for a tiled pipeline: a tqdm bar over one image's tiles, with the
    time left, for images of ``min_tiles`` tiles or more; quiet when stderr is not a terminal
    (``stream`` overrides, for tests). One bar per image, removed when the image is done."""

    def __init__(self, min_tiles: int = 4, stream: Any = None):
        self.min_tiles, self.stream, self.bar, self.updates = min_tiles, stream, None, 0

    def __call__(self, done: int, total: int) -> None:
        from tqdm import tqdm

        if self.bar is None and total >= self.min_tiles and done < total:
            self.bar = tqdm(total=total, desc="  tiles", unit="tile", leave=False, file=self.stream or sys.stderr,
                            disable=None if self.stream is None else False, dynamic_ncols=True, mininterval=0.5)
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


PER_FILE_ERRORS = (I2IError, OSError, ValueError, RuntimeError)
"""What fails one file and not the run: bad data, unwritable outputs, odd arrays, a device
out of memory on one huge image. Anything else is a bug and stops the run."""


def read_rgb(src: Path) -> np.ndarray:
    """The default reader: (H, W, 3) uint8 (:func:`i2i.data.io.read_image`; alpha on white)."""
    return read_image(src, "RGB")


def save_and_say(src: Path, dst: Path, image: Any) -> str:
    """The default writer: :func:`i2i.data.io.save_image`, then the line ``src -> dst``."""
    save_image(dst, image)
    return f"{src} -> {dst}"


class _Inline:
    """An executor that runs each job at once (``io_threads=0``): the same loop, no threads."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        f: Future = Future()
        try:
            f.set_result(fn(*args))
        except BaseException as e:  # noqa: BLE001  (re-raised by .result(), as a thread's would be)
            f.set_exception(e)
        return f

    def shutdown(self) -> None:
        pass


@dataclass
class LoopResult:
    """What one :meth:`FileLoop.run` did, for the summary line."""

    files: list[Path]
    outputs: list[Path]
    single: bool  # one input file: -o may have named the output file
    ignored: int  # non-image files skipped in input folders
    written: list[Path] = field(default_factory=list)
    failed: int = 0  # inputs that failed (unusable INPUT arguments included)


class FileLoop:
    """read → process → write over image files; each failure is one line, the rest still run.

    Args:
        process: the pipeline: what ``read`` returns -> what ``write`` takes. Runs on the
            calling thread, file after file, in input order.
        read: ``src -> input`` (default :func:`read_rgb`).
        write: ``(src, dst, result) -> line | None`` (default :func:`save_and_say`). The
            line is shown in file order: on stderr if it starts with ``warning:``, else on stdout.
        io_threads: 0 = each step after the other. N ≥ 1: a reader thread decodes the next
            file and N writer threads encode finished ones while ``process`` runs (bounded:
            one input ahead, at most N outputs waiting); every file gets the same calls, so
            the same bytes, as without threads.
        progress: a progress-bar label (tqdm on stderr, shown for two files or more); None = no bar.
        noun: what the default summary counts (``"image(s)"``, ``"mask(s)"``).
        extra_outputs: ``dst -> [paths]``: other files ``write`` makes beside ``dst`` (a
            sketch, an overlay), checked like ``dst`` never to be an input.

    Example — a CycleGAN front-end (``i2i/apps/cyclegan.py``, translation A→B or B→A)
    needs nothing new in this module::

        from ..pipelines.cyclegan import CycleGANPipeline
        from .common import FileLoop, add_file_args, cli_flags

        def add_infer_args(p):
            add_file_args(p, "images of the source domain, or folders of them", "cyclegan_<direction>")
            p.add_argument("--direction", choices=("AtoB", "BtoA"), default="AtoB")

        def infer(model, args) -> int:
            with cli_flags():  # a pipeline's bad parameter, named as its --flag
                pipe = CycleGANPipeline(model, direction=args.direction)  # (H, W, 3) uint8 -> same
            return FileLoop(pipe).run(args.inputs, args.output, f"cyclegan_{args.direction}",
                                      suffix=f"_{args.direction}")

    Outputs are named by :func:`output_paths` (``-o`` a file for one input file, else a
    folder receiving ``<stem><suffix><ext>``); a bad ``-o`` stops the run with one line
    before any file is read.
    """

    def __init__(self, process: Callable[[Any], Any], read: Callable[[Path], Any] = read_rgb,
                 write: Callable[[Path, Path, Any], str | None] = save_and_say, io_threads: int = 0,
                 progress: str | None = None, noun: str = "image(s)",
                 extra_outputs: Callable[[Path], list[Path]] | None = None):
        if io_threads < 0:
            raise ConfigError(f"must be >= 0, got {io_threads}", "--io-threads")
        self.process, self.read, self.write = process, read, write
        self.io_threads, self.progress, self.noun = io_threads, progress, noun
        self.extra_outputs = extra_outputs

    def default_summary(self, r: LoopResult) -> str | None:
        """``wrote N image(s) to <folder>`` after a folder's worth of outputs, ``wrote <file>`` after one."""
        if not r.written:
            return None
        return f"wrote {r.written[0]}" if r.single else f"wrote {len(r.written)} {self.noun} to {r.outputs[0].parent}"

    def run(self, inputs: list[str], output: str | None, default_folder: str, *, suffix: str = "",
            ext: str | None = ".png", png_only: bool = False,
            summary: Callable[[LoopResult], str | None] | None = None) -> int:
        """Process every INPUT; returns 0, or 1 if any input failed (each said on stderr).

        ``inputs``: files and folders (a folder's images, not its sub-folders); ``output``,
        ``default_folder``, ``suffix``, ``ext``, ``png_only``: see :func:`output_paths`;
        ``summary``: the last stdout line, from the :class:`LoopResult` (default
        :meth:`default_summary`).
        """
        from .video import split_inputs

        videos, inputs = split_inputs(inputs)
        if videos:  # video files: frame by frame through self.process (i2i/apps/video.py); the rest as below
            from .video import run_videos

            code = run_videos(self, videos, output, len(videos) == 1 and not inputs, default_folder, suffix)
            return max(code, self.run(inputs, output, default_folder, suffix=suffix, ext=ext, png_only=png_only,
                                      summary=summary)) if inputs else code
        files, errors = collect_inputs(inputs)
        if not files:
            for e in errors or ["no input images"]:
                print(f"error: {e}", file=sys.stderr)
            return 1
        single = is_single_file(inputs, files)
        outputs = output_paths(files, output, single, default_folder, png_only=png_only, suffix=suffix, ext=ext)
        if self.extra_outputs is not None:
            refuse_overwriting_inputs(files, [e for dst in outputs for e in self.extra_outputs(dst)])
        check_writable({dst.parent for dst in outputs})
        ignored = sum(1 for i in inputs if Path(i).expanduser().is_dir() for q in Path(i).expanduser().iterdir()
                      if q.is_file() and not is_image_file(q) and not q.name.startswith("."))
        from .jobs import Job, atomic_writer
        from .video import current_options

        job, resume = Job.current(), current_options().resume  # i2i/apps/jobs.py: processes of a launch
        result = LoopResult(files, outputs, single, ignored, failed=len(errors) if job.main else 0)
        for e in errors if job.main else []:  # after -o is known to be usable: a bad -o is the only line
            print(f"error: {e}", file=sys.stderr)
        todo = [(f, o) for f, o in zip(files, outputs) if not (resume and o.is_file())]
        if resume and job.main and len(todo) < len(files):
            print(f"skipped {len(files) - len(todo)} complete output(s) (--resume)")
        mine = job.share(todo)
        bar = None
        if self.progress is not None and job.main:
            from tqdm import tqdm

            bar = tqdm(total=len(todo), desc=self.progress, unit="img", disable=len(todo) < 2, file=sys.stderr,
                       dynamic_ncols=True)
        write = self.write
        if resume or job.size > 1:  # outputs renamed when complete (what --resume trusts)
            self.write = atomic_writer(write)
        share = LoopResult([f for f, _ in mine], [o for _, o in mine], single, ignored)
        try:
            if mine:
                self._loop(share, job.progress(bar))
            result.written = job.gather(share.written)  # waits for every process
            result.failed += sum(job.gather([share.failed]))
            if bar is not None and job.size > 1:
                bar.n = len(todo)
                bar.refresh()
        finally:
            self.write = write
            if bar is not None:
                bar.close()
        line = (summary or self.default_summary)(result) if job.main else None
        if line:
            print(line)
        return 1 if result.failed else 0

    def _loop(self, r: LoopResult, bar: Any) -> None:
        def say(line: str, err: bool = False) -> None:
            out = sys.stderr if err else sys.stdout
            bar.write(line, file=out) if bar is not None else print(line, file=out)

        def failed(src: Path, e: BaseException) -> None:
            r.failed += 1
            say(f"error: {one_line_error(src, e)}", err=True)

        def finish(src: Path, dst: Path, job: Future) -> None:
            try:
                line = job.result()
            except PER_FILE_ERRORS as e:
                failed(src, e)
                if bar is not None:
                    bar.update(1)
                return
            if line:
                say(line, err=line.startswith("warning:"))
            r.written.append(dst)
            if bar is not None:
                bar.update(1)

        threads = self.io_threads
        reader = ThreadPoolExecutor(1) if threads else _Inline()
        writer = ThreadPoolExecutor(threads) if threads else _Inline()
        pending: deque[tuple[Path, Path, Future]] = deque()
        files = r.files
        try:
            ahead = reader.submit(self.read, files[0])
            for i, (src, dst) in enumerate(zip(files, r.outputs)):
                job, ahead = ahead, (reader.submit(self.read, files[i + 1]) if i + 1 < len(files) else None)
                try:
                    result = self.process(job.result())
                except PER_FILE_ERRORS as e:
                    failed(src, e)
                    if bar is not None:
                        bar.update(1)
                    continue
                pending.append((src, dst, writer.submit(self.write, src, dst, result)))
                del result  # a large output is held by its write job only
                while len(pending) > threads:
                    finish(*pending.popleft())
            while pending:
                finish(*pending.popleft())
        finally:
            reader.shutdown()
            writer.shutdown()
