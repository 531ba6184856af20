"""Writes a ``folder`` dataset of random samples at a typical resolution, for ``nddr bench --data``.

Each of ``--num`` samples is a JPEG image, an 8-bit segmentation PNG (``--classes``, some pixels
255 = ignored), an 8-bit normals PNG ((n + 1) / 2 x 255, (0, 0, 0) invalid), a 16-bit depth PNG
in millimetres (0 invalid) and a class in ``labels.csv``, with the ``dataset.yaml`` naming them
and a seeded 10% test split. With ``--batches N`` it then times N batches of the training
pipeline in this process (reading, decoding, checks, scale 0.5-1.5, crop 321, flip, collation:
the loader ``nddr train`` uses, 0 workers, one torch thread) and prints samples per second of
wall time and per second of this process's CPU time (per core, whatever else the machine runs).
Nothing is downloaded.

    python benchmarks/folder_data.py --out /tmp/folder480 [--num 60] [--height 480 --width 640]
        [--classes 40]
    nddr bench --data data.name=folder data.root=/tmp/folder480 data.crop_size=321 data.batch_size=10
    python benchmarks/folder_data.py --out /tmp/folder480 --batches 10
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

MANIFEST = {
    "images": "images",
    "table": "labels.csv",
    "tasks": {
        "segmentation": {"kind": "segmentation", "file": "segmentation/{stem}.png", "classes": 40},
        "normals": {"kind": "normals", "file": "normals/{stem}.png", "encoding": "png8"},
        "depth": {"kind": "depth", "file": "depth/{stem}.png", "encoding": "png16", "scale": 0.001},
        "scene": {"kind": "classification", "classes": 10},
    },
    "splits": {"test_fraction": 0.1, "seed": 0},
}


def write_folder(root: Path, num: int, height: int, width: int, classes: int) -> None:
    """``num`` random samples of ``height`` x ``width`` and their ``dataset.yaml`` in ``root``."""
    rng = np.random.default_rng(0)
    for folder in ("images", "segmentation", "normals", "depth"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    stems = [f"{index:04d}" for index in range(num)]
    for stem in stems:
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        Image.fromarray(image).save(root / "images" / f"{stem}.jpg", quality=95)
        labels = rng.integers(0, classes, (height, width), dtype=np.uint8)
        labels[:8] = 255
        Image.fromarray(labels).save(root / "segmentation" / f"{stem}.png")
        normals = rng.normal(size=(height, width, 3))
        encoded = np.round((normals / np.linalg.norm(normals, axis=2, keepdims=True) + 1) * 127.5)
        encoded[:, :8] = 0
        Image.fromarray(encoded.astype(np.uint8)).save(root / "normals" / f"{stem}.png")
        depth = rng.integers(500, 9000, (height, width)).astype(np.uint16)
        depth[-8:] = 0
        Image.fromarray(depth).save(root / "depth" / f"{stem}.png")
    rows = "".join(f"{stem},{rng.integers(10)}\n" for stem in stems)
    (root / "labels.csv").write_text("stem,scene\n" + rows)
    manifest = {**MANIFEST, "tasks": {**MANIFEST["tasks"]}}
    manifest["tasks"]["segmentation"] = {**MANIFEST["tasks"]["segmentation"], "classes": classes}
    (root / "dataset.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))


def time_pipeline(root: Path, batches: int) -> tuple[float, float]:
    """Samples per wall second and per CPU second of the folder's training pipeline."""
    import torch

    from nddr.training.build import training_batches, training_set
    from nddr.training.config import load_config

    torch.set_num_threads(1)
    overrides = [f"data.root={root}", "data.crop_size=321", "data.batch_size=10"]
    config = load_config(None, ["data.name=folder", *overrides])
    stream = training_batches(training_set(config), config)
    next(stream)
    wall, cpu = time.perf_counter(), time.process_time()
    samples = sum(len(next(stream)["image"]) for _ in range(batches))
    return samples / (time.perf_counter() - wall), samples / (time.process_time() - cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder to write (the dataset root)")
    parser.add_argument("--num", type=int, default=60, help="samples to write")
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--classes", type=int, default=40, help="segmentation classes")
    parser.add_argument("--batches", type=int, default=0, help="then time N batches of 10")
    args = parser.parse_args()
    root = Path(args.out)
    if not (root / "dataset.yaml").is_file():
        write_folder(root, args.num, args.height, args.width, args.classes)
        print(f"wrote {args.num} {args.width}x{args.height} samples and dataset.yaml to {root}")
    else:
        print(f"{root} holds a dataset.yaml: timing that folder as it is")
    if args.batches:
        wall, cpu = time_pipeline(root, args.batches)
        print(f"{wall:.1f} samples/s of wall time, {cpu:.1f} samples per CPU second")


if __name__ == "__main__":
    main()
