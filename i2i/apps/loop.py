"""The one loop over image files of every front-end (:class:`FileLoop`).

Video files go frame by frame through the same per-image function (:mod:`i2i.apps.video`);
under a multi-process launch the files are shared between the processes (:mod:`i2i.apps.jobs`).
"""
from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.io import is_image_file
from ..errors import ConfigError
from .common import (
    PER_FILE_ERRORS,
    check_writable,
    collect_inputs,
    is_single_file,
    one_line_error,
    output_paths,
    read_rgb,
    refuse_overwriting_inputs,
    save_and_say,
)


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
