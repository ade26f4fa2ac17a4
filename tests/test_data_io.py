"""i2i.data.io on a hostile corpus generated in tmp_path."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from i2i.data.io import IMAGE_EXTENSIONS, list_images, read_image, read_mask, save_image
from i2i.errors import DataError

RNG = np.random.default_rng(0)


def _rgb(h: int = 12, w: int = 20) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _png_bytes(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


# --- listing -------------------------------------------------------------------------------
def test_list_images_sorted_case_insensitive_and_recursive(tmp_path: Path) -> None:
    for name in ["b.PNG", "a.jpg", "c.TiFf", "notes.txt", ".hidden.png", "._a.jpg"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.webp").write_bytes(b"x")
    assert [p.name for p in list_images(tmp_path)] == ["a.jpg", "b.PNG", "c.TiFf"]
    assert [p.name for p in list_images(tmp_path, recursive=True)] == ["a.jpg", "b.PNG", "c.TiFf", "d.webp"]
    assert {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"} <= set(IMAGE_EXTENSIONS)


def test_list_images_errors_name_the_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="missing_dir: folder not found"):
        list_images(tmp_path / "missing_dir")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("hi")
    with pytest.raises(DataError, match="empty: no images found"):
        list_images(tmp_path / "empty")


# --- broken files --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["zero", "text", "trunc_png", "trunc_jpg", "missing"])
def test_broken_files_raise_one_line_data_error(tmp_path: Path, kind: str) -> None:
    good = Image.fromarray(_rgb(64, 64))
    path = tmp_path / f"x_{kind}.png"
    if kind == "zero":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("this is not a picture\n")
    elif kind == "trunc_png":
        data = _png_bytes(good)
        path.write_bytes(data[: len(data) // 2])
    elif kind == "trunc_jpg":
        path = tmp_path / "x_trunc.jpg"
        data = _png_bytes(good, "JPEG", quality=90)
        path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError) as ei:
        read_image(path)
    msg = str(ei.value)
    assert msg.startswith(f"{path}: ") and "\n" not in msg
    expected = {"zero": "empty file", "text": "cannot identify image file", "missing": "file not found"}
    if kind in expected:
        assert expected[kind] in msg
    else:
        assert "not a readable image" in msg


def test_oversize_rejected_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (200, 100)).save(path)
    assert read_image(path, max_pixels=20_000).shape == (100, 200, 3)
    with pytest.raises(DataError, match=r"big.png: image too large \(200x100"):
        read_image(path, max_pixels=19_999)


def test_pil_decompression_bomb_becomes_data_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "bomb.png"
    Image.new("L", (100, 100)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 6_000)  # 10_000 px: above 1x (warning) but below 2x
    with pytest.raises(DataError, match="bomb.png: image too large"):
        read_image(path, max_pixels=None)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 4_000)  # above 2x: Pillow raises
    with pytest.raises(DataError, match="bomb.png: image too large"):
        read_image(path, max_pixels=None)


# --- modes ---------------------------------------------------------------------------------
def test_palette_la_rgba_gray_conversions(tmp_path: Path) -> None:
    rgb = _rgb()
    pal = Image.fromarray(rgb).quantize(8)
    pal.save(tmp_path / "p.png")
    expect = np.asarray(pal.convert("RGB"))
    assert np.array_equal(read_image(tmp_path / "p.png"), expect)

    gray = RNG.integers(0, 256, (12, 20), dtype=np.uint8)
    Image.fromarray(gray).save(tmp_path / "g.png")
    out = read_image(tmp_path / "g.png")
    assert out.shape == (12, 20, 3) and np.array_equal(out[..., 1], gray)
    assert np.array_equal(read_image(tmp_path / "g.png", mode="L"), gray)
    assert read_image(tmp_path / "g.png", mode="keep").shape == (12, 20)

    alpha = np.zeros((12, 20), np.uint8)
    alpha[:, 10:] = 255
    Image.fromarray(np.dstack([gray, alpha]), "LA").save(tmp_path / "la.png")
    out = read_image(tmp_path / "la.png")
    assert np.all(out[:, :10] == 255) and np.array_equal(out[:, 10:, 0], gray[:, 10:])  # white where transparent
    assert np.array_equal(read_image(tmp_path / "la.png", alpha="drop")[..., 0], gray)
    assert read_image(tmp_path / "la.png", mode="keep").shape == (12, 20, 2)

    rgba = np.dstack([rgb, np.full((12, 20), 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    assert np.array_equal(read_image(tmp_path / "rgba.png", mode="RGBA"), rgba)
    f = read_image(tmp_path / "rgba.png", dtype="float32")
    a = 128 / 255
    assert np.allclose(f, rgb / 255 * a + (1 - a), atol=1e-6)
    assert np.array_equal(read_image(tmp_path / "rgba.png", alpha="drop"), rgb)
    # opaque input asked as RGBA gets alpha 255
    Image.fromarray(rgb).save(tmp_path / "rgb.bmp")
    assert np.all(read_image(tmp_path / "rgb.bmp", mode="RGBA")[..., 3] == 255)
    # luma follows BT.601 like Pillow (within rounding)
    l_ours = read_image(tmp_path / "rgb.bmp", mode="L").astype(int)
    assert np.abs(l_ours - np.asarray(Image.fromarray(rgb).convert("L")).astype(int)).max() <= 1


def test_cmyk_jpeg(tmp_path: Path) -> None:
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[:, :8] = (255, 0, 0)
    rgb[:, 8:] = (0, 0, 255)
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "c.jpg", quality=95)
    with Image.open(tmp_path / "c.jpg") as im:
        assert im.mode == "CMYK"
    out = read_image(tmp_path / "c.jpg").astype(int)
    assert out.shape == (16, 16, 3)
    assert np.abs(out[4:12, 1:6] - [255, 0, 0]).max() < 40
    assert np.abs(out[4:12, 10:15] - [0, 0, 255]).max() < 40


def test_16bit_gray_keeps_precision(tmp_path: Path) -> None:
    g = (np.arange(12 * 20).reshape(12, 20) * 271).astype(np.uint16)
    Image.fromarray(g).save(tmp_path / "g16.png")
    f = read_image(tmp_path / "g16.png", mode="L", dtype="float32")
    assert f.dtype == np.float32 and np.allclose(f, g / 65535.0, atol=1e-7)
    rgbf = read_image(tmp_path / "g16.png", dtype="float32")
    assert rgbf.shape == (12, 20, 3) and np.allclose(rgbf[..., 2], g / 65535.0, atol=1e-7)
    u8 = read_image(tmp_path / "g16.png", mode="L")
    assert np.array_equal(u8, np.rint(g / 257.0).astype(np.uint8))  # scaled, not clipped at 255


def test_16bit_colour_png_and_tiff_keep_precision(tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2")
    tifffile = pytest.importorskip("tifffile")
    a = RNG.integers(0, 65536, (10, 14, 3)).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "c16.png"), a[..., ::-1])
    tifffile.imwrite(tmp_path / "c16.tif", a, photometric="rgb")
    for name in ("c16.png", "c16.tif"):
        f = read_image(tmp_path / name, dtype="float32")
        assert np.allclose(f, a / 65535.0, atol=1e-7), name
        assert np.array_equal(read_image(tmp_path / name), np.rint(a / 257.0).astype(np.uint8)), name


def test_exif_rotation_applied(tmp_path: Path) -> None:
    rgb = _rgb(10, 30)  # stored landscape
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise for display
    Image.fromarray(rgb).save(tmp_path / "r.jpg", exif=exif.tobytes(), quality=100)
    out = read_image(tmp_path / "r.jpg")
    assert out.shape == (30, 10, 3)
    with Image.open(tmp_path / "r.jpg") as im:
        assert np.array_equal(out, np.asarray(ImageOps.exif_transpose(im).convert("RGB")))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_numpy_orientation_matches_pil(orientation: int) -> None:
    from i2i.data.io import _orient

    img = Image.fromarray(_rgb(5, 7))
    exif = img.getexif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    img.save(buf, format="PNG", exif=exif.tobytes())
    with Image.open(buf) as im:
        expect = np.asarray(ImageOps.exif_transpose(im))
    assert np.array_equal(_orient(np.asarray(img), orientation), expect)


# --- masks ---------------------------------------------------------------------------------
def test_read_mask_palette_indices_and_gray_values(tmp_path: Path) -> None:
    labels = RNG.integers(0, 21, (9, 11)).astype(np.int64)
    labels[0, 0] = 255  # VOC "ignore"
    palette = RNG.integers(0, 256, (256, 3), dtype=np.uint8)
    save_image(tmp_path / "m.png", labels, palette=palette)
    with Image.open(tmp_path / "m.png") as im:
        assert im.mode == "P"
    m = read_mask(tmp_path / "m.png")
    assert m.dtype == np.int64 and np.array_equal(m, labels)
    save_image(tmp_path / "g.png", labels)  # no palette -> L, values unchanged
    assert np.array_equal(read_mask(tmp_path / "g.png"), labels)
    big = labels * 250  # up to 63750
    save_image(tmp_path / "g16.png", big)  # > 255 -> 16-bit PNG
    assert np.array_equal(read_mask(tmp_path / "g16.png"), big)
    Image.fromarray(_rgb()).save(tmp_path / "rgb.png")
    with pytest.raises(DataError, match="rgb.png: expected a single-channel label image"):
        read_mask(tmp_path / "rgb.png")


# --- saving --------------------------------------------------------------------------------
def test_save_image_roundtrip_and_atomic(tmp_path: Path) -> None:
    rgb = _rgb()
    save_image(tmp_path / "out" / "a.png", rgb)
    assert np.array_equal(read_image(tmp_path / "out" / "a.png"), rgb)
    t = torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0  # CHW float in [0, 1]
    save_image(tmp_path / "out" / "b.png", t)
    save_image(tmp_path / "out" / "c.png", t[None])
    assert np.array_equal(read_image(tmp_path / "out" / "b.png"), rgb)
    assert np.array_equal(read_image(tmp_path / "out" / "c.png"), rgb)
    save_image(tmp_path / "out" / "d.jpg", t)
    assert read_image(tmp_path / "out" / "d.jpg").shape == rgb.shape
    # no temporary files left behind
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png", "c.png", "d.jpg"]
    # overwriting is atomic: a failing save keeps the old file intact
    with pytest.raises(ValueError):
        save_image(tmp_path / "out" / "a.png", np.zeros((4, 4, 5), np.uint8))  # 2 channels are gray+alpha now
    assert np.array_equal(read_image(tmp_path / "out" / "a.png"), rgb)
    with pytest.raises(ValueError, match="JPEG cannot store"):
        save_image(tmp_path / "out" / "e.jpg", np.zeros((4, 4, 4), np.uint8))
    assert not any(p.name.startswith(".") for p in (tmp_path / "out").iterdir())


def test_an_animated_gif_in_a_folder_is_read_as_its_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (6, 4), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    save_image(tmp_path / "b.png", np.zeros((4, 6, 3), np.uint8))
    assert [p.name for p in list_images(tmp_path)] == ["anim.gif", "b.png"]
    a = read_image(tmp_path / "anim.gif")
    assert a.shape == (4, 6, 3) and tuple(a[0, 0]) == (255, 0, 0)  # the first frame, red


# --- depth-keeping read/write and header sizes -----------------------------------------------
def test_auto_dtype_keeps_16_bits_and_writes_them_back(tmp_path: Path) -> None:
    import cv2

    from i2i.data.io import save_image_keep_depth

    gray16 = (np.arange(6 * 7).reshape(6, 7) * 1500).astype(np.uint16)
    Image.fromarray(gray16).save(tmp_path / "g16.png")
    rgb16 = (RNG.integers(0, 65536, (5, 4, 3))).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "c16.png"), rgb16[..., ::-1].copy())
    Image.fromarray(_rgb(5, 4)).save(tmp_path / "c8.png")
    g = read_image(tmp_path / "g16.png", "keep", dtype="auto")
    c = read_image(tmp_path / "c16.png", "keep", dtype="auto")
    assert g.dtype == c.dtype == np.float32 and read_image(tmp_path / "c8.png", "keep", dtype="auto").dtype == np.uint8
    np.testing.assert_array_equal(np.rint(g * 65535).astype(np.uint16), gray16)
    np.testing.assert_array_equal(np.rint(c * 65535).astype(np.uint16), rgb16)
    assert save_image_keep_depth(tmp_path / "g_out.png", g) == ""
    assert save_image_keep_depth(tmp_path / "c_out.png", c) == ""
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "g_out.png")), gray16)  # exact round trip
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "c_out.png"), cv2.IMREAD_UNCHANGED)[..., ::-1], rgb16)
    note = save_image_keep_depth(tmp_path / "c_out.jpg", c)  # JPEG holds 8 bits: written, with the reason
    assert "8 bits" in note and Image.open(tmp_path / "c_out.jpg").mode == "RGB"


def test_image_size_reads_the_header_as_read_image_would(tmp_path: Path) -> None:
    from i2i.data.io import image_size

    exif = Image.Exif()
    exif[0x0112] = 6  # stored 20 wide x 12 high, shown rotated
    Image.fromarray(_rgb(12, 20)).save(tmp_path / "r.jpg", exif=exif.tobytes())
    assert image_size(tmp_path / "r.jpg") == read_image(tmp_path / "r.jpg").shape[:2] == (20, 12)
    good = _png_bytes(Image.fromarray(_rgb(12, 20)))
    (tmp_path / "t.png").write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match="t.png: not a readable image"):
        image_size(tmp_path / "t.png")
    with pytest.raises(DataError, match="too large"):
        image_size(tmp_path / "r.jpg", max_pixels=100)


def test_metadata_passes_through_with_the_orientation_reset(tmp_path) -> None:  # noqa: ANN001
    """image_metadata + save_image: the ICC profile and EXIF of the source reach the output (PNG,
    JPEG, WebP); the orientation tag becomes 1 because read_image already rotated the pixels."""
    from PIL import Image, ImageCms

    from i2i.data.io import image_metadata, read_image, save_image

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x0112], exif[0x010F] = 6, "TestCam"
    src = tmp_path / "src.jpg"
    Image.new("RGB", (40, 30), (200, 10, 10)).save(src, icc_profile=icc, exif=exif.tobytes())
    meta = image_metadata(src)
    assert meta["icc_profile"] == icc
    pixels = read_image(src)
    assert pixels.shape == (40, 30, 3)  # rotated by the orientation tag
    for ext in (".png", ".jpg", ".webp"):
        out = save_image(tmp_path / f"out{ext}", pixels, **meta)
        with Image.open(out) as o:
            assert o.info.get("icc_profile") == icc, ext
            got = o.getexif()
            assert got.get(0x0112) == 1 and got.get(0x010F) == "TestCam", ext
            assert o.size == (30, 40)
    assert image_metadata(tmp_path / "missing.png") == {}
    plain = tmp_path / "plain.png"
    Image.new("RGB", (4, 4)).save(plain)
    assert image_metadata(plain) == {}
