"""``nddr predict``: run a trained checkpoint on image files and write what it predicts."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import torch

    from nddr.tasks import Task


DEFAULT_MAX_SIZE = 1024
"""Longer side, in pixels, of what the network sees: a 4000 x 3000 photo runs in seconds."""


HELP = "predict on images: coloured segmentation, normals, depth, saliency; labels as JSON"
"""The one line ``nddr --help`` shows for this command."""


def add_parser(subparsers: argparse._SubParsersAction, name: str) -> None:
    parser = subparsers.add_parser(
        name,
        help=HELP,
        description="Run a checkpoint (run folder, checkpoint folder or model .safetensors) on "
        "images. Writes per image and dense task a PNG at the image's size (segmentation in "
        "the class palette, normals as RGB = (n + 1) / 2, depth on a colour ramp, saliency "
        "probability in grey, plus the raw .npy) and one predictions.json with image-level "
        "tasks (class and probability, expected age, regression value). Outputs mirror each image's path relative to the folder all inputs "
        "share: a/x.png and b/x.png give OUT/a/x_TASK.png and OUT/b/x_TASK.png (x.png and x.jpg "
        "in one folder keep their suffix: x.png_TASK.png), and predictions.json is keyed by that "
        "relative path. Images are read as displayed: EXIF orientation applied, 16-bit scaled "
        "to 8 bits, transparency over white. An image that cannot be read is skipped with a "
        'warning and an "error" entry in predictions.json; the exit status is then 1 (2 if '
        "no image could be predicted).",
    )
    parser.add_argument("checkpoint")
    parser.add_argument(
        "images",
        nargs="+",
        metavar="IMAGE",
        help="image files, folders (their images, recursively) or quoted glob patterns "
        "('photos/**/*.jpg')",
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument(
        "--max-size",
        type=int,
        default=DEFAULT_MAX_SIZE,
        metavar="N",
        help="downscale (antialiased) images whose longer side exceeds N pixels before the "
        "network; outputs are brought back to the image's size; 0: no limit "
        f"(default {DEFAULT_MAX_SIZE})",
    )


def run(args: argparse.Namespace) -> int:
    from nddr.data.image_file import common_folder, find_images, read_display_image, relative_names
    from nddr.errors import NddrError
    from nddr.io import atomic_write
    from nddr.training import load_run
    from nddr.training.distributed import resolve_device

    if args.max_size < 0:
        raise NddrError(
            f"--max-size must be 0 (no limit) or a number of pixels, got {args.max_size}"
        )
    out = Path(args.out)
    images = find_images(args.images, exclude=out)
    network, tasks, _ = load_run(args.checkpoint)
    device = resolve_device(args.device)
    network.to(device).eval()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise NddrError(
            f"cannot create the --out folder {str(out)!r} ({error.strerror or error}): "
            "pass a writable folder"
        ) from None
    names = relative_names(images)
    report: dict[str, dict[str, object]] = {}
    errors: list[str] = []
    for image, name, stem in zip(images, names, output_stems(names)):
        try:
            pixels = read_display_image(image)
        except NddrError as error:
            print(f"warning: {error}; skipped", file=sys.stderr)
            report[str(name)] = {"error": str(error)}
            errors.append(str(error))
            continue
        entry = predict_image(network, tasks, pixels, device, args.max_size, out, stem)
        report[str(name)] = entry
        print(f"{name}: " + ", ".join(f"{key} {value}" for key, value in entry.items()))
    with atomic_write(out / "predictions.json") as path:
        Path(path).write_text(json.dumps(report, indent=2))
    print(f"wrote {out} (names relative to {common_folder(images)})")
    return exit_status(errors, len(images))


def output_stems(names: list[PurePosixPath]) -> list[PurePosixPath]:
    """Where each image's outputs go, before ``_TASK.png``: its relative path without the
    suffix, or with it where that would clash (x.png and x.jpg, or x.png and x.png.jpg)."""
    stems = [name.with_suffix("") for name in names]
    shared = {stem for stem, count in Counter(stems).items() if count > 1} | set(names)
    return [name if stem in shared else stem for name, stem in zip(names, stems)]


def predict_image(
    network: torch.nn.Module,
    tasks: list[Task],
    pixels: np.ndarray,
    device: torch.device,
    max_size: int,
    out: Path,
    stem: PurePosixPath,
) -> dict[str, object]:
    """Run ``network`` on one uint8 RGB image; write its dense outputs at the image's size under
    ``out`` and return its entry of predictions.json."""
    import torch

    from nddr.data.image_file import fit_within
    from nddr.data.transforms import JointTransform

    image = JointTransform({}, train=False)({"image": pixels})["image"][None]
    with torch.no_grad():
        outputs = network(fit_within(image, max_size).to(device))
    entry: dict[str, object] = {}
    for task in tasks:
        output = outputs[task.name].float()
        if task.dense:
            # Channels last: upsampling, argmax and normalising over channels run several times
            # faster at a photo's full size, and the normals come out as (H, W, 3) already.
            output = output.contiguous(memory_format=torch.channels_last)
        prediction = task.predict(output, pixels.shape[:2] if task.dense else None)[0].cpu()
        entry[task.name] = task.save_prediction(output, prediction, out, stem)
    return entry


def exit_status(errors: list[str], total: int) -> int:
    """0 if every image was predicted; 1 (saying how many failed) if some were; an error if
    none was."""
    from nddr.errors import NddrError

    if not errors:
        return 0
    if len(errors) == total:
        raise NddrError(
            f"no image could be predicted ({total} of {total} failed; the first: {errors[0]})"
        )
    print(
        f"nddr predict: {len(errors)} of {total} images could not be predicted (warnings above; "
        'their "error" entries in predictions.json)',
        file=sys.stderr,
    )
    return 1
