"""MultiDigits: a built-in two-task dataset of real handwriting that needs no download.

NDDR-CNN (Gao et al., CVPR 2019) is evaluated on large benchmarks (§5: NYU v2, IMDB-WIKI) that
users must fetch themselves. For quick experiments, tutorials and tests the package ships a small
multi-task problem built from real handwriting: each image holds two handwritten digits from
scikit-learn's bundled digits set (1,797 8x8 images, part of the wheel), side by side, and the two
tasks are to classify the ``left`` and the ``right`` digit (10 classes each). The tasks share the
low-level features (strokes) but need different spatial attention, which is the setting that
layerwise feature fusion (NDDR layers) is designed for.

The 1,797 source digits are split once, with a fixed seed and stratified by class, into train
(80%) and test (20%) sources; the pairs of a split are drawn only from that split's sources, so no
test image contains a handwritten digit seen in training (``source_indices`` and ``pairs`` expose
this). Every image is composed with random scale, position, colours and mild noise, vectorised in
NumPy, deterministic per ``seed``, and cached as ``.npz`` in :func:`nddr.data.files.cache_dir`.
"""

from __future__ import annotations

import warnings
import zipfile

import numpy as np

from nddr.data.base import MultiTaskDataset, RawSample, TargetSpec, Transform
from nddr.data.conventions import SPLITS, check_split
from nddr.data.files import cache_dir
from nddr.errors import NddrError
from nddr.io import PathLike, atomic_write

VERSION = 1
"""Version of the generator: bump it whenever the images or the source split change (it keys the
cache, which also stores the source split)."""

DEFAULT_NUM_IMAGES = {"train": 10000, "test": 2000}
TEST_FRACTION = 0.2
SPLIT_SEED = 20190616
"""Seed of the one fixed split of the source digits; independent of the ``seed`` argument so that
train and test sources stay disjoint whatever seeds the two datasets are built with."""

_CACHED = ("images", "pairs", "labels", "source_indices")
_CHUNK = 1024  # images generated per random stream; image i never depends on the count asked for
_SOURCE_SIZE = 8


def load_source_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled handwritten digits: float32 (1797, 8, 8) in 0..1 and int64 labels."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise NddrError(
            "MultiDigits needs scikit-learn (its bundled digits set): pip install scikit-learn"
        ) from None
    digits = load_digits()
    images = (np.asarray(digits.images, dtype=np.float32) / 16.0).clip(0.0, 1.0)
    return images, np.asarray(digits.target, dtype=np.int64)


def source_split(labels: np.ndarray, split: str) -> np.ndarray:
    """Sorted indices into the source digits used by ``split``: a fixed, class-stratified 80/20
    split, so the train and test sources are disjoint and both hold every class."""
    check_split(split, "MultiDigits")
    rng = np.random.default_rng(SPLIT_SEED)
    chosen = []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        num_test = round(len(members) * TEST_FRACTION)
        chosen.append(members[:num_test] if split == "test" else members[num_test:])
    return np.sort(np.concatenate(chosen))


class MultiDigits(MultiTaskDataset):
    """Two real handwritten digits side by side; tasks ``left`` and ``right`` (10 classes each).

    Images are uint8 (size, 2*size, 3) RGB. ``source_indices`` holds the indices (into
    ``sklearn.datasets.load_digits()``) of the source digits of this split, ``pairs`` (N, 2) the
    two sources of every image and ``labels`` (N, 2) their classes.
    """

    def __init__(
        self,
        root: PathLike | None = None,
        split: str = "train",
        transform: Transform | None = None,
        tasks: list[str] | None = None,
        *,
        num_images: int | None = None,
        seed: int = 0,
        size: int = 32,
    ) -> None:
        super().__init__(transform)
        self.check_split(split)
        if num_images is None:
            num_images = DEFAULT_NUM_IMAGES[split]
        _require_int("num_images", num_images, 1)
        _require_int("seed", seed, 0)
        _require_int("size", size, _SOURCE_SIZE)
        self.split = split
        self.num_images = int(num_images)
        self.seed = int(seed)
        self.size = int(size)
        self.targets = {
            "left": TargetSpec("classification", 10),
            "right": TargetSpec("classification", 10),
        }
        self.select_targets(tasks)
        self.cache_path = cache_dir(root) / (
            f"multidigits-{split}-n{self.num_images}-seed{self.seed}-size{self.size}-v{VERSION}.npz"
        )
        # A cache hit needs neither scikit-learn (a second to import) nor the source digits.
        arrays = self._load_cache()
        if arrays is None:
            digits, digit_labels = load_source_digits()
            sources = source_split(digit_labels, split)
            arrays = generate(digits, digit_labels, sources, self.num_images, **self._key())
            self._write_cache(arrays)
        self.source_indices = arrays["source_indices"]
        self.images = arrays["images"]
        self.pairs = arrays["pairs"]
        self.labels = arrays["labels"]

    def __len__(self) -> int:
        return len(self.images)

    def load_raw(self, index: int) -> RawSample:
        """{"image": uint8 (size, 2*size, 3), "left": int, "right": int} (selected tasks only)."""
        sample: RawSample = {"image": self.images[index].copy()}  # transforms may work in place
        left, right = self.labels[index]
        for name, value in (("left", left), ("right", right)):
            if name in self.targets:
                sample[name] = int(value)
        return sample

    def source(self, index: int) -> str:
        left, right = self.pairs[index]
        return f"MultiDigits[{self.split}][{index}] (load_digits images {left} and {right})"

    def _key(self) -> dict[str, int | str]:
        return {"split": self.split, "seed": self.seed, "size": self.size}

    def _load_cache(self) -> dict[str, np.ndarray] | None:
        """The cached arrays, or None if there is no cache or it is unreadable or inconsistent."""
        if not self.cache_path.is_file():
            return None
        try:
            with np.load(self.cache_path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in _CACHED}
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
            return None
        n, size = self.num_images, self.size
        images, pairs, labels = arrays["images"], arrays["pairs"], arrays["labels"]
        if (
            images.dtype != np.uint8
            or images.shape != (n, size, 2 * size, 3)
            or pairs.shape != (n, 2)
            or labels.shape != (n, 2)
            or not ((labels >= 0) & (labels < 10)).all()
            or not np.isin(pairs, arrays["source_indices"]).all()
        ):
            return None
        return arrays

    def _write_cache(self, arrays: dict[str, np.ndarray]) -> None:
        try:
            with atomic_write(self.cache_path) as temp, open(temp, "wb") as handle:
                np.savez(handle, **arrays)
        except OSError as error:
            warnings.warn(
                f"MultiDigits cannot write its cache {str(self.cache_path)!r} ({error}); "
                "the images will be generated again next time (pass root= or set NDDR_CACHE "
                "to a writable folder)",
                stacklevel=3,
            )


def generate(
    digits: np.ndarray,
    digit_labels: np.ndarray,
    source_indices: np.ndarray,
    num_images: int,
    *,
    split: str,
    seed: int,
    size: int,
) -> dict[str, np.ndarray]:
    """Compose ``num_images`` images from pairs of the digits ``source_indices``.

    Returns ``images`` uint8 (N, size, 2*size, 3), ``pairs`` int64 (N, 2) (indices into
    ``digits``), ``labels`` int64 (N, 2) and ``source_indices`` (as given). Images are made in
    chunks with random streams keyed by (seed, split, size, chunk); every chunk draws its
    per-image parameters for a full chunk, so image i is the same whatever ``num_images``.
    """
    # Pad with a zero border so bilinear taps outside the digit read background.
    padded = np.pad(digits, ((0, 0), (1, 1), (1, 1)))
    images = np.empty((num_images, size, 2 * size, 3), dtype=np.uint8)
    pairs = np.empty((num_images, 2), dtype=np.int64)
    split_code = SPLITS.index(split)
    for chunk, start in enumerate(range(0, num_images, _CHUNK)):
        stop = min(start + _CHUNK, num_images)
        key = [seed, split_code, size, chunk, VERSION]
        rng = np.random.default_rng([*key, 0])
        pairs[start:stop] = rng.choice(source_indices, size=(_CHUNK, 2))[: stop - start]
        parameters = rng.random((_CHUNK, _NUM_PARAMETERS))[: stop - start]
        # Noise fills sequentially, so the first images' noise does not depend on the count.
        noise = np.random.default_rng([*key, 1]).standard_normal(
            size=(stop - start, 3, size, 2 * size), dtype=np.float32
        )
        images[start:stop] = _compose(padded, pairs[start:stop], parameters, noise)
    return {
        "images": images,
        "pairs": pairs,
        "labels": digit_labels[pairs],
        "source_indices": np.asarray(source_indices, dtype=np.int64),
    }


_NUM_PARAMETERS = (
    15  # per image, uniform in [0, 1): 4 per digit (scale, aspect, top, left), 7 colour
)


def _compose(
    padded: np.ndarray, pairs: np.ndarray, parameters: np.ndarray, noise: np.ndarray
) -> np.ndarray:
    """Render the digit pairs: per digit a random scale/aspect/offset (bilinear resampling of the
    8x8 source, separable because the map is axis-aligned), then colours and noise."""
    size = noise.shape[2]
    halves = []
    for side in range(2):
        scale, aspect, top, left = (parameters[:, 4 * side + k, None] for k in range(4))
        height = size * (0.65 + 0.35 * scale)
        width = np.minimum(height * (0.8 + 0.35 * aspect), size)
        rows = _tent_weights(top * (size - height), height, size)
        cols = _tent_weights(left * (size - width), width, size)
        halves.append(rows @ padded[pairs[:, side]] @ cols.transpose(0, 2, 1))
    # Channels first while mixing, so the inner loops run over contiguous rows.
    ink = np.concatenate(halves, axis=2).clip(0.0, 1.0)[:, None]
    colours = parameters[:, 8:, None, None].astype(np.float32)
    dark = 0.35 * colours[:, 0:3]
    light = 0.65 + 0.35 * colours[:, 3:6]
    swap = colours[:, 6:7] < 0.5
    foreground = np.where(swap, dark, light)
    background = np.where(swap, light, dark)
    image = ink * (foreground - background)
    image += background
    image += noise * np.float32(0.03)
    np.clip(image, 0.0, 1.0, out=image)
    image *= np.float32(255.0)
    image += np.float32(0.5)
    return image.astype(np.uint8).transpose(0, 2, 3, 1)


def _tent_weights(offset: np.ndarray, extent: np.ndarray, size: int) -> np.ndarray:
    """Bilinear interpolation weights (n, size, 10) mapping ``size`` output pixels onto the padded
    8-pixel source placed at ``offset`` with ``extent`` output pixels."""
    centres = np.arange(size) + 0.5
    source = (centres - offset) / extent * _SOURCE_SIZE + 0.5  # +1 pad, -0.5 pixel centre
    source = source.clip(0.0, _SOURCE_SIZE + 1.0)
    taps = np.arange(_SOURCE_SIZE + 2)
    return np.maximum(0.0, 1.0 - np.abs(source[:, :, None] - taps)).astype(np.float32)


def _require_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise NddrError(f"MultiDigits {name} must be an integer >= {minimum}, got {value!r}")


__all__ = ["MultiDigits", "generate", "load_source_digits", "source_split"]
