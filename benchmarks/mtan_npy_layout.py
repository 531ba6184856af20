"""Writes random samples in MTAN / LibMTL's preprocessed .npy layout, for ``nddr bench --data``.

``root/{train,val}/{image,label,depth[,normal]}/{i}.npy`` at the layout's usual resolution
(NYUv2 288 x 384 with 13 classes and normals, Cityscapes 128 x 256 with 7 classes), in the
files' dtypes (float32 image in [0, 1], float32 labels with -1, float32 depth H x W x 1 with
0 = invalid, float32 unit normals). Nothing is downloaded.

    python benchmarks/mtan_npy_layout.py nyuv2_npy --num 100 --out /tmp/nyuv2_npy
    nddr bench --data configs/nyuv2_npy/nddr.yaml data.root=/tmp/nyuv2_npy
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

LAYOUTS = {
    "nyuv2_npy": {"size": (288, 384), "classes": 13, "label": "label", "normals": True},
    "cityscapes_npy": {"size": (128, 256), "classes": 7, "label": "label_7", "normals": False},
}
"""Resolution, class count, label folder and whether there are normals, per dataset."""

INVALID_FRACTION = 0.05
"""Share of pixels written as unlabelled / invalid in every target."""


def write_layout(root: Path, dataset: str, num: int, val: int = 2, seed: int = 0) -> None:
    """``num`` train and ``val`` val samples of ``dataset`` under ``root``."""
    layout = LAYOUTS[dataset]
    height, width = layout["size"]
    rng = np.random.default_rng(seed)
    for split, count in (("train", num), ("val", val)):
        folders = ["image", layout["label"], "depth"] + (["normal"] if layout["normals"] else [])
        for folder in folders:
            (root / split / folder).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            invalid = rng.random((height, width)) < INVALID_FRACTION
            image = rng.random((height, width, 3), dtype=np.float32)
            labels = rng.integers(0, layout["classes"], (height, width)).astype(np.float32)
            labels[invalid] = -1.0
            depth = rng.uniform(0.5, 9.0, (height, width, 1)).astype(np.float32)
            depth[invalid] = 0.0
            np.save(root / split / "image" / f"{index}.npy", image)
            np.save(root / split / layout["label"] / f"{index}.npy", labels)
            np.save(root / split / "depth" / f"{index}.npy", depth)
            if layout["normals"]:
                normals = rng.normal(size=(height, width, 3)).astype(np.float32)
                normals /= np.linalg.norm(normals, axis=2, keepdims=True)
                normals[invalid] = 0.0
                np.save(root / split / "normal" / f"{index}.npy", normals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=list(LAYOUTS))
    parser.add_argument("--num", type=int, default=100, help="train samples to write")
    parser.add_argument("--out", required=True, help="folder to write (train/ and val/)")
    args = parser.parse_args()
    write_layout(Path(args.out), args.dataset, args.num)
    height, width = LAYOUTS[args.dataset]["size"]
    print(f"wrote {args.num} train + 2 val {args.dataset} samples ({height}x{width}) to {args.out}")


if __name__ == "__main__":
    main()
