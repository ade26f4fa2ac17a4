"""i2i.apps.video: video files through ``i2i-infer`` (tools/infer.py), frame by frame.

The clips are made here with PyAV: 32×32 random frames, a 440 Hz sine track, H.264/AAC in
MP4 and VP9/Opus in WebM, one with a 90° display rotation, one with a variable frame rate.
The model is a tiny ×4 SRResNet export (milliseconds per frame). Each output is decoded
and checked against the input (frame count, size × 4, every pts, the audio packets byte
for byte) and against the image path run on the same decoded frames saved as PNGs.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from conftest import write_tiny_sr_export
from PIL import Image

from i2i.apps.video import frame_to_rgb
from i2i.cli import run
from i2i.commands import infer_main

av = pytest.importorskip("av")

ROOT = Path(__file__).resolve().parent.parent
SCALE = 4
VFR_STEPS = [40, 130, 70, 100, 250, 60]  # ms between frames


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_sr_export(tmp_path_factory.mktemp("export") / "export", scale=SCALE)


def make_clip(path: Path, n: int = 5, size: int = 32, vfr: bool = False, rotation: int | None = None,
              audio: bool = True, codec: str | None = None, gop: int | None = None,
              colour: tuple[int, int] | None = None) -> Path:
    """A clip of ``n`` random frames (pts in ms: 100 apart, or :data:`VFR_STEPS`) and a sine track."""
    webm = path.suffix == ".webm"
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as c:
        v = c.add_stream(codec or ("libvpx-vp9" if webm else "libx264"), rate=10)
        v.width = v.height = size
        v.pix_fmt = "yuv420p"
        v.codec_context.time_base = Fraction(1, 1000)
        if rotation is not None:
            v.set_display_rotation(rotation)
        if gop is not None:  # a key frame every `gop` frames: segments start by seeking
            v.codec_context.gop_size = gop
        conv: dict = {}
        if colour is not None:  # (range, matrix): tags, and the RGB -> YUV conversion that matches them
            cc = v.codec_context
            cc.color_range, cc.colorspace, cc.color_primaries, cc.color_trc = colour[0], colour[1], 1, 1
            conv = {"format": "yuv420p", "dst_color_range": colour[0], "dst_colorspace": colour[1]}
        a = c.add_stream("libopus" if webm else "aac", rate=48000) if audio else None
        t = 0
        for i in range(n):
            f = av.VideoFrame.from_ndarray((rng.random((size, size, 3)) * 255).astype(np.uint8), "rgb24")
            if conv:
                f = f.reformat(**conv)
            f.pts, f.time_base = t, Fraction(1, 1000)
            t += VFR_STEPS[i % len(VFR_STEPS)] if vfr else 100
            c.mux(v.encode(f))
        c.mux(v.encode(None))
        if a is not None:
            sr = 48000
            s = (0.3 * np.sin(2 * np.pi * 440 * np.arange(sr * t // 1000) / sr)).astype(np.float32)
            fs = a.codec_context.frame_size or 960
            for k in range(0, len(s), fs):
                fr = av.AudioFrame.from_ndarray(s[None, k:k + fs], format="flt", layout="mono")
                fr.sample_rate, fr.pts = sr, k
                c.mux(a.encode(fr))
            c.mux(a.encode(None))
    return path


def decode(path: Path) -> tuple[list[np.ndarray], list[int], Fraction, int]:
    """(RGB frames, pts, video time base, rotation of the first frame)."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = list(c.decode(s))
        return [frame_to_rgb(f) for f in frames], [f.pts for f in frames], s.time_base, frames[0].rotation


def audio_packets(path: Path) -> list[tuple[int, bytes]]:
    with av.open(str(path)) as c:
        return [(p.pts, bytes(p)) for p in c.demux(c.streams.audio[0]) if p.size]


def image_path_frames(export: Path, frames: list[np.ndarray], tmp: Path) -> list[np.ndarray]:
    """The same frames through the image path (PNG in, PNG out)."""
    src, dst = tmp / "frames", tmp / "frames_out"
    src.mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f).save(src / f"{i:04d}.png")
    assert run(infer_main, ["--task", "sr", "--checkpoint", str(export), "--device", "cpu", str(src), "-o", str(dst)]) == 0
    return [np.asarray(Image.open(dst / f"{i:04d}_x{SCALE}.png").convert("RGB")) for i in range(len(frames))]


def infer(export: Path, *argv: str) -> int:
    return run(infer_main, ["--task", "sr", "--checkpoint", str(export), "--device", "cpu", *argv])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def test_h264_mp4_keeps_timestamps_audio_and_matches_the_image_path(export: Path, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4")
    out = tmp_path / "clip_x4.mp4"
    assert infer(export, str(clip), "-o", str(out), "--crf", "8", "--pix-fmt", "yuv444p") == 0
    frames, pts, tb, _ = decode(clip)
    got, got_pts, got_tb, _ = decode(out)
    assert len(got) == len(frames) == 5
    assert all(g.shape == (32 * SCALE, 32 * SCALE, 3) for g in got)
    assert [p * got_tb for p in got_pts] == [p * tb for p in pts]  # every frame's time
    a_in, a_out = audio_packets(clip), audio_packets(out)
    assert len(a_in) > 5 and a_out == a_in  # copied, not re-encoded
    ref = image_path_frames(export, frames, tmp_path)
    scores = [psnr(g, r) for g, r in zip(got, ref)]
    assert min(scores) > 30, scores  # H.264 at CRF 8, 4:4:4: only the codec's loss
    assert not list(tmp_path.glob(".*.part"))


def test_ffv1_is_bit_exact_with_the_image_path_in_batches_vfr(export: Path, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "vfr.webm", n=6, vfr=True)
    out = tmp_path / "vfr_x4.mkv"
    assert infer(export, str(clip), "-o", str(out), "--codec", "ffv1", "--batch", "4") == 0
    frames, pts, tb, _ = decode(clip)
    got, got_pts, got_tb, _ = decode(out)
    assert len(got) == 6
    assert np.diff([p * tb for p in pts]).tolist() == [Fraction(s, 1000) for s in VFR_STEPS[:5]]  # really VFR
    assert [p * got_tb for p in got_pts] == [p * tb for p in pts]
    ref = image_path_frames(export, frames, tmp_path)
    for i, (g, r) in enumerate(zip(got, ref)):
        assert np.array_equal(g, r), i
    assert audio_packets(out) == audio_packets(clip)


def test_vp9_webm_vfr_and_rotation_kept(export: Path, tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "vfr.webm", n=6, vfr=True)
    out = tmp_path / "o" / "vfr_x4.webm"
    assert infer(export, str(clip), "-o", str(out), "--codec", "libvpx-vp9", "--crf", "20") == 0
    _, pts, tb, _ = decode(clip)
    got, got_pts, got_tb, _ = decode(out)
    assert [p * got_tb for p in got_pts] == [p * tb for p in pts] and len(got) == 6
    assert audio_packets(out) == audio_packets(clip)
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.name == "vp9"

    rot = make_clip(tmp_path / "rot.mp4", rotation=90, audio=False)
    assert decode(rot)[3] == 90
    out = tmp_path / "rot_x4.mp4"
    assert infer(export, str(rot), "-o", str(out)) == 0
    got, _, _, rotation = decode(out)
    assert rotation == 90 and got[0].shape == (128, 128, 3)


def test_folder_naming_and_resume(export: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a, b = make_clip(tmp_path / "a.mp4", n=2, audio=False), make_clip(tmp_path / "b.webm", n=2, audio=False)
    out = tmp_path / "out"
    assert infer(export, str(a), str(b), "-o", str(out)) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a_x4.mp4", "b_x4.webm"]
    stamp = (out / "a_x4.mp4").stat().st_mtime_ns
    capsys.readouterr()
    assert infer(export, str(a), str(b), "-o", str(out), "--resume", "--ext", "mp4") == 0
    assert "skipped" in capsys.readouterr().out and (out / "a_x4.mp4").stat().st_mtime_ns == stamp
    assert (out / "b_x4.mp4").is_file()  # --ext mp4 picks the container: a new output


def _audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as c:
        a = c.add_stream("aac", rate=48000)
        fr = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="flt", layout="mono")
        fr.sample_rate, fr.pts = 48000, 0
        c.mux(a.encode(fr))
        c.mux(a.encode(None))
    return path


def _no_frames(path: Path) -> Path:
    with av.open(str(path), "w") as c:
        v = c.add_stream("libvpx-vp9", rate=10)
        v.width = v.height = 32
        v.pix_fmt = "yuv420p"
        a = c.add_stream("libopus", rate=48000)
        fr = av.AudioFrame.from_ndarray(np.zeros((1, 960), np.float32), format="flt", layout="mono")
        fr.sample_rate, fr.pts = 48000, 0
        c.mux(a.encode(fr))
        c.mux(a.encode(None))
    return path


def test_bad_inputs_one_line_and_nothing_left(export: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    good = make_clip(tmp_path / "good.webm", n=8)
    data = good.read_bytes()
    (tmp_path / "truncated.webm").write_bytes(data[: len(data) * 2 // 3])
    (tmp_path / "cut.mp4").write_bytes(make_clip(tmp_path / "full.mp4").read_bytes()[:3000])
    _audio_only(tmp_path / "sound.mp4")
    _no_frames(tmp_path / "empty.webm")
    (tmp_path / "noise.mkv").write_bytes(np.random.default_rng(0).bytes(2000))
    out = tmp_path / "out"
    bad = ["truncated.webm", "cut.mp4", "sound.mp4", "empty.webm", "noise.mkv"]
    capsys.readouterr()
    assert infer(export, *[str(tmp_path / b) for b in bad], "-o", str(out)) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == len(bad), err
    for b, line in zip(bad, err):
        assert b in line, (b, line)
    assert "no video stream" in err[2] and "no frames" in err[3] and "truncated" in err[0]
    assert not out.exists() or not list(out.iterdir())  # no output, no .part left

    # -o naming the input: refused before anything runs (exit 2)
    assert infer(export, str(good), "-o", str(good)) == 2
    assert "would overwrite the input" in capsys.readouterr().err
    # a bad encoder option: one line, exit 2
    assert infer(export, str(good), "-o", str(tmp_path / "x.mp4"), "--codec", "nope") == 2
    assert "--codec" in capsys.readouterr().err
    # an image named .mp4 goes the image way
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "still.mp4", format="PNG")
    assert infer(export, str(tmp_path / "still.mp4"), "-o", str(tmp_path / "still_x4.png")) == 0
    assert Image.open(tmp_path / "still_x4.png").size == (32, 32)


def test_output_stream_is_bounded_and_writer_fallback(tmp_path: Path) -> None:
    """A front-end whose result is not an RGB array (segmentation's (image, labels)): the frame
    is what its writer saves for an image, read back as RGB."""
    from i2i.apps.common import FileLoop
    from i2i.apps.video import VideoOptions, _frame_function, process_video
    from i2i.data.io import save_image

    palette = np.array([[255, 0, 0], [0, 0, 255]], np.uint8)

    def process(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return img, (img[..., 0] > 127).astype(np.int64)

    def write(src: Path, dst: Path, out: tuple[np.ndarray, np.ndarray]) -> str:
        save_image(dst, out[1].astype(np.uint8), palette=palette.ravel().tolist())
        return f"{src} -> {dst}"

    fn = _frame_function(FileLoop(process, write=write), 1)
    clip = make_clip(tmp_path / "c.mp4", n=3, audio=False)
    out = tmp_path / "mask.mkv"
    r = process_video(clip, out, fn, VideoOptions(codec="ffv1"))
    assert r.frames == 3
    frames, _, _, _ = decode(clip)
    got, _, _, _ = decode(out)
    for f, g in zip(frames, got):
        assert np.array_equal(g, palette[(f[..., 0] > 127).astype(int)])


def test_a_killed_run_leaves_no_finished_file_and_resume_completes(export: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture) -> None:
    clip = make_clip(tmp_path / "long.mp4", n=60, size=16)
    out = tmp_path / "long_x4.mp4"
    first = tmp_path / ".long_x4.seg0of3.mp4"  # --resume: segments of 20 frames, each renamed when complete
    cmd = [sys.executable, str(ROOT / "tools" / "infer.py"), "--task", "sr", "--checkpoint", str(export),
           "--device", "cpu", str(clip), "-o", str(out), "--resume", "--segment-frames", "20"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert first.exists(), "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()  # only hidden segments and .part files, which no one takes for a finished video
    capsys.readouterr()
    assert infer(export, str(clip), "-o", str(out), "--resume", "--segment-frames", "20") == 0
    said = capsys.readouterr().err
    assert "resumed: " in said and "of 3 segment(s) complete" in said and "resumed: 0" not in said
    frames, pts, tb, _ = decode(out)
    _, pts0, tb0, _ = decode(clip)
    assert len(frames) == 60 and [p * tb for p in pts] == [p * tb0 for p in pts0]
    assert audio_packets(out) == audio_packets(clip)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.slow  # two launches of a gloo world (~25 s on 2 cores)
def test_two_processes_cut_a_video_at_exact_frames_and_join_it(export: Path, tmp_path: Path) -> None:
    """``accelerate launch --cpu --num_processes 2``: frames 0-3 and 4-6 in two segments, joined
    without re-encoding; the same frames (lossless H.264 4:4:4), pts and audio as one process."""
    clip = make_clip(tmp_path / "vfr.mp4", n=7, vfr=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    base = [str(ROOT / "tools" / "infer.py"), "--task", "sr", "--checkpoint", str(export), "--device", "cpu", str(clip),
            "--crf", "0", "--pix-fmt", "yuv444p", "--batch", "2"]
    one = subprocess.run([sys.executable, *base, "-o", str(tmp_path / "one.mp4")], capture_output=True, text=True,
                         env=env, timeout=300, check=False)
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "2", "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(29000 + os.getpid() % 500)]
    two = subprocess.run([*launch, *base, "-o", str(tmp_path / "two.mp4")], capture_output=True, text=True, env=env,
                         timeout=300, cwd=tmp_path, check=False)
    assert one.returncode == 0 and two.returncode == 0, (one.stderr + two.stderr)[-2000:]
    assert sum(line.startswith(str(clip)) for line in two.stdout.splitlines()) == 1, two.stdout  # one line
    f1, p1, tb1, _ = decode(tmp_path / "one.mp4")
    f2, p2, tb2, _ = decode(tmp_path / "two.mp4")
    _, p0, tb0, _ = decode(clip)
    assert len(f2) == len(f1) == 7
    assert [p * tb2 for p in p2] == [p * tb0 for p in p0] == [p * tb1 for p in p1]
    for i, (a, b) in enumerate(zip(f1, f2)):
        assert np.array_equal(a, b), i
    assert audio_packets(tmp_path / "two.mp4") == audio_packets(clip)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # segments removed


@pytest.fixture(scope="module")
def seg_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-step segmentor on a tiny mosaic (as tests/test_apps_segmentation.py trains one)."""
    from i2i.config import load_config
    from i2i.engine.trainer import Trainer

    out = tmp_path_factory.mktemp("seg_run") / "run"
    cfg = load_config(ROOT / "tasks" / "segmentation_baseline.yaml", [
        "models.generator.width=4", "models.generator.depth=2", "data.size=24", "data.num_images=4",
        "data.batch_size=2", "train.max_steps=2", "train.ckpt_every=0", "eval.every=0", "eval.at_end=false",
        "logging.tracker=none", "logging.sample_every=0", "logging.progress=false"])
    Trainer(cfg, output_dir=out).fit()
    return out


@pytest.mark.parametrize("flags", [[], ["--overlay", "--no-mask"]], ids=["mask", "overlay"])
def test_segmentation_video_equals_its_image_path(seg_run: Path, tmp_path: Path, flags: list[str]) -> None:
    """``--task seg`` on a video: each frame is the coloured mask (or the overlay) the image path
    writes for that frame, bit for bit (FFV1)."""
    clip = make_clip(tmp_path / "street.webm", n=3, audio=False)
    out = tmp_path / "masks.mkv"
    base = ["--task", "seg", "--checkpoint", str(seg_run), "--device", "cpu", *flags]
    assert run(infer_main, [*base, str(clip), "-o", str(out), "--codec", "ffv1"]) == 0
    frames, _, _, _ = decode(clip)
    got, _, _, _ = decode(out)
    assert len(got) == 3
    for i, f in enumerate(frames):
        Image.fromarray(f).save(tmp_path / f"{i}.png")
        assert run(infer_main, [*base, str(tmp_path / f"{i}.png"), "-o", str(tmp_path / f"{i}_out.png")]) == 0
        ref = np.asarray(Image.open(tmp_path / f"{i}_out.png").convert("RGB"))
        assert np.array_equal(got[i], ref), i


def test_audio_the_container_cannot_carry_is_reencoded_and_said(export: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    clip = make_clip(tmp_path / "aac.mp4", n=5)  # H.264 + AAC -> WebM (VP9 + Opus only)
    out = tmp_path / "aac_x4.webm"
    capsys.readouterr()
    assert infer(export, str(clip), "-o", str(out)) == 0
    assert "re-encoded to libopus" in capsys.readouterr().err
    with av.open(str(out)) as c:
        assert [s.codec_context.name for s in c.streams] == ["vp9", "opus"]
        samples = sum(f.samples for f in c.decode(audio=0))
    assert abs(samples / 48000 - 0.5) < 0.05  # the 0.5 s of sound, resampled, not cut
    assert len(decode(out)[0]) == 5


@pytest.mark.parametrize("name", ["gop.mp4", "gop.webm"])
def test_segments_found_by_seeking_equal_one_pass(tmp_path: Path, name: str) -> None:
    """Segments of 7 frames of a clip with a key frame every 5 (B-frames in the H.264 one, VFR):
    each reached by seeking, joined, they give the frames and pts of one pass, bit for bit (FFV1)."""
    from i2i.apps.common import FileLoop
    from i2i.apps.video import VideoOptions, _frame_function, frame_times, process_video, run_segmented

    clip = make_clip(tmp_path / name, n=23, vfr=True, gop=5)
    total, times = frame_times(clip)
    assert total == 23 and times is not None
    fn = _frame_function(FileLoop(lambda img: 255 - img), 1)
    opts = VideoOptions(codec="ffv1", segment_frames=7)
    process_video(clip, tmp_path / "one.mkv", fn, opts)
    r = run_segmented(clip, tmp_path / "seg.mkv", fn, opts)
    assert r.frames == 23
    a, pa, _, _ = decode(tmp_path / "one.mkv")
    b, pb, _, _ = decode(tmp_path / "seg.mkv")
    src, _, _, _ = decode(clip)
    assert pa == pb and len(b) == 23
    for i, (x, y, z) in enumerate(zip(a, b, src)):
        assert np.array_equal(x, y) and np.array_equal(y, 255 - z), i
    assert audio_packets(tmp_path / "seg.mkv") == audio_packets(tmp_path / "one.mkv")


def test_odd_output_size_asks_for_444_and_outscale_works(export: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    clip = make_clip(tmp_path / "c.mp4", n=2, size=30, audio=False)
    out = tmp_path / "c_x2.5.mp4"
    capsys.readouterr()
    assert infer(export, str(clip), "-o", str(out), "--outscale", "2.5") == 1  # 75x75: no 4:2:0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "75x75" in err[0] and "--pix-fmt yuv444p" in err[0] and not out.exists()
    assert infer(export, str(clip), "-o", str(out), "--outscale", "2.5", "--pix-fmt", "yuv444p") == 0
    got = decode(out)[0]
    assert len(got) == 2 and got[0].shape == (75, 75, 3)


def test_colour_range_and_matrix_kept(export: Path, tmp_path: Path) -> None:
    """A full-range BT.709 source: the output carries the same tags and is converted by them
    (a BT.601 conversion under BT.709 tags would shift every colour)."""
    clip = make_clip(tmp_path / "bt709.mp4", n=3, audio=False, colour=(2, 1))  # JPEG range, BT.709
    with av.open(str(clip)) as c:
        f0 = next(c.decode(video=0))
        assert (f0.color_range, f0.colorspace) == (2, 1)
    out = tmp_path / "bt709_x4.mp4"
    assert infer(export, str(clip), "-o", str(out), "--crf", "0", "--pix-fmt", "yuv444p") == 0
    with av.open(str(out)) as c:
        cc = c.streams.video[0].codec_context
        assert (cc.color_range, cc.colorspace, cc.color_primaries, cc.color_trc) == (2, 1, 1, 1)
    frames, _, _, _ = decode(clip)
    got, _, _, _ = decode(out)
    ref = image_path_frames(export, frames, tmp_path)
    worst = [int(np.abs(g.astype(int) - r).max()) for g, r in zip(got, ref)]
    assert max(worst) <= 3, worst  # lossless YUV: only the RGB <-> YUV rounding (a BT.601 conversion under the tags: 5)
