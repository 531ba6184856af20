"""NYUv2 training pipeline throughput at full size, on files written in the real format.

Writes ``--num`` random 640x480 samples in the NYUD-MT layout (JPEG image, PNG 40-class
segmentation, .npy normals and depth) to a temporary folder, then times the training pipeline of
an NYUv2 config (reading, decoding, random scale 0.5-1.5, crop 321, flip, collation, with the
config's ``data.workers``), the loader ``nddr train`` uses. Nothing is downloaded.

    python benchmarks/nyuv2_pipeline.py [--config configs/nyuv2/vgg16_base.yaml] [--workers N]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from nddr.benchmark.pipeline import pipeline_throughput
from nddr.training.build import training_set
from nddr.training.config import load_config


def write_nyudmt(root: Path, num: int, height: int = 480, width: int = 640) -> None:
    rng = np.random.default_rng(0)
    for folder in ("images", "segmentation", "normals", "depth", "gt_sets"):
        (root / folder).mkdir(parents=True)
    names = [f"{index:04d}" for index in range(num + 2)]
    for name in names:
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        Image.fromarray(image).save(root / "images" / f"{name}.jpg", quality=95)
        labels = rng.integers(0, 41, (height, width), dtype=np.uint8)
        Image.fromarray(labels).save(root / "segmentation" / f"{name}.png")
        normals = rng.normal(size=(height, width, 3)).astype(np.float32)
        normals /= np.linalg.norm(normals, axis=2, keepdims=True)
        np.save(root / "normals" / f"{name}.npy", normals)
        np.save(
            root / "depth" / f"{name}.npy",
            rng.uniform(0.5, 9.0, (height, width)).astype(np.float32),
        )
    (root / "gt_sets" / "train.txt").write_text("".join(f"{n}\n" for n in names[:num]))
    (root / "gt_sets" / "val.txt").write_text("".join(f"{n}\n" for n in names[num:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/nyuv2/vgg16_base.yaml")
    parser.add_argument("--num", type=int, default=60, help="samples to write")
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--workers", type=int, help="override data.workers")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        write_nyudmt(Path(folder), args.num)
        overrides = [f"data.root={folder}"]
        if args.workers is not None:
            overrides.append(f"data.workers={args.workers}")
        config = load_config(args.config, overrides)
        samples_per_s, _ = pipeline_throughput(config, training_set(config), args.batches)
    data = config.data
    print(
        f"NYUv2 640x480 -> crop {data.crop_size}, batch {data.batch_size}, "
        f"{data.workers} workers: {samples_per_s:.1f} samples/s"
    )


if __name__ == "__main__":
    main()
