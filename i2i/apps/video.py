"""Video files through the image pipelines: decode → network → encode, frame by frame, streaming.

    i2i-infer --task sr clip.mp4 -o clip_x4.mp4                      # ×4, audio kept
    i2i-infer --task sr --batch 4 --codec ffv1 clip.mp4 -o clip.mkv  # lossless RGB output
    i2i-infer --task seg --checkpoint RUN --overlay --no-mask street.mp4 -o overlay.mp4

How it fits: every task front-end hands its per-image function to
:class:`i2i.apps.common.FileLoop`; :meth:`FileLoop.run` gives the video inputs to
:func:`run_videos` here, so a video frame goes through exactly the function an image file
does, and the decoded frame equals the image a user would have saved from the video
(:func:`frame_to_rgb`, an (H, W, 3) uint8 RGB array). Where the front-end's result is not
a plain RGB array (segmentation's ``(image, labels)``, pix2pix's ``(sketch, photo)``), the
frame is what its writer saves for an image file (the coloured mask, the overlay, the
photo), read back as RGB.

What is kept (PyAV / FFmpeg): each frame's pts and the stream's time base (variable
frame rate included; no frame dropped or duplicated), audio and subtitle packets copied
without re-encoding (:func:`can_carry`; where the output container cannot hold the codec,
audio is re-encoded and a subtitle stream dropped, each said in a warning), the display rotation (PyAV's ``frame.rotation`` →
``stream.set_display_rotation``), and the colour range, matrix, primaries and transfer
tags of the source (the RGB → YUV conversion uses the source's matrix and range).

Threads: one decodes (and converts to RGB), the calling thread runs the network on
``--batch`` frames at a time, one converts, encodes and muxes; the queues between them
hold a few batches, so memory does not grow with the video's length. The output is
written as ``.<name>.part`` beside the final name and renamed when complete: an
interrupted run leaves no file that looks finished.

Batches: a super-resolution pipeline runs ``--batch`` frames per network call through its
own tiling (:func:`i2i.pipelines.super_resolution.sr_tiles`); other pipelines take one
frame per call (``--batch`` only sizes the queues).
"""
from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import queue
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError, I2IError

__all__ = [
    "VIDEO_EXTENSIONS",
    "VideoOptions",
    "add_video_args",
    "can_carry",
    "current_options",
    "frame_times",
    "frame_to_rgb",
    "is_video_file",
    "job_options",
    "join_segments",
    "process_video",
    "run_segmented",
    "run_sharded",
    "run_videos",
]

VIDEO_EXTENSIONS: dict[str, str] = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska",
                                    ".webm": "webm", ".avi": "avi"}
"""File suffix -> FFmpeg muxer of the video containers read and written."""

MAX_SIDE = 16384
"""Largest input frame side accepted (FFmpeg's H.264/VP9 encoders stop at 16384 or below)."""

_CARRY: dict[str, set[str]] = {
    "webm": {"opus", "vorbis", "webvtt"},
    "mp4": {"aac", "mp3", "opus", "ac3", "eac3", "alac", "flac", "mov_text"},
    "mov": {"aac", "mp3", "alac", "pcm_s16le", "pcm_s24le", "mov_text", "ac3"},
    "avi": {"mp3", "ac3", "pcm_s16le"},
}


def can_carry(muxer: str, codec: str) -> bool:
    """Whether the ``muxer`` (mp4, webm, matroska, …) holds a ``codec`` stream copied as is (Matroska: all)."""
    return muxer == "matroska" or codec in _CARRY.get(muxer, set())


_AUDIO_FOR = {"webm": "libopus", "mp4": "aac", "mov": "aac", "avi": "libmp3lame"}
"""The audio encoder for a stream the container cannot carry as it is."""


class _OtherStreams:
    """The source's audio and subtitle streams in the output: packets copied where the container
    carries the codec (:func:`can_carry`), audio re-encoded where it does not (said in ``notes``),
    subtitles dropped where it does not (said too)."""

    def __init__(self, streams: list[Any], muxer: str, suffix: str):
        import av

        self.copy: list[Any] = []
        self.recode: dict[int, str] = {}
        self.notes: list[str] = []
        for s in streams:
            name = s.codec_context.name if s.codec_context is not None else "?"
            if can_carry(muxer, name):
                self.copy.append(s)
            elif s.type == "audio" and _AUDIO_FOR.get(muxer) in av.codecs_available:
                self.recode[s.index] = _AUDIO_FOR[muxer]
                self.notes.append(f"audio stream {s.index} ({name}) re-encoded to {_AUDIO_FOR[muxer]}: {suffix} cannot "
                                  f"carry {name} (use .mkv to copy it)")
            else:
                self.notes.append(f"{s.type} stream {s.index} ({name}) dropped: {suffix} cannot carry it (use .mkv)")
        self.streams = self.copy + [s for s in streams if s.index in self.recode]
        self.maps: dict[int, Any] = {}

    def open(self, out: Any) -> None:
        """Add the output streams (before the first packet is written)."""
        for s in self.streams:
            if s.index in self.recode:
                rate = s.codec_context.sample_rate
                codec = self.recode[s.index]
                if codec == "libopus" and rate not in (8000, 12000, 16000, 24000, 48000):
                    rate = 48000
                self.maps[s.index] = out.add_stream(codec, rate=rate, layout=s.codec_context.layout.name)
            else:
                self.maps[s.index] = out.add_stream_from_template(s)

    def mux(self, out: Any, pk: Any) -> None:
        """One source packet into ``out``: as it is, or decoded and encoded again."""
        src = pk.stream
        if src.index in self.recode:
            o = self.maps[src.index]
            for frame in src.decode(pk):
                out.mux(o.encode(frame))
        else:
            pk.stream = self.maps[src.index]
            out.mux(pk)

    def flush(self, out: Any) -> None:
        for index in self.recode:
            out.mux(self.maps[index].encode(None))


# --- options --------------------------------------------------------------------------------
@dataclass
class VideoOptions:
    """Encoder and job options (``--codec``, ``--crf``, ``--preset``, ``--pix-fmt``, ``--batch``, ``--resume``, ``--ext``)."""

    codec: str | None = None  # None: libx264, libvpx-vp9 in .webm (see :func:`encoder_for`)
    crf: int | None = None
    preset: str | None = None
    pix_fmt: str | None = None
    batch: int = 1
    resume: bool = False
    ext: str | None = None
    segment_frames: int = 1000  # --resume: one process writes a video in segments of this many frames


_OPTIONS: ContextVar[VideoOptions | None] = ContextVar("i2i_video_options", default=None)


def add_video_args(p: argparse.ArgumentParser) -> None:
    """The video and big-job flags, added to every front-end that reads files (:func:`i2i.apps.common.add_file_args`)."""
    g = p.add_argument_group("video inputs (.mp4 .mkv .webm .mov .avi) and big jobs")
    g.add_argument("--codec", default=None,
                   help="video encoder (default libx264; libvpx-vp9 in .webm; e.g. libx265, libsvtav1, ffv1)")
    g.add_argument("--crf", type=int, default=None, help="encoder quality (lower = better; libx264 default 23)")
    g.add_argument("--preset", default=None, help="encoder preset (libx264: ultrafast … veryslow)")
    g.add_argument("--pix-fmt", default=None,
                   help="output pixel format (default: yuv420p; ffv1: bgr0, lossless RGB)")
    g.add_argument("--batch", type=int, default=1, help="video frames per network call (default 1)")
    g.add_argument("--resume", action="store_true",
                   help="skip inputs whose output already exists (complete files only); a video goes on from its last "
                        "complete segment")
    g.add_argument("--segment-frames", type=int, default=1000,
                   help="with --resume in one process: frames per video segment (default 1000)")


def job_options(args: argparse.Namespace) -> contextlib.AbstractContextManager:
    """Make ``args``' video flags the options of the file loops run inside the ``with`` block."""
    opts = VideoOptions(codec=getattr(args, "codec", None), crf=getattr(args, "crf", None),
                        preset=getattr(args, "preset", None), pix_fmt=getattr(args, "pix_fmt", None),
                        batch=getattr(args, "batch", 1), resume=getattr(args, "resume", False),
                        ext=getattr(args, "ext", None), segment_frames=getattr(args, "segment_frames", 1000))

    @contextlib.contextmanager
    def scope() -> Iterator[VideoOptions]:
        token = _OPTIONS.set(opts)
        try:
            yield opts
        finally:
            _OPTIONS.reset(token)

    return scope()


def current_options() -> VideoOptions:
    return _OPTIONS.get() or VideoOptions()


def encoder_for(opts: VideoOptions, muxer: str) -> str:
    """``--codec``, or the default: libvpx-vp9 for WebM (which holds VP8/VP9/AV1 only), else libx264."""
    return opts.codec or ("libvpx-vp9" if muxer == "webm" else "libx264")


def _check_options(o: VideoOptions) -> None:
    import av

    if o.batch < 1:
        raise ConfigError(f"must be >= 1, got {o.batch}", "--batch")
    if o.segment_frames < 1:
        raise ConfigError(f"must be >= 1, got {o.segment_frames}", "--segment-frames")
    if o.codec is None:
        return
    try:
        codec = av.codec.Codec(o.codec, "w")
    except Exception:  # noqa: BLE001  (PyAV raises its own UnknownCodecError)
        raise ConfigError(f"no video encoder {o.codec!r} in this FFmpeg (try libx264, libvpx-vp9, ffv1)", "--codec") from None
    if codec.type != "video":
        raise ConfigError(f"{o.codec!r} is not a video encoder", "--codec")
    if o.pix_fmt is not None and o.pix_fmt not in {f.name for f in codec.video_formats or []}:
        raise ConfigError(f"{o.codec} does not encode {o.pix_fmt!r}; it takes "
                          f"{', '.join(f.name for f in (codec.video_formats or [])[:12])}", "--pix-fmt")
    if o.crf is not None and not 0 <= o.crf <= 63:
        raise ConfigError(f"must be in 0..63, got {o.crf}", "--crf")


# --- which inputs are videos ----------------------------------------------------------------
def _looks_like_image(p: Path) -> bool:
    from PIL import Image

    try:
        with Image.open(p):
            return True
    except Exception:  # noqa: BLE001  (not an image Pillow knows: leave it to the video reader)
        return False


def is_video_file(p: Path) -> bool:
    """A file with a video suffix that is not really an image (a PNG named ``.mp4`` goes the image way)."""
    return p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file() and not _looks_like_image(p)


def split_inputs(inputs: list[str]) -> tuple[list[Path], list[str]]:
    """(video files named on the command line, the other INPUT arguments)."""
    videos, rest = [], []
    for item in inputs:
        p = Path(item).expanduser()
        (videos.append(p) if is_video_file(p) else rest.append(item))
    return videos, rest


# --- frames ---------------------------------------------------------------------------------
def frame_to_rgb(frame: Any) -> np.ndarray:
    """A decoded PyAV frame -> (H, W, 3) uint8 RGB, by the frame's own matrix and range (BT.601 limited if untagged)."""
    kw: dict[str, Any] = {"format": "rgb24"}
    if frame.colorspace not in (0, 2):  # RGB / unspecified: swscale's default
        kw["src_colorspace"] = frame.colorspace
    if frame.color_range:
        kw["src_color_range"] = frame.color_range
    return frame.reformat(**kw).to_ndarray()


def _frame_function(loop: Any, batch: int) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
    """frames (H, W, 3) uint8 -> output frames (H', W', 3) uint8, through ``loop``'s own per-image function."""
    from ..pipelines.super_resolution import SuperResolutionPipeline

    pipe = loop.process
    if batch > 1 and isinstance(pipe, SuperResolutionPipeline):
        return lambda frames: _sr_batch(pipe, frames)
    scratch = tempfile.mkdtemp(prefix="i2i_frames_")
    atexit.register(shutil.rmtree, scratch, True)

    def one(frame: np.ndarray) -> np.ndarray:
        out = pipe(frame)
        if isinstance(out, np.ndarray) and out.dtype == np.uint8 and out.ndim in (2, 3):
            if out.ndim == 2:
                out = out[..., None]
            if out.shape[2] == 1:
                return np.repeat(out, 3, axis=2)
            if out.shape[2] == 3:
                return out
        # the front-end's own writer makes the image (a palette mask, an overlay); read it back as RGB
        from ..data.io import read_image

        dst = Path(scratch) / "frame.png"
        loop.write(Path("frame"), dst, out)
        return read_image(dst, "RGB")

    return lambda frames: [one(f) for f in frames]


def _sr_batch(pipe: Any, frames: list[np.ndarray]) -> list[np.ndarray]:
    """N RGB uint8 frames of one size through the SR tiling at once; each equals ``pipe(frame)``."""
    import torch

    from ..pipelines.super_resolution import sr_tiles

    h, w, _ = frames[0].shape
    lr = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float().div_(255.0)
    sr = sr_tiles(pipe.generator, lr, pipe.scale, pipe.tile or max(h, w), pipe.overlap, out_dtype=torch.uint8,
                  batch=pipe.tile_batch, plan=getattr(pipe, "plan", None))
    out = [np.ascontiguousarray(x.permute(1, 2, 0).numpy()) for x in sr]
    if pipe.outscale is not None and pipe.outscale != pipe.scale:
        out = [pipe.to_outscale(o, h, w) for o in out]  # the pipeline's resize (the field's files: RealESRGANer's)
    return out


# --- one video ------------------------------------------------------------------------------
_END = object()
PER_FILE_ERRORS_VIDEO = (I2IError, OSError, ValueError, RuntimeError)


class _Failed:
    def __init__(self, e: BaseException):
        self.error = e


class _Aborted(Exception):
    """Another thread of the same video failed: stop quietly (that thread's error is reported)."""


def _put(q: queue.Queue, item: Any, stop: threading.Event) -> None:
    while True:
        if stop.is_set():
            raise _Aborted
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def _get(q: queue.Queue, stop: threading.Event) -> Any:
    while True:
        try:
            item = q.get(timeout=0.1)
        except queue.Empty:
            if stop.is_set():
                raise _Aborted from None
            continue
        if isinstance(item, _Failed):
            raise item.error
        return item


def _open_input(src: Path) -> Any:
    import av

    try:
        c = av.open(str(src))
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise DataError(f"{src}: not a readable video ({one_reason(e)})") from None
    if not c.streams.video:
        c.close()
        raise DataError(f"{src}: no video stream")
    v = c.streams.video[0]
    w, h = v.codec_context.width, v.codec_context.height
    if not (1 <= w <= MAX_SIDE and 1 <= h <= MAX_SIDE):
        c.close()
        raise DataError(f"{src}: frame size {w}x{h} outside 1..{MAX_SIDE}")
    return c


def one_reason(e: BaseException) -> str:
    s = str(e).strip().splitlines()
    return s[0] if s else type(e).__name__


def _declared_end(stream: Any) -> int | None:
    """The video stream's declared end in its time base (MP4: its duration; Matroska/WebM: the DURATION tag)."""
    tb = stream.time_base
    if stream.duration:
        return int(stream.duration) + int(stream.start_time or 0)
    tag = (stream.metadata or {}).get("DURATION")
    if tag and tb:
        try:
            h, m, sec = tag.split(":")
            t = Fraction(int(h) * 3600 + int(m) * 60) + Fraction(sec)
        except ValueError:
            return None
        return int(t / tb)
    return None


@dataclass
class VideoResult:
    frames: int
    seconds: float
    notes: list[str]


def _pix_fmt(opts: VideoOptions, codec: str, in_fmt: str | None) -> str:
    import av

    if opts.pix_fmt:
        return opts.pix_fmt
    names = {f.name for f in av.codec.Codec(codec, "w").video_formats or []}
    if codec == "ffv1":
        return "bgr0"  # lossless RGB: the network's own values
    if in_fmt in names and in_fmt.startswith("yuv"):
        return in_fmt  # the source's chroma layout (4:2:0, 4:4:4, 10-bit)
    return "yuv420p" if "yuv420p" in names else min(names)


def process_video(src: Path, dst: Path, frames_fn: Callable[[list[np.ndarray]], list[np.ndarray]],
                  opts: VideoOptions, progress: Any = None, frame_range: tuple[int, int] | None = None,
                  pts_range: tuple[int, int | None] | None = None) -> VideoResult:
    """Decode ``src``, map its frames through ``frames_fn`` ``opts.batch`` at a time, encode ``dst``.

    Written as ``.<dst name>.part`` and renamed to ``dst`` when complete; on any failure the
    partial file is removed and a :class:`~i2i.errors.DataError` names the file.
    ``frame_range=(a, b)``: only frames a..b-1 (presentation order), video only, without B-frames
    (a segment of :func:`run_sharded`, joined by :func:`join_segments`). ``pts_range=(pa, pb)``:
    the same frames by their pts (pb None: to the end), reached by seeking to the key frame
    before ``pa`` instead of decoding from the start.
    """
    import av

    muxer = VIDEO_EXTENSIONS.get(dst.suffix.lower())
    if muxer is None:
        raise ConfigError(f"{dst}: not a video container; use one of {', '.join(VIDEO_EXTENSIONS)}", "-o")
    inp = _open_input(src)
    vin = inp.streams.video[0]
    vin.thread_type = "AUTO"
    kept = [s for s in inp.streams if s.type in ("audio", "subtitle")] if frame_range is None else []
    others = _OtherStreams(kept, muxer, dst.suffix)
    carried, notes = others.streams, others.notes
    codec = encoder_for(opts, muxer)
    expected = vin.frames or 0
    tb_in = vin.time_base or Fraction(1, 1000)
    rate = vin.average_rate or vin.guessed_rate or Fraction(25)
    batch = max(1, opts.batch)
    q_in: queue.Queue = queue.Queue(maxsize=2 * batch + 4)
    q_out: queue.Queue = queue.Queue(maxsize=2 * batch + 4)
    stop = threading.Event()
    tmp = dst.with_name(f".{dst.name}.part")
    state: dict[str, Any] = {"decoded": 0, "rotation": 0, "index": -1}
    first, stop_at = frame_range or (0, None)

    def decode() -> None:
        try:
            idx = {s.index for s in carried}
            if pts_range is not None and pts_range[0] > (vin.start_time or 0):
                inp.seek(pts_range[0], stream=vin, backward=True)  # the key frame at or before it
            done = False
            for packet in inp.demux([vin, *carried]):
                if packet.stream.index == vin.index:
                    for frame in vin.decode(packet):
                        state["index"] += 1
                        if pts_range is not None:
                            if frame.pts is None or frame.pts < pts_range[0]:
                                continue
                            if pts_range[1] is not None and frame.pts >= pts_range[1]:
                                done = True
                                break
                        elif state["index"] < first:
                            continue
                        elif stop_at is not None and state["index"] >= stop_at:
                            done = True
                            break
                        if state["decoded"] == 0:
                            state["rotation"] = int(getattr(frame, "rotation", 0) or 0)
                            state["colour"] = (frame.color_range, frame.colorspace, frame.color_primaries,
                                               frame.color_trc)
                        state["decoded"] += 1
                        pts = frame.pts
                        if pts is not None:
                            if state.get("last") is not None:
                                state["gap"] = max(state.get("gap", 0), pts - state["last"])
                            state["last"] = pts
                        _put(q_in, ("v", frame_to_rgb(frame), pts), stop)
                elif packet.stream.index in idx and packet.size and packet.dts is not None:
                    _put(q_in, ("p", packet), stop)
                if done:
                    break
            _put(q_in, _END, stop)
        except _Aborted:
            pass
        except BaseException as e:  # noqa: BLE001  (handed to the main thread)
            err = DataError(f"{src}: decoding failed ({one_reason(e)})") if isinstance(e, av.error.FFmpegError) else e
            with contextlib.suppress(_Aborted):
                _put(q_in, _Failed(err), stop)

    enc: dict[str, Any] = {"written": 0}

    def open_output(first: np.ndarray) -> tuple[Any, Any, dict[str, Any]]:
        h, w = first.shape[:2]
        pix = _pix_fmt(opts, codec, vin.codec_context.pix_fmt)
        if ("420" in pix or "nv12" in pix) and (h % 2 or w % 2):
            raise ConfigError(f"output frames are {w}x{h}; {pix} needs even sides: use --pix-fmt yuv444p or an even "
                              "--outscale", "--pix-fmt")
        out = av.open(str(tmp), "w", format=muxer)
        enc["out"] = out
        vout = out.add_stream(codec, rate=rate)
        vout.width, vout.height, vout.pix_fmt = w, h, pix
        vout.time_base = tb_in
        cc = vout.codec_context
        cc.time_base = tb_in
        crange, cspace, prim, trc = state.get("colour", (0, 2, 2, 2))
        rgb_out = pix.startswith(("gbr", "bgr", "rgb"))
        if rgb_out:  # RGB samples: no YUV matrix or range to tag
            crange, cspace = 0, 2
        if crange:
            cc.color_range = crange
        for attr, value in (("colorspace", cspace), ("color_primaries", prim), ("color_trc", trc)):
            if value not in (0, 2):
                setattr(cc, attr, value)
        options = {}
        if opts.crf is not None:
            options["crf"] = str(opts.crf)
            if codec == "libvpx-vp9":
                options["b"] = "0"  # constant quality
        if opts.preset is not None:
            options["preset"] = opts.preset
        if frame_range is not None and codec in ("libx264", "libx265"):
            options["bf"] = "0"  # segments joined by their packets need dts == pts at every boundary
        cc.options = options
        if state["rotation"]:
            vout.set_display_rotation(state["rotation"])
        others.open(out)
        conv: dict[str, Any] = {"format": pix}
        if cspace not in (0, 2):
            conv["dst_colorspace"] = cspace
        if crange:
            conv["dst_color_range"] = crange
        return out, vout, {"conv": conv}

    def encode() -> None:
        out = vout = extra = None
        held: list[Any] = []  # packets before the first frame: the output opens with its size
        last_pts = None
        try:
            while True:
                item = _get(q_out, stop)
                if item is _END:
                    break
                if item[0] == "p":
                    if out is None:
                        held.append(item[1])
                    else:
                        others.mux(out, item[1])
                    continue
                _, arr, pts = item
                if out is None:
                    out, vout, extra = open_output(arr)
                    for pk in held:
                        others.mux(out, pk)
                    held.clear()
                if arr.shape[:2] != (vout.height, vout.width):
                    raise DataError(f"{src}: frame size changed mid-stream ({arr.shape[1]}x{arr.shape[0]})")
                f = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24").reformat(**extra["conv"])
                if pts is None:  # an untimed frame (some AVI): one nominal frame after the last
                    pts = 0 if last_pts is None else last_pts + max(1, round(1 / (rate * tb_in)))
                f.pts, f.time_base = pts, tb_in
                last_pts = pts
                out.mux(vout.encode(f))
                enc["written"] += 1
            if out is not None:
                out.mux(vout.encode(None))
                others.flush(out)
                out.close()
                enc.pop("out", None)
                enc["closed"] = True
        except _Aborted:
            pass
        except BaseException as e:  # noqa: BLE001  (raised again by the calling thread)
            enc["error"] = e
            stop.set()

    t0 = time.perf_counter()
    dec = threading.Thread(target=decode, name="i2i-decode", daemon=True)
    wr = threading.Thread(target=encode, name="i2i-encode", daemon=True)
    dec.start()
    wr.start()
    try:
        try:
            done = False
            while not done:
                frames, items = [], []
                while len(frames) < batch:
                    item = _get(q_in, stop)
                    if item is _END:
                        done = True
                        break
                    items.append(item)
                    if item[0] == "v":
                        frames.append(item[1])
                results = iter(frames_fn(frames) if frames else [])
                for item in items:
                    _put(q_out, ("v", next(results), item[2]) if item[0] == "v" else item, stop)
                if progress is not None and frames:
                    progress.update(len(frames))
            _put(q_out, _END, stop)
            wr.join()
        except _Aborted:
            pass
        finally:
            stop.set() if not enc.get("closed") else None
            dec.join(timeout=30)
            wr.join(timeout=30)
        if "error" in enc:
            e = enc["error"]
            if isinstance(e, av.error.FFmpegError):
                raise DataError(f"{dst}: encoding failed ({one_reason(e)})") from None
            raise e
        if not enc.get("closed") and state["decoded"]:
            raise DataError(f"{dst}: the encoder stopped before the end")
        if state["decoded"] == 0:
            raise DataError(f"{src}: the video has no frames")
        if stop_at is not None:
            if state["decoded"] < stop_at - first:
                raise DataError(f"{src}: truncated: frames {first}..{stop_at - 1} expected, "
                                f"{state['decoded']} decoded")
            expected = 0
        if expected and state["decoded"] < expected:
            raise DataError(f"{src}: truncated: decoded {state['decoded']} of its {expected} frames")
        end = _declared_end(vin) if frame_range is None else None
        if end is not None and state.get("last") is not None:
            gap = state.get("gap") or round(1 / (rate * tb_in))
            if (end - state["last"]) > 1.5 * gap + 1:  # the stream's own duration says more frames follow
                raise DataError(f"{src}: truncated: the frames stop at {float(state['last'] * tb_in):.3f} s of its "
                                f"{float(end * tb_in):.3f} s")
        os.replace(tmp, dst)
    except BaseException:
        stop.set()
        out = enc.get("out")
        if out is not None:
            with contextlib.suppress(Exception):
                out.close()
        tmp.unlink(missing_ok=True)
        raise
    finally:
        inp.close()
    return VideoResult(enc["written"], time.perf_counter() - t0, notes)


# --- the loop over video inputs -------------------------------------------------------------
def video_outputs(videos: list[Path], output: str | None, single: bool, default_folder: str, suffix: str,
                  ext: str | None) -> list[Path]:
    """``-o`` a video file name for one video, else a folder receiving ``<stem><suffix><ext>``
    (``--ext`` a video container, or the input's own)."""
    from .common import refuse_overwriting_inputs

    if output is not None and Path(output).suffix.lower() in VIDEO_EXTENSIONS and not Path(output).is_dir():
        if not single:
            raise ConfigError("several inputs need an output folder, not a file name", "-o")
        return refuse_overwriting_inputs(videos, [Path(output).expanduser()])
    folder = Path(output).expanduser() if output else Path(default_folder)
    e = f".{ext.lower().lstrip('.')}" if ext else None
    if e is not None and e not in VIDEO_EXTENSIONS:
        e = None  # an image format (--ext png): videos keep their container
    used: dict[str, int] = {}
    outs = []
    for v in videos:
        n = used.get(v.stem, 0)
        used[v.stem] = n + 1
        outs.append(folder / f"{v.stem}{'' if n == 0 else f'_{n}'}{suffix}{e or v.suffix.lower()}")
    return refuse_overwriting_inputs(videos, outs)


def run_videos(loop: Any, videos: list[Path], output: str | None, single: bool, default_folder: str,
               suffix: str) -> int:
    """Every video through ``loop``'s per-image function (:meth:`i2i.apps.common.FileLoop.run`
    calls it); one ``error:`` line per failed video; returns 0, or 1 if any failed.

    Under a launcher with several processes each video is cut at exact frame indices
    (:func:`run_sharded`); every process returns the same code.
    """
    from .common import PER_FILE_ERRORS, one_line_error
    from .jobs import Job

    opts = current_options()
    _check_options(opts)
    job = Job.current()
    outputs = video_outputs(videos, output, single, default_folder, suffix, opts.ext)
    frames_fn = _frame_function(loop, opts.batch)
    failed = written = frames = 0
    for src, dst in zip(videos, outputs):
        if opts.resume and dst.is_file():
            if job.main:
                print(f"{src} -> {dst} (complete: skipped)")
            continue
        bar = None
        try:
            from tqdm import tqdm

            dst.parent.mkdir(parents=True, exist_ok=True)
            total = _frame_count(src) or (count_frames(src) if job.size > 1 or opts.resume else 0)
            if job.main:
                bar = tqdm(total=total or None, desc=f"{src.name}", unit="frame", file=sys.stderr, dynamic_ncols=True,
                           disable=None)
            if job.size > 1:
                r = run_sharded(src, dst, frames_fn, opts, job, job.progress(bar))
                if bar is not None:
                    bar.n = r.frames
                    bar.refresh()
            elif opts.resume:
                r = run_segmented(src, dst, frames_fn, opts, bar)
            else:
                r = process_video(src, dst, frames_fn, opts, bar)
        except PER_FILE_ERRORS as e:
            if bar is not None:
                bar.close()
            failed += 1
            if job.main:
                print(f"error: {one_line_error(src, e)}", file=sys.stderr)
            continue
        if bar is not None:
            bar.close()
        written += 1
        frames += r.frames
        if job.main:
            for note in r.notes:
                print(f"warning: {src}: {note}", file=sys.stderr)
            print(f"{src} -> {dst} ({r.frames} frames, {r.frames / max(r.seconds, 1e-9):.1f} fps)")
    if written and len(videos) > 1 and job.main:
        print(f"wrote {written} video(s), {frames} frames, to {outputs[0].parent}" + (f"; {failed} failed" if failed else ""))
    return 1 if failed else 0


# --- one video over several processes -------------------------------------------------------
def frame_times(src: Path) -> tuple[int, list[int] | None]:
    """(the exact number of video frames, their pts sorted: presentation order), from one demux
    pass over the video packets (no decoding); pts None where some packet has none or two
    share one (then ranges are found by decoding from the start)."""
    import av

    inp = _open_input(src)
    try:
        v = inp.streams.video[0]
        declared = v.frames  # read while open: PyAV ≥ 18.1.1 refuses stream attributes of a closed container
        pts = [pk.pts for pk in inp.demux(v) if pk.size]
    except av.error.FFmpegError as e:
        raise DataError(f"{src}: not a readable video ({one_reason(e)})") from None
    finally:
        inp.close()
    if declared and len(pts) < declared:
        raise DataError(f"{src}: truncated: {len(pts)} of its {declared} frames present")
    if not pts:
        raise DataError(f"{src}: the video has no frames")
    if any(p is None for p in pts) or len(set(pts)) != len(pts):
        return len(pts), None
    return len(pts), sorted(pts)


def count_frames(src: Path) -> int:
    """The exact number of video frames (:func:`frame_times`)."""
    return frame_times(src)[0]


def _ranges(a: int, b: int, times: list[int] | None) -> dict[str, Any]:
    """``process_video``'s arguments for frames a..b-1."""
    if times is None:
        return {"frame_range": (a, b)}
    return {"frame_range": (a, b), "pts_range": (times[a], times[b] if b < len(times) else None)}


def run_segmented(src: Path, dst: Path, frames_fn: Callable[[list[np.ndarray]], list[np.ndarray]], opts: VideoOptions,
                  progress: Any = None) -> VideoResult:
    """One process, ``--resume``: the video in segments of ``opts.segment_frames`` frames, each
    renamed when complete, then joined; a run started again keeps the complete segments."""
    t0 = time.perf_counter()
    total, times = frame_times(src)
    size = max(1, opts.segment_frames)
    ranges = [(a, min(a + size, total)) for a in range(0, total, size)]
    segments = segment_names(dst, len(ranges))
    kept = [seg.is_file() for seg in segments]
    notes = [f"resumed: {sum(kept)} of {len(ranges)} segment(s) complete"] if any(kept) else []
    for (a, b), seg, ok in zip(ranges, segments, kept):
        if ok:
            if progress is not None:
                progress.update(b - a)
            continue
        process_video(src, seg, frames_fn, opts, progress, **_ranges(a, b, times))
    notes += join_segments(src, segments, dst)
    for seg in segments:
        seg.unlink(missing_ok=True)
    return VideoResult(total, time.perf_counter() - t0, notes)


def segment_names(dst: Path, n: int) -> list[Path]:
    """Where process k of n writes its part of ``dst`` (beside it, hidden, the same container)."""
    return [dst.with_name(f".{dst.stem}.seg{k}of{n}{dst.suffix}") for k in range(n)]


def run_sharded(src: Path, dst: Path, frames_fn: Callable[[list[np.ndarray]], list[np.ndarray]], opts: VideoOptions,
                job: Any, progress: Any = None) -> VideoResult:
    """This process's frames (a contiguous range of ``split_between_processes``) into its segment;
    then the main process joins the segments and the source's audio into ``dst``.

    Every process must call it (it synchronises); a failure in any process fails the video on
    all of them, and the segments are removed. ``--resume``: a complete segment is kept.
    """
    t0 = time.perf_counter()
    total, times = frame_times(src)
    share = job.share(list(range(total)))
    segments = segment_names(dst, job.size)
    mine = segments[job.rank]
    error, r = None, VideoResult(0, 0.0, [])
    try:
        if share and not (opts.resume and mine.is_file()):
            r = process_video(src, mine, frames_fn, opts, progress, **_ranges(share[0], share[-1] + 1, times))
        elif share and progress is not None:
            progress.update(len(share))
    except PER_FILE_ERRORS_VIDEO as e:
        error = e
    errors = job.gather([None if error is None else f"{type(error).__name__}: {one_reason(error)}"])
    done = sum(job.gather([r.frames]))
    result = VideoResult(total if not any(errors) else done, 0.0, [])
    if job.main and not any(errors):
        try:
            result.notes = join_segments(src, [seg for seg in segments if seg.is_file()], dst)
        except BaseException as e:  # noqa: BLE001  (told to every process below)
            error = e
    told = job.gather([None if error is None or not job.main else one_reason(error)])
    job.state.wait_for_everyone()
    failure = next((e for e in errors + told if e), None)
    if failure is None or not opts.resume:
        for seg in segments if job.main else []:
            seg.unlink(missing_ok=True)
    if failure is not None:
        if error is not None:
            raise error
        raise DataError(f"{src}: another process failed: {failure}")
    result.seconds = time.perf_counter() - t0
    return result


def join_segments(src: Path, segments: list[Path], dst: Path) -> list[str]:
    """The segments' video packets one after another, and ``src``'s audio/subtitle packets,
    interleaved by time into ``dst`` (no re-encoding; every timestamp as it is).
    Returns the notes about streams the container could not carry."""
    import heapq

    import av

    muxer = VIDEO_EXTENSIONS[dst.suffix.lower()]
    tmp = dst.with_name(f".{dst.name}.part")
    inp = _open_input(src)
    segs = [av.open(str(seg)) for seg in segments]
    try:
        others_ = _OtherStreams([s for s in inp.streams if s.type in ("audio", "subtitle")], muxer, dst.suffix)
        carried, notes = others_.streams, others_.notes
        with av.open(str(tmp), "w", format=muxer) as out:
            v0 = segs[0].streams.video[0]
            vout = out.add_stream_from_template(v0)
            vout.time_base = v0.time_base
            others_.open(out)

            def video() -> Iterator[tuple[Fraction, int, Any]]:
                for seg in segs:
                    for pk in seg.demux(seg.streams.video[0]):
                        if pk.size:
                            yield pk.dts * pk.time_base, 0, pk

            def others() -> Iterator[tuple[Fraction, int, Any]]:
                for pk in inp.demux(carried) if carried else []:
                    if pk.size and pk.dts is not None:
                        yield pk.dts * pk.time_base, 1, pk

            for _, kind, pk in heapq.merge(video(), others(), key=lambda t: (t[0], t[1])):
                if kind == 0:
                    pk.stream = vout
                    out.mux(pk)
                else:
                    others_.mux(out, pk)
            others_.flush(out)
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        for seg in segs:
            seg.close()
        inp.close()
    return notes


def _frame_count(src: Path) -> int:
    import av

    try:
        with av.open(str(src)) as c:
            return int(c.streams.video[0].frames or 0) if c.streams.video else 0
    except Exception:  # noqa: BLE001  (process_video reports what is wrong)
        return 0
