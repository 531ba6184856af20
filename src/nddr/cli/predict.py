"""``nddr predict``: run a trained checkpoint on image files and write what it predicts."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction, name: str) -> None:
    parser = subparsers.add_parser(
        name,
        help="predict on images: coloured segmentation, normals, depth; labels as JSON",
        description="Run a checkpoint (run folder, checkpoint folder or model .safetensors) on "
        "images. Writes per image and dense task a PNG (segmentation in the class palette, "
        "normals as RGB = (n + 1) / 2, depth on a colour ramp, plus the raw .npy) and one "
        "predictions.json with image-level tasks (class and probability, expected age).",
    )
    parser.add_argument("checkpoint")
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from nddr.data.files import read_image, write_npy, write_png
    from nddr.data.transforms import IMAGENET_MEAN, IMAGENET_STD
    from nddr.engine import load_model
    from nddr.engine.distributed import resolve_device
    from nddr.errors import NddrError
    from nddr.io import atomic_write

    network, tasks, _ = load_model(args.checkpoint)
    device = resolve_device(args.device)
    network.to(device).eval()
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise NddrError(
            f"cannot create the --out folder {str(out)!r} ({error.strerror or error}): "
            "pass a writable folder"
        ) from None
    report: dict[str, dict[str, object]] = {}
    for image_path in args.images:
        pixels = read_image(image_path)
        image = torch.from_numpy(pixels.copy()).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            outputs = network(((image - mean) / std).to(device))
        stem = Path(image_path).stem
        entry: dict[str, object] = {}
        for task in tasks:
            output = outputs[task.name].float()
            prediction = task.predict(output, pixels.shape[:2] if task.dense else None)[0].cpu()
            if task.dense:
                value = prediction.numpy()
                if task.kind == "normals":
                    value = np.ascontiguousarray(np.moveaxis(value, 0, -1))
                elif task.kind == "depth":
                    value = value[0]
                else:
                    value = value.astype(np.uint8)
                write_png(task.picture(value), out / f"{stem}_{task.name}.png")
                write_npy(value, out / f"{stem}_{task.name}.npy")
                entry[task.name] = f"{stem}_{task.name}.png"
            elif task.kind == "age":
                entry[task.name] = {"expected_age": round(float(prediction), 2)}
            else:
                probability = output.softmax(dim=1)[0].cpu()
                label = int(prediction)
                name = task.class_names[label] if task.class_names else label
                entry[task.name] = {
                    "class": name,
                    "probability": round(float(probability[label]), 4),
                }
        report[str(image_path)] = entry
        print(f"{image_path}: " + ", ".join(f"{key} {value}" for key, value in entry.items()))
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "predictions.json") as path:
        Path(path).write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")
    return 0
