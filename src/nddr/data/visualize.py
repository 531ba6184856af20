"""Colour images of targets and predictions, and sample grids for ``nddr data show``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

IGNORE_COLOUR = (0, 0, 0)
SALIENCY_IGNORE_COLOUR = (128, 0, 0)
"""Unlabelled saliency pixels: dark red, apart from the black background and white objects."""

# A perceptually ordered colour ramp (viridis stops) for depth.
_RAMP = np.array(
    [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)], dtype=np.float64
)


def palette(num_classes: int) -> np.ndarray:
    """Distinct colours (num_classes x 3, uint8), the PASCAL VOC bit-interleaving scheme."""
    colours = np.zeros((num_classes, 3), dtype=np.uint8)
    for label in range(num_classes):
        value, code = label + 1, [0, 0, 0]
        for bit in range(8):
            for channel in range(3):
                code[channel] |= ((value >> channel) & 1) << (7 - bit)
            value >>= 3
        colours[label] = code
    return colours


def segmentation_rgb(labels: np.ndarray, num_classes: int, ignore_index: int = 255) -> np.ndarray:
    """(H, W) labels -> (H, W, 3) uint8; ignored pixels black."""
    colours = np.vstack([palette(num_classes), np.zeros((256 - num_classes, 3), np.uint8)])
    out = colours[np.clip(labels, 0, 255).astype(np.intp)]
    out[labels == ignore_index] = IGNORE_COLOUR
    return out


def normals_rgb(normals: np.ndarray) -> np.ndarray:
    """(H, W, 3) unit normals -> (H, W, 3) uint8 as (n + 1) / 2; invalid (0, 0, 0) black."""
    out = np.clip((normals + 1.0) * 127.5, 0, 255).astype(np.uint8)
    out[~np.any(normals != 0, axis=2)] = IGNORE_COLOUR
    return out


def saliency_rgb(value: np.ndarray, ignore_index: int = 255) -> np.ndarray:
    """(H, W) saliency -> (H, W, 3) uint8 grey: a uint8 mask shows salient white, background
    black and unlabelled (``ignore_index``) :data:`SALIENCY_IGNORE_COLOUR`; a float probability
    map shows p x 255."""
    value = np.asarray(value)
    if np.issubdtype(value.dtype, np.floating):
        grey = (np.clip(np.nan_to_num(value), 0.0, 1.0) * 255.0).round().astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    out = np.where((value == 1)[..., None], np.uint8(255), np.uint8(0)).repeat(3, axis=2)
    out[value == ignore_index] = SALIENCY_IGNORE_COLOUR
    return out


def depth_rgb(depth: np.ndarray) -> np.ndarray:
    """(H, W) depth -> (H, W, 3) uint8 on a viridis ramp from near to far; invalid (0) black."""
    valid = depth > 0
    out = np.zeros((*depth.shape, 3), dtype=np.uint8)
    if valid.any():
        near, far = np.percentile(depth[valid], [1, 99])
        position = np.clip((depth - near) / max(far - near, 1e-6), 0, 1) * (len(_RAMP) - 1)
        low = np.floor(position).astype(np.intp).clip(0, len(_RAMP) - 2)
        weight = (position - low)[..., None]
        colour = _RAMP[low] * (1 - weight) + _RAMP[low + 1] * weight
        out[valid] = colour[valid].astype(np.uint8)
    return out


def grid(
    rows: Sequence[Sequence[np.ndarray]], captions: Sequence[str] = (), gap: int = 2
) -> Image.Image:
    """Tile rows of (H, W, 3) uint8 panels (same height within a row) into one image.

    ``captions`` (one per row) are written under each row.
    """
    caption_height = 12 if captions else 0
    heights = [max(panel.shape[0] for panel in row) for row in rows]
    widths = [sum(panel.shape[1] for panel in row) + gap * (len(row) - 1) for row in rows]
    canvas = Image.new(
        "RGB",
        (max(widths), sum(heights) + (gap + caption_height) * len(rows)),
        (255, 255, 255),
    )
    draw = ImageDraw.Draw(canvas)
    top = 0
    for index, (row, height) in enumerate(zip(rows, heights)):
        left = 0
        for panel in row:
            canvas.paste(Image.fromarray(panel), (left, top))
            left += panel.shape[1] + gap
        if captions:
            draw.text((2, top + height), captions[index], fill=(0, 0, 0))
        top += height + caption_height + gap
    return canvas
