"""Images for inference: read as displayed (EXIF, 16-bit, grey, palette, alpha), inputs found."""

import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from nddr.data.image_file import find_images, fit_within, read_display_image, relative_names
from nddr.errors import NddrError

EXIF_ORIENTATION = 0x0112


def grey_ramp(height: int = 6, width: int = 43) -> np.ndarray:
    """Every 8-bit value from 0 to 255 (and some twice), as uint8 (H, W)."""
    return (np.arange(height * width) % 256).astype(np.uint8).reshape(height, width)


def write_png_48_bit(rgb16: np.ndarray, path) -> None:
    """A 16-bit-per-channel RGB PNG, which PIL cannot write: signature, IHDR, IDAT, IEND."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        checksum = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + checksum

    height, width, _ = rgb16.shape
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in rgb16)
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_16_bit_grey_png_reads_like_its_8_bit_version(tmp_path):
    grey = grey_ramp()
    Image.fromarray(grey).save(tmp_path / "8.png")
    Image.fromarray(grey.astype(np.uint16) * 257).save(tmp_path / "16.png")  # 0..65535
    assert Image.open(tmp_path / "16.png").mode == "I;16"
    pixels = read_display_image(tmp_path / "16.png")
    assert pixels.dtype == np.uint8 and pixels.shape == (*grey.shape, 3)
    np.testing.assert_array_equal(pixels, read_display_image(tmp_path / "8.png"))
    assert (pixels == 255).mean() < 0.01  # not clipped


def test_16_bit_values_between_8_bit_steps_round_to_the_nearest(tmp_path):
    values = np.array([[0, 128, 129, 1000, 65406, 65535]], np.uint16)
    Image.fromarray(values).save(tmp_path / "16.png")
    pixels = read_display_image(tmp_path / "16.png")
    np.testing.assert_array_equal(pixels[0, :, 0], [0, 0, 1, 4, 254, 255])


def test_48_bit_rgb_png_reads_like_its_8_bit_version(tmp_path):
    rgb = np.stack([grey_ramp(), grey_ramp()[::-1], 255 - grey_ramp()], axis=2)
    write_png_48_bit(rgb.astype(np.uint16) * 257, tmp_path / "48.png")
    np.testing.assert_array_equal(read_display_image(tmp_path / "48.png"), rgb)


def test_32_bit_integer_tiff_within_16_bits_is_scaled_beyond_is_refused(tmp_path):
    Image.fromarray(np.array([[0, 257 * 7, 65535]], np.int32)).save(tmp_path / "16.tif")
    assert Image.open(tmp_path / "16.tif").mode == "I"
    np.testing.assert_array_equal(read_display_image(tmp_path / "16.tif")[0, :, 0], [0, 7, 255])
    Image.fromarray(np.array([[0, 70000]], np.int32)).save(tmp_path / "32.tif")
    with pytest.raises(NddrError, match="outside 16 bits"):
        read_display_image(tmp_path / "32.tif")


def test_float_tiff_is_refused_not_guessed(tmp_path):
    Image.fromarray(np.full((2, 3), 0.5, np.float32)).save(tmp_path / "float.tif")
    with pytest.raises(NddrError, match="floating-point pixels"):
        read_display_image(tmp_path / "float.tif")


def test_grey_and_palette_images_become_rgb(tmp_path):
    grey = grey_ramp()
    Image.fromarray(grey).save(tmp_path / "grey.png")
    pixels = read_display_image(tmp_path / "grey.png")
    np.testing.assert_array_equal(pixels, np.repeat(grey[..., None], 3, axis=2))
    palette = Image.fromarray(np.array([[0, 1], [1, 2]], np.uint8), mode="P")
    palette.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255])
    palette.save(tmp_path / "palette.png")
    pixels = read_display_image(tmp_path / "palette.png")
    np.testing.assert_array_equal(pixels[0, 0], [255, 0, 0])
    np.testing.assert_array_equal(pixels[1, 1], [0, 0, 255])


def test_transparent_pixels_are_shown_over_white(tmp_path):
    rgba = np.array([[[10, 20, 30, 255], [10, 20, 30, 0], [200, 100, 0, 128]]], np.uint8)
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    pixels = read_display_image(tmp_path / "rgba.png")
    np.testing.assert_array_equal(pixels[0, 0], [10, 20, 30])
    np.testing.assert_array_equal(pixels[0, 1], [255, 255, 255])
    np.testing.assert_allclose(pixels[0, 2], [227, 177, 127], atol=1)


def test_exif_orientation_is_applied(tmp_path):
    stored = np.zeros((120, 160, 3), np.uint8)
    stored[:, :80] = 255  # left half white, as stored
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # display rotated 90 degrees clockwise
    Image.fromarray(stored).save(tmp_path / "portrait.jpg", exif=exif, quality=95)
    pixels = read_display_image(tmp_path / "portrait.jpg")
    assert pixels.shape == (160, 120, 3)
    displayed = np.rot90(stored, k=-1)  # the stored left half is now on top
    assert np.abs(pixels.astype(int) - displayed).mean() < 3


def test_unreadable_files_are_one_line_errors_naming_them(tmp_path):
    Image.fromarray(grey_ramp(40, 40)).save(tmp_path / "whole.png")
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "notes.png").write_text("not an image")
    for name in ("truncated.png", "notes.png"):
        with pytest.raises(NddrError, match=f"image file '.*{name}' cannot be decoded"):
            read_display_image(tmp_path / name)


def _touch_image(path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grey_ramp(2, 2)).save(path)


def test_folders_are_searched_recursively_sorted_for_image_suffixes(tmp_path):
    for name in ("b/x.png", "a/x.JPG", "a/deeper/y.png", ".hidden/z.png", "a/.w.png"):
        _touch_image(tmp_path / name)
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    found = find_images([str(tmp_path)])
    assert [path.relative_to(tmp_path).as_posix() for path in found] == [
        "a/deeper/y.png",
        "a/x.JPG",
        "b/x.png",
    ]


def test_globs_are_expanded_and_each_file_is_listed_once(tmp_path):
    for name in ("a/x.png", "a/deeper/y.png", "b/x.png"):
        _touch_image(tmp_path / name)
    found = find_images([f"{tmp_path}/**/*.png", str(tmp_path / "b" / "x.png")])
    assert [path.relative_to(tmp_path).as_posix() for path in found] == [
        "a/deeper/y.png",
        "a/x.png",
        "b/x.png",
    ]
    assert [p.name for p in find_images([f"{tmp_path}/a/*.png"])] == ["x.png"]


def test_named_files_are_taken_whatever_their_suffix(tmp_path):
    (tmp_path / "scan.data").write_bytes(b"")
    assert find_images([str(tmp_path / "scan.data")]) == [tmp_path / "scan.data"]


def test_the_output_folder_is_left_out_of_folders_and_globs(tmp_path):
    _touch_image(tmp_path / "x.png")
    _touch_image(tmp_path / "out" / "x_segmentation.png")
    assert find_images([str(tmp_path)], exclude=tmp_path / "out") == [tmp_path / "x.png"]
    assert find_images([f"{tmp_path}/**/*.png"], exclude=tmp_path / "out") == [tmp_path / "x.png"]
    # Writing beside the images: the search starts inside the output folder, which then counts.
    assert find_images([str(tmp_path / "out")], exclude=tmp_path / "out") != []
    assert len(find_images([f"{tmp_path}/*.png"], exclude=tmp_path)) == 1


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("missing.png", "image 'MISSING' does not exist (no such file or folder)"),
        ("empty", "image folder 'MISSING' holds no image file"),
        ("*.jpg", "glob pattern 'MISSING' matches no image file"),
    ],
)
def test_names_that_give_no_image_are_errors_naming_them(tmp_path, name, fragment):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not an image")
    with pytest.raises(NddrError) as error:
        find_images([str(tmp_path / name)])
    assert fragment.replace("MISSING", str(tmp_path / name)) in str(error.value)


def test_relative_names_are_below_the_common_folder(tmp_path):
    paths = [tmp_path / "a" / "x.png", tmp_path / "b" / "c" / "x.png"]
    assert [str(name) for name in relative_names(paths)] == ["a/x.png", "b/c/x.png"]
    assert [str(name) for name in relative_names([tmp_path / "a" / "x.png"])] == ["x.png"]


def test_fit_within_keeps_the_aspect_and_the_values():
    image = torch.full((1, 3, 3000, 4000), 0.25)
    small = fit_within(image, 1024)
    assert small.shape == (1, 3, 768, 1024)
    torch.testing.assert_close(small, torch.full_like(small, 0.25))
    assert fit_within(image, 0) is image and fit_within(image, 4000) is image


def test_fit_within_antialiases():
    stripes = torch.zeros(1, 1, 8, 64)
    stripes[..., ::2] = 1.0  # one-pixel stripes: a plain bilinear 1/8 downscale keeps aliasing
    assert (fit_within(stripes, 8) - 0.5).abs().max() < 0.02  # the edges see part of a stripe
