"""Colour pictures of targets: distinct class colours, ignored / invalid pixels black."""

import numpy as np
from PIL import Image

from nddr.data.visualize import (
    IGNORE_COLOUR,
    depth_rgb,
    grid,
    normals_rgb,
    palette,
    segmentation_rgb,
)


def test_palette_colours_are_distinct_and_start_like_pascal_voc():
    colours = palette(40)
    assert len({tuple(colour) for colour in colours}) == 40
    assert tuple(colours[0]) == (128, 0, 0) and tuple(colours[1]) == (0, 128, 0)


def test_segmentation_colours_each_class_and_blacks_out_ignored():
    labels = np.array([[0, 1], [2, 255]], np.uint8)
    rgb = segmentation_rgb(labels, 3)
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 2, 3)
    np.testing.assert_array_equal(rgb[0, 0], palette(3)[0])
    np.testing.assert_array_equal(rgb[1, 0], palette(3)[2])
    assert tuple(rgb[1, 1]) == IGNORE_COLOUR


def test_normals_map_to_n_plus_one_over_two_and_invalid_to_black():
    normals = np.zeros((1, 2, 3), np.float32)
    normals[0, 0] = (0, 0, 1)
    rgb = normals_rgb(normals)
    assert tuple(rgb[0, 0]) == (127, 127, 255)
    assert tuple(rgb[0, 1]) == IGNORE_COLOUR


def test_depth_ramp_runs_from_near_to_far_with_invalid_black():
    depth = np.linspace(0, 10, 12, dtype=np.float32).reshape(3, 4)
    rgb = depth_rgb(depth)
    assert tuple(rgb[0, 0]) == IGNORE_COLOUR
    near, far = rgb[0, 1].astype(int), rgb[-1, -1].astype(int)
    assert far.sum() > near.sum()
    assert tuple(far) == (253, 231, 37)


def test_grid_tiles_rows_and_keeps_panel_pixels():
    red = np.zeros((4, 3, 3), np.uint8)
    red[..., 0] = 255
    picture = grid([[red, red], [red]], gap=1)
    assert isinstance(picture, Image.Image)
    assert picture.size == (3 + 1 + 3, 2 * (4 + 1))
    assert picture.getpixel((0, 0)) == (255, 0, 0)
    assert picture.getpixel((4, 0)) == (255, 0, 0)
    assert picture.getpixel((3, 0)) == (255, 255, 255)
