"""Write a PASCAL-Context folder in the PASCAL_MT layout, to time the reading pipeline on.

``--num`` random 500 x 375 samples (PASCAL VOC's most common size) in the real formats: JPEG
image, 21-class segmentation PNG, Pascal-Part ``.mat`` (compressed, as MATLAB saves it; every
other image with a person of twelve annotated parts, the others with a cat only), 8-bit saliency
and normal PNGs, and the split lists. Nothing is downloaded. Then time it with

    python benchmarks/pascal_context_data.py --out /tmp/pascal_mt
    taskset -c 0 nddr bench --data pascal_context/nddr data.root=/tmp/pascal_mt data.workers=0
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

PARTS = (
    "head", "hair", "leye", "reye", "nose", "mouth", "torso", "neck", "luarm", "ruarm", "llarm",
    "lfoot",
)  # fmt: skip
"""The person parts each person of the written annotations has (one horizontal band each)."""


def parts_annotation(rng: np.random.Generator, height: int, width: int, person: bool) -> dict:
    """A Pascal-Part ``anno`` struct: a cat, and a person with :data:`PARTS` if ``person``."""
    part_type = [("part_name", "O"), ("mask", "O")]
    object_type = [("class", "O"), ("class_ind", "O"), ("mask", "O"), ("parts", "O")]
    objects = np.zeros((1, 2 if person else 1), dtype=object_type)
    cat = np.zeros((height, width), np.uint8)
    cat[: height // 3, : width // 3] = 1
    objects[0, 0] = ("cat", 8, cat, np.zeros((0, 0), dtype=part_type))
    if person:
        parts = np.zeros((1, len(PARTS)), dtype=part_type)
        band = height // len(PARTS)
        for index, name in enumerate(PARTS):
            mask = np.zeros((height, width), np.uint8)
            left = int(rng.integers(0, width // 2))
            mask[index * band : (index + 1) * band, left : left + width // 3] = 1
            parts[0, index] = (name, mask)
        silhouette = np.any([part[1] for part in parts[0]], axis=0).astype(np.uint8)
        objects[0, 1] = ("person", 15, silhouette, parts)
    return {"imname": "", "objects": objects}


def write_pascal_mt(root: Path, num: int, height: int = 375, width: int = 500) -> None:
    """``num`` training samples and two validation samples under ``root``."""
    rng = np.random.default_rng(0)
    folders = ("JPEGImages", "semseg/pascal-context", "human_parts", "sal_distill")
    for folder in (*folders, "normals_distill", "ImageSets/Context"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    names = [f"2008_{index:06d}" for index in range(num + 2)]
    for index, name in enumerate(names):
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        Image.fromarray(image).save(root / "JPEGImages" / f"{name}.jpg", quality=95)
        labels = rng.integers(0, 21, (height, width), dtype=np.uint8)
        Image.fromarray(labels).save(root / "semseg" / "pascal-context" / f"{name}.png")
        saliency = rng.integers(0, 256, (height, width), dtype=np.uint8)
        Image.fromarray(saliency).save(root / "sal_distill" / f"{name}.png")
        normals = rng.normal(size=(height, width, 3))
        normals /= np.linalg.norm(normals, axis=2, keepdims=True)
        encoded = np.round((normals + 1) * 127.5).astype(np.uint8)
        Image.fromarray(encoded).save(root / "normals_distill" / f"{name}.png")
        anno = parts_annotation(rng, height, width, person=index % 2 == 0)
        scipy.io.savemat(root / "human_parts" / f"{name}.mat", {"anno": anno}, do_compression=True)
    lists = root / "ImageSets" / "Context"
    (lists / "train.txt").write_text("".join(f"{name}\n" for name in names[:num]))
    (lists / "val.txt").write_text("".join(f"{name}\n" for name in names[num:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder to write (created)")
    parser.add_argument("--num", type=int, default=100, help="training samples to write")
    args = parser.parse_args()
    write_pascal_mt(Path(args.out), args.num)
    print(f"wrote {args.num} + 2 samples to {args.out}")


if __name__ == "__main__":
    main()
