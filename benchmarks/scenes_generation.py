"""How fast the built-in Scenes dataset is generated.

Times :func:`nddr.data.scenes.generate_scenes` (rendering only, no cache), then building the
:class:`~nddr.data.scenes.Scenes` dataset in a temporary cache directory (rendering + writing the
``.npz``) and loading it again from that cache.

    python benchmarks/scenes_generation.py --num 2000 --size 64
"""

from __future__ import annotations

import argparse
import tempfile
import time

from nddr.data.scenes import Scenes, generate_scenes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=2000, help="number of images")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    start = time.perf_counter()
    generate_scenes(args.num, args.size, args.seed)
    seconds = time.perf_counter() - start
    print(
        f"generate: {args.num} images at {args.size}x{args.size} in {seconds:.2f} s "
        f"({args.num / seconds:.0f} images/s)"
    )

    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        Scenes(root, size=args.size, num_images=args.num, seed=args.seed)
        built = time.perf_counter() - start
        start = time.perf_counter()
        Scenes(root, size=args.size, num_images=args.num, seed=args.seed)
        loaded = time.perf_counter() - start
    print(f"dataset: generate + write cache {built:.2f} s, load from cache {loaded:.2f} s")


if __name__ == "__main__":
    main()
