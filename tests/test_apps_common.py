"""i2i.apps.common.FileLoop as a new front-end would use it: a CycleGAN-style A→B translator
written in this file (the docstring's example), with a stand-in pipeline (colour inversion)."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from i2i.apps.common import FileLoop, add_file_args, cli_flags
from i2i.cli import run
from i2i.data.io import read_image, save_image
from i2i.errors import ConfigError


class InvertPipeline:
    """A stand-in for ``CycleGANPipeline(model, direction)``: (H, W, 3) uint8 -> same."""

    def __init__(self, direction: str = "AtoB", strength: int = 255):
        if strength < 0:
            raise ConfigError(f"must be >= 0, got {strength}", "strength")
        self.direction, self.strength = direction, strength

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return (self.strength - image.astype(int)).clip(0, 255).astype(np.uint8)


def _main(argv: list[str]) -> int:
    """The whole front-end: arguments, the pipeline, the shared loop."""
    p = argparse.ArgumentParser()
    add_file_args(p, "images of the source domain, or folders of them", "cyclegan_<direction>")
    p.add_argument("--direction", choices=("AtoB", "BtoA"), default="AtoB")
    p.add_argument("--strength", type=int, default=255)
    p.add_argument("--io-threads", type=int, default=0)
    args = p.parse_args(argv)
    with cli_flags():
        pipe = InvertPipeline(args.direction, args.strength)
    loop = FileLoop(pipe, io_threads=args.io_threads)
    return loop.run(args.inputs, args.output, f"cyclegan_{args.direction}", suffix=f"_{args.direction}")


def _photos(folder: Path) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    imgs = {n: rng.integers(0, 256, (6 + i, 9, 3), dtype=np.uint8) for i, n in enumerate("abc")}
    for n, a in imgs.items():
        save_image(folder / f"{n}.png", a)
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    (folder / "notes.txt").write_text("not an image")
    return imgs


def test_a_new_front_end_on_the_shared_loop(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    imgs = _photos(tmp_path / "in")
    rc = run(_main, [str(tmp_path / "in"), str(tmp_path / "missing.png"), "-o", str(tmp_path / "out"),
                     "--direction", "BtoA"])
    out, err = capsys.readouterr()
    assert rc == 1  # two inputs failed, the others were written
    errors = err.strip().splitlines()
    assert len(errors) == 2 and all(e.startswith("error: ") for e in errors)
    assert sum("missing.png: file not found" in e for e in errors) == 1
    assert sum("broken.png: not a readable image" in e for e in errors) == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_BtoA.png", "b_BtoA.png", "c_BtoA.png"]
    for n, a in imgs.items():
        np.testing.assert_array_equal(read_image(tmp_path / "out" / f"{n}_BtoA.png"), 255 - a)
    lines = out.strip().splitlines()
    assert lines[:3] == [f"{tmp_path / 'in' / n}.png -> {tmp_path / 'out' / n}_BtoA.png" for n in "abc"]
    assert lines[-1] == f"wrote 3 image(s) to {tmp_path / 'out'}"


def test_threads_write_the_same_bytes_and_inputs_are_never_overwritten(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture) -> None:
    _photos(tmp_path / "in")
    assert run(_main, [str(tmp_path / "in"), "-o", str(tmp_path / "seq")]) == 1
    assert run(_main, [str(tmp_path / "in"), "-o", str(tmp_path / "thr"), "--io-threads", "2"]) == 1
    for n in "abc":
        assert (tmp_path / "seq" / f"{n}_AtoB.png").read_bytes() == (tmp_path / "thr" / f"{n}_AtoB.png").read_bytes()
    capsys.readouterr()
    a = tmp_path / "in" / "a.png"
    before = a.read_bytes()
    assert run(_main, [str(a), "-o", str(a)]) == 2  # -o naming the input: refused before anything is read
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "would overwrite the input" in err[0] and a.read_bytes() == before
    assert run(_main, [str(a), "--strength", "-1"]) == 2  # a pipeline's parameter error names the flag
    assert capsys.readouterr().err.strip() == "error: --strength: must be >= 0, got -1"


def test_write_lines_go_to_stdout_or_stderr_in_file_order(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _photos(tmp_path / "in")

    def write(src: Path, dst: Path, img: np.ndarray) -> str:
        save_image(dst, img)
        return f"warning: {dst.name}: dark" if img.mean() < 128 else f"{dst.name} ok"

    loop = FileLoop(InvertPipeline(strength=0), write=write, io_threads=2)  # strength 0: all black
    assert loop.run([str(tmp_path / "in" / f"{n}.png") for n in "ab"], str(tmp_path / "o"), "unused") == 0
    out, err = capsys.readouterr()
    assert err.strip().splitlines() == ["warning: a.png: dark", "warning: b.png: dark"]
    assert out.strip().splitlines() == [f"wrote 2 image(s) to {tmp_path / 'o'}"]


def test_side_outputs_never_overwrite_an_input(tmp_path: Path) -> None:
    """A writer that also saves ``<stem>_sketch.png`` (pix2pix --save-sketch) declares it: an
    input of that name is refused before anything is written."""
    src = tmp_path / "cat_sketch.png"
    save_image(src, np.zeros((4, 4, 3), np.uint8))
    before = src.read_bytes()

    def sketch_of(dst: Path) -> list[Path]:
        return [dst.with_name(f"{dst.stem}_sketch.png")]

    loop = FileLoop(InvertPipeline(), extra_outputs=sketch_of)
    with pytest.raises(ConfigError, match="cat_sketch.png would overwrite the input"):
        loop.run([str(src)], str(tmp_path / "cat.png"), "unused")
    assert src.read_bytes() == before and not (tmp_path / "cat.png").exists()
    assert loop.run([str(src)], str(tmp_path / "dog.png"), "unused") == 0  # another name: written
