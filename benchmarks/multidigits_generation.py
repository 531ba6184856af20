"""How fast the built-in MultiDigits dataset is generated and reloaded from its cache.

Usage: ``python benchmarks/multidigits_generation.py --num 10000 --size 32``. Generates into a
temporary folder (the user's cache is not touched), then loads the same dataset again from the
``.npz`` cache. Prints the one-off cost of importing scikit-learn, then seconds and images/s of
generation (including writing the cache) and of the cached reload.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from nddr.data.multidigits import MultiDigits, load_source_digits


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments, time generation and cached reload, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=10000, help="images to generate")
    parser.add_argument("--size", type=int, default=32, help="digit size (image is size x 2size)")
    parser.add_argument("--split", default="train", choices=["train", "test"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    load_source_digits()
    sources = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        dataset = MultiDigits(root, args.split, num_images=args.num, seed=args.seed, size=args.size)
        generated = time.perf_counter() - start
        start = time.perf_counter()
        MultiDigits(root, args.split, num_images=args.num, seed=args.seed, size=args.size)
        cached = time.perf_counter() - start
        megabytes = dataset.cache_path.stat().st_size / 2**20
    shape = "x".join(map(str, dataset.images.shape[1:]))
    print(f"MultiDigits {args.split}: {args.num} images of {shape}")
    print(f"import scikit-learn + load the 1,797 source digits (once per process): {sources:.3f} s")
    print(f"generate + write cache: {generated:.3f} s, {args.num / generated:,.0f} images/s")
    print(f"load from cache:        {cached:.3f} s, {args.num / cached:,.0f} images/s")
    print(f"cache file:             {megabytes:.1f} MiB")


if __name__ == "__main__":
    main()
