"""IMDB-WIKI faces with age and gender labels, read from the dataset's own ``.mat`` metadata.

NDDR-CNN (Gao et al., CVPR 2019, §5.2) trains age estimation (100-way classification over ages
0..99) jointly with gender classification on IMDB-WIKI (Rothe et al.). Users download the data
themselves (``imdb_crop.tar`` or ``wiki_crop.tar``); the folder holding ``imdb.mat`` or
``wiki.mat`` is the dataset root and the images lie below it at the ``full_path`` of each row.

The metadata is a MATLAB v5 struct (``imdb`` or ``wiki``) of 1xN fields: ``dob`` (MATLAB serial
date number), ``photo_taken`` (year), ``full_path`` (cell of relative paths), ``gender`` (1 male,
0 female, NaN unknown), ``face_location`` (cell of [x1 y1 x2 y2], MATLAB 1-based pixels),
``face_score`` (-Inf: no face found), ``second_face_score`` (NaN: no second face) and
``celeb_id`` (imdb) or ``name`` (wiki), which identify the subject.

As in the paper, rows are kept if the image has exactly one face, the gender is known and the
age is within 0..99 (``stats`` records how many rows each rule dropped), and the subjects (not
the images) are split: a seeded permutation of the sorted subject ids sends ``eval_subjects``
subjects to ``test`` and the rest to ``train``, so no person is in both. The paper reports
187,103 images of 12,325 subjects after filtering and 2,000 evaluation subjects.

Ages follow the dataset's documented convention, which assumes a photo was taken in the middle
of its year: age = completed years on 1 July of ``photo_taken`` (``age_rule="midyear"``; the
authors' MATLAB formula ``datevec(datenum(photo_taken, 7, 1) - dob)`` agrees except for births
within a day or two of 1 July). ``age_rule="year"`` gives ``photo_taken`` minus the birth year.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from PIL import Image

from nddr.data.base import MultiTaskDataset, RawSample, TargetSpec, Transform
from nddr.data.files import read_image, require_dir, require_file
from nddr.errors import NddrError
from nddr.io import PathLike

STRUCTS = ("imdb", "wiki")
AGE_RULES = ("midyear", "year")
NUM_AGES = 100
NUMERIC_FIELDS = ("dob", "photo_taken", "gender", "face_score", "second_face_score")
CELL_FIELDS = ("full_path", "face_location")
DROP_REASONS = (
    "bad_date",
    "no_face",
    "multiple_faces",
    "unknown_gender",
    "age_out_of_range",
    "no_subject",
    "bad_face_box",
)
"""Filter rules in the order they are applied; a dropped row is counted under the first rule it
fails. ``bad_date``: dob or photo_taken missing or outside years 1..9999; ``no_face``: face_score
not finite; ``multiple_faces``: second_face_score not NaN; ``unknown_gender``: gender not 0 or 1;
``age_out_of_range``: age outside 0..99; ``no_subject``: empty name (wiki); ``bad_face_box``:
face_location not finite or of zero size."""

_DATENUM_1970 = 719529  # MATLAB datenum of 1970-01-01, numpy's datetime64 epoch
_DATENUM_YEAR_1 = 367  # datenum(1, 1, 1): MATLAB's year 0 is a leap year
_DATENUM_YEAR_10000 = 3652426  # datenum(10000, 1, 1)
_TABLE_MEMO: OrderedDict[tuple, IMDBWikiTable] = OrderedDict()
_TABLE_MEMO_SIZE = 2


def datenum_to_datetime(datenum: float) -> datetime:
    """A MATLAB serial date number as a datetime (datenum 1 = 0000-01-01, so 367 = 0001-01-01);
    the fractional part is the time of day."""
    day = int(np.floor(datenum))
    if not np.isfinite(datenum) or not _DATENUM_YEAR_1 <= day < _DATENUM_YEAR_10000:
        raise NddrError(f"MATLAB date number {datenum!r} is outside the years 1..9999")
    return datetime.fromordinal(day - 366) + timedelta(days=float(datenum) - day)


def datenum_to_datetime64(datenum: np.ndarray) -> np.ndarray:
    """MATLAB serial date numbers as ``datetime64[D]`` (vectorised); NaN and dates outside the
    years 1..9999 become NaT."""
    datenum = np.asarray(datenum, dtype=np.float64)
    valid = np.isfinite(datenum) & (datenum >= _DATENUM_YEAR_1) & (datenum < _DATENUM_YEAR_10000)
    days = np.where(valid, np.floor(np.where(valid, datenum, 0.0)), 0).astype(np.int64)
    dates = (days - _DATENUM_1970).astype("datetime64[D]")
    dates[~valid] = np.datetime64("NaT")
    return dates


def ages_at_photo(
    dob: np.ndarray, photo_taken: np.ndarray, rule: str = "midyear"
) -> tuple[np.ndarray, np.ndarray]:
    """Age in years of each row and whether it could be computed (valid dob and photo year).

    ``rule="midyear"``: completed years on 1 July of ``photo_taken`` (the dataset's convention);
    ``rule="year"``: ``photo_taken`` minus the birth year.
    """
    if rule not in AGE_RULES:
        raise NddrError(f"unknown age_rule {rule!r}: use one of {', '.join(AGE_RULES)}")
    birth = datenum_to_datetime64(dob)
    taken = np.asarray(photo_taken, dtype=np.float64)
    valid = ~np.isnat(birth) & np.isfinite(taken) & (taken >= 1) & (taken <= 9999)
    birth_year = birth.astype("datetime64[Y]")
    age = np.where(valid, taken, 0).astype(np.int64) - (birth_year.astype(np.int64) + 1970)
    if rule == "midyear":
        month = (birth.astype("datetime64[M]") - birth_year.astype("datetime64[M]")).astype(
            np.int64
        ) + 1
        day = (birth - birth.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64) + 1
        age -= (month > 7) | ((month == 7) & (day > 1))
    return np.where(valid, age, -1), valid


@dataclass
class IMDBWikiTable:
    """The kept rows of an IMDB-WIKI ``.mat``: relative image paths, labels, subject ids, face
    boxes as 0-based half-open pixel boxes (left, top, right, bottom), and the filter counts."""

    path: Path
    struct: str
    paths: np.ndarray
    ages: np.ndarray
    genders: np.ndarray
    subjects: np.ndarray
    boxes: np.ndarray
    stats: dict = field(default_factory=dict)


def read_imdb_wiki_mat(mat: PathLike, age_rule: str = "midyear") -> IMDBWikiTable:
    """Read and filter an ``imdb.mat`` / ``wiki.mat`` (see the module docstring for the rules).

    Numeric fields are filtered vectorised over all rows; the cells (paths, boxes, names) are
    unpacked only for rows that survive the numeric rules. Results are memoised per file (path,
    size, modification time) so building the train and test splits parses the file once.
    """
    path = require_file(
        mat,
        "IMDB-WIKI metadata file",
        "pass the imdb.mat or wiki.mat that comes inside imdb_crop.tar / wiki_crop.tar",
    )
    if age_rule not in AGE_RULES:
        raise NddrError(f"unknown age_rule {age_rule!r}: use one of {', '.join(AGE_RULES)}")
    status = path.stat()
    key = (str(path.resolve()), status.st_size, status.st_mtime_ns, age_rule)
    if key in _TABLE_MEMO:
        _TABLE_MEMO.move_to_end(key)
        return _TABLE_MEMO[key]
    struct, record = _load_struct(path)
    table = _parse(path, struct, record, age_rule)
    _TABLE_MEMO[key] = table
    while len(_TABLE_MEMO) > _TABLE_MEMO_SIZE:
        _TABLE_MEMO.popitem(last=False)
    return table


def split_subjects(subjects: np.ndarray, eval_subjects: int, seed: int) -> np.ndarray:
    """Which rows are in the test split: a seeded permutation of the sorted unique subject ids
    puts its first ``eval_subjects`` subjects in test (deterministic and subject-disjoint)."""
    unique = np.unique(subjects)
    if len(unique) < eval_subjects + 1:
        raise NddrError(
            f"IMDB-WIKI has {len(unique)} subjects after filtering, too few for "
            f"eval_subjects={eval_subjects} plus a training set: lower eval_subjects"
        )
    order = np.random.default_rng(seed).permutation(len(unique))
    return np.isin(subjects, unique[order[:eval_subjects]])


class IMDBWiki(MultiTaskDataset):
    """IMDB-WIKI face crops with targets ``age`` (0..99, 100 classes) and ``gender`` (0 female,
    1 male), split by subject. ``stats`` holds the filter and split counts."""

    def __init__(
        self,
        root: PathLike,
        split: str = "train",
        transform: Transform | None = None,
        tasks: list[str] | None = None,
        *,
        mat: PathLike | None = None,
        eval_subjects: int = 2000,
        seed: int = 0,
        image_size: int = 224,
        margin: float = 0.4,
        age_rule: str = "midyear",
    ) -> None:
        super().__init__(transform)
        self.check_split(split)
        _require_int("eval_subjects", eval_subjects, 0)
        _require_int("seed", seed, 0)
        _require_int("image_size", image_size, 1)
        if (
            isinstance(margin, bool)
            or not isinstance(margin, (int, float))
            or not 0 <= margin < 1e3
        ):
            raise NddrError(f"IMDBWiki margin must be a number >= 0, got {margin!r}")
        self.root = require_dir(
            root, "IMDB-WIKI root", "pass the folder holding imdb.mat or wiki.mat and the images"
        )
        self.split = split
        self.image_size = int(image_size)
        self.margin = float(margin)
        self.targets = {
            "age": TargetSpec("age", NUM_AGES),
            "gender": TargetSpec("classification", 2, ("female", "male")),
        }
        self.select_targets(tasks)
        self.mat_path = self.root / mat if mat is not None else _find_mat(self.root)
        table = read_imdb_wiki_mat(self.mat_path, age_rule)
        in_test = split_subjects(table.subjects, int(eval_subjects), int(seed))
        rows = np.flatnonzero(in_test if split == "test" else ~in_test)
        if len(rows) == 0:
            raise NddrError(
                f"IMDBWiki split {split!r} of {str(self.mat_path)!r} is empty "
                f"(eval_subjects={eval_subjects}): raise eval_subjects"
            )
        self.paths = table.paths[rows]
        self.ages = table.ages[rows]
        self.genders = table.genders[rows]
        self.subjects = table.subjects[rows]
        self.boxes = table.boxes[rows]
        self.stats = {
            **table.stats,
            "dropped": dict(table.stats["dropped"]),
            "train_subjects": table.stats["subjects"] - int(eval_subjects),
            "test_subjects": int(eval_subjects),
            "train_images": int((~in_test).sum()),
            "test_images": int(in_test.sum()),
        }

    def __len__(self) -> int:
        return len(self.paths)

    def source(self, index: int) -> str:
        """The image file of sample ``index``."""
        return str(self.root / str(self.paths[index]))

    def load_raw(self, index: int) -> RawSample:
        """{"image": uint8 (image_size, image_size, 3) face crop, "age": int, "gender": int}."""
        path = require_file(
            self.source(index),
            "IMDB-WIKI image",
            f"{self.mat_path.name} lists it as full_path; the images must lie under "
            f"{str(self.root)!r} as extracted from the IMDB-WIKI archive",
        )
        image = Image.fromarray(read_image(path))
        left, top, right, bottom = self.boxes[index]
        pad_x, pad_y = self.margin * (right - left), self.margin * (bottom - top)
        # PIL fills the part of a crop box outside the image with black.
        corners = np.round([left - pad_x, top - pad_y, right + pad_x, bottom + pad_y])
        box = tuple(int(v) for v in corners)
        face = image.crop(box).resize((self.image_size, self.image_size), Image.BILINEAR)
        sample: RawSample = {"image": np.array(face)}
        if "age" in self.targets:
            sample["age"] = int(self.ages[index])
        if "gender" in self.targets:
            sample["gender"] = int(self.genders[index])
        return sample


def _find_mat(root: Path) -> Path:
    found = [root / f"{name}.mat" for name in STRUCTS if (root / f"{name}.mat").is_file()]
    if not found:
        raise NddrError(
            f"no imdb.mat or wiki.mat in {str(root)!r}: pass the imdb_crop/ or wiki_crop/ folder "
            "of IMDB-WIKI as root, or the metadata file as mat="
        )
    if len(found) > 1:
        raise NddrError(
            f"{str(root)!r} holds both imdb.mat and wiki.mat: choose one with mat='imdb.mat' "
            "or mat='wiki.mat'"
        )
    return found[0]


def _load_struct(path: Path) -> tuple[str, np.void]:
    """The ``imdb`` or ``wiki`` struct of a MATLAB v5 file, as loaded by ``scipy.io.loadmat``."""
    try:
        from scipy.io import loadmat, whosmat
        from scipy.io.matlab import MatReadError
    except ImportError:
        raise NddrError("IMDB-WIKI needs scipy to read .mat files: pip install scipy") from None
    unreadable = (MatReadError, ValueError, OSError, EOFError, TypeError, KeyError, zlib.error)
    try:
        variables = {name: kind for name, _, kind in whosmat(path)}
        names = [name for name in STRUCTS if name in variables]
        loaded = loadmat(path, variable_names=names[:1]) if names else {}
    except NotImplementedError:
        raise NddrError(
            f"IMDB-WIKI metadata file {str(path)!r} is a MATLAB v7.3 (HDF5) file: use the "
            "original imdb.mat / wiki.mat or re-save it in MATLAB with save(..., '-v7')"
        ) from None
    except unreadable as error:
        raise NddrError(
            f"IMDB-WIKI metadata file {str(path)!r} is not a readable MATLAB v5 .mat file "
            f"({error}): download imdb_crop.tar / wiki_crop.tar again"
        ) from None
    if not names:
        found = ", ".join(sorted(variables)) or "no variables"
        raise NddrError(
            f"IMDB-WIKI metadata file {str(path)!r} has no 'imdb' or 'wiki' struct ({found}): "
            "pass the imdb.mat or wiki.mat of IMDB-WIKI"
        )
    name = names[0]
    record = loaded.get(name)
    if not isinstance(record, np.ndarray) or record.dtype.names is None or record.size < 1:
        raise NddrError(
            f"IMDB-WIKI metadata file {str(path)!r}: {name!r} is a {variables[name]}, not a "
            "struct: pass the imdb.mat or wiki.mat of IMDB-WIKI"
        )
    return name, record.flat[0]


def _parse(path: Path, struct: str, record: np.void, age_rule: str) -> IMDBWikiTable:
    where = f"IMDB-WIKI metadata file {str(path)!r}"
    names = record.dtype.names
    subject_field = "celeb_id" if "celeb_id" in names else "name"
    missing = [name for name in (*NUMERIC_FIELDS, *CELL_FIELDS) if name not in names]
    if subject_field not in names:
        missing.append("celeb_id (imdb) or name (wiki)")
    if missing:
        raise NddrError(
            f"{where}: struct {struct!r} lacks the field(s) {', '.join(missing)}: "
            "pass the unmodified imdb.mat or wiki.mat of IMDB-WIKI"
        )
    columns = {name: _row(record[name], name, where) for name in (*NUMERIC_FIELDS, *CELL_FIELDS)}
    columns[subject_field] = _row(record[subject_field], subject_field, where)
    total = len(columns["dob"])
    for name, column in columns.items():
        if len(column) != total:
            raise NddrError(
                f"{where}: field {name} has {len(column)} entries but dob has {total}: "
                "the file is damaged, download it again"
            )
    numeric = {name: _numeric(columns[name], name, where) for name in NUMERIC_FIELDS}
    ages, dated = ages_at_photo(numeric["dob"], numeric["photo_taken"], age_rule)
    gender = numeric["gender"]
    rules = {
        "bad_date": ~dated,
        "no_face": ~np.isfinite(numeric["face_score"]),
        "multiple_faces": ~np.isnan(numeric["second_face_score"]),
        "unknown_gender": ~((gender == 0) | (gender == 1)),
        "age_out_of_range": (ages < 0) | (ages >= NUM_AGES),
    }
    keep = np.ones(total, dtype=bool)
    dropped = {}
    for reason, fails in rules.items():
        dropped[reason] = int((keep & fails).sum())
        keep &= ~fails
    rows = np.flatnonzero(keep)

    if subject_field == "celeb_id":
        subjects = _numeric(columns["celeb_id"], "celeb_id", where)[rows]
        has_subject = np.isfinite(subjects)
        subjects = np.where(has_subject, subjects, 0).astype(np.int64)
    else:
        subjects = _strings(columns["name"][rows], rows, "name", where, allow_empty=True)
        has_subject = subjects != ""
    dropped["no_subject"] = int((~has_subject).sum())
    rows, subjects = rows[has_subject], subjects[has_subject]

    corners = _boxes(columns["face_location"][rows], rows, where)
    left, top, right, bottom = (corners[:, k] for k in range(4))
    good_box = np.isfinite(corners).all(axis=1) & (right > left) & (bottom > top)
    dropped["bad_face_box"] = int((~good_box).sum())
    rows, subjects, corners = rows[good_box], subjects[good_box], corners[good_box]
    # MATLAB's img(y1:y2, x1:x2) in 0-based half-open pixel coordinates.
    boxes = corners - np.array([1.0, 1.0, 0.0, 0.0])

    paths = _strings(columns["full_path"][rows], rows, "full_path", where, allow_empty=False)
    stats = {
        "file": str(path),
        "struct": struct,
        "total": total,
        "kept": len(rows),
        "dropped": dropped,
        "subjects": len(np.unique(subjects)),
    }
    return IMDBWikiTable(
        path=path,
        struct=struct,
        paths=paths,
        ages=ages[rows],
        genders=gender[rows].astype(np.int64),
        subjects=subjects,
        boxes=boxes,
        stats=stats,
    )


def _row(value: np.ndarray, name: str, where: str) -> np.ndarray:
    """A 1xN (or Nx1) struct field as a 1-D array."""
    value = np.asarray(value)
    if value.ndim > 2 or (value.ndim == 2 and min(value.shape) > 1):
        raise NddrError(
            f"{where}: field {name} has shape {value.shape}, expected 1xN: "
            "pass the unmodified imdb.mat or wiki.mat of IMDB-WIKI"
        )
    return value.ravel()


def _numeric(column: np.ndarray, name: str, where: str) -> np.ndarray:
    if column.dtype.kind not in "biuf":
        raise NddrError(
            f"{where}: field {name} holds {column.dtype} values, expected numbers: "
            "pass the unmodified imdb.mat or wiki.mat of IMDB-WIKI"
        )
    return column.astype(np.float64)


def _strings(
    cells: np.ndarray, rows: np.ndarray, name: str, where: str, allow_empty: bool
) -> np.ndarray:
    """A cell array of MATLAB strings (each loaded as a 1-element str array) as a str array."""
    if cells.dtype.kind == "U":  # a char matrix row per entry (not the real files, but harmless)
        strings = cells
    else:
        try:
            strings = np.concatenate(cells) if len(cells) else np.array([], dtype=str)
        except ValueError:
            strings = None
        if strings is None or len(strings) != len(cells) or strings.dtype.kind != "U":
            strings = np.array([_string(cell, row, name, where) for cell, row in zip(cells, rows)])
    if not allow_empty and len(strings) and (strings == "").any():
        row = int(rows[np.flatnonzero(strings == "")[0]])
        raise NddrError(f"{where}: {name} of row {row + 1} is empty: the file is damaged")
    return strings.astype(str)


def _string(cell: object, row: int, name: str, where: str) -> str:
    value = np.asarray(cell)
    if value.size == 0:
        return ""
    if value.dtype.kind != "U" or value.size != 1:
        raise NddrError(
            f"{where}: {name} of row {row + 1} is a {value.dtype} array of shape {value.shape}, "
            "not a string: the file is damaged"
        )
    return str(value.item())


def _boxes(cells: np.ndarray, rows: np.ndarray, where: str) -> np.ndarray:
    """The face_location cells (each a 1x4 [x1 y1 x2 y2]) as float (K, 4)."""
    if len(cells) == 0:
        return np.zeros((0, 4))
    try:
        boxes = np.concatenate(cells).astype(np.float64)
        if boxes.shape == (len(cells), 4):
            return boxes
    except (ValueError, TypeError):
        pass
    boxes = np.zeros((len(cells), 4))
    for k, (cell, row) in enumerate(zip(cells, rows)):
        value = np.asarray(cell)
        if value.size != 4 or value.dtype.kind not in "biuf":
            raise NddrError(
                f"{where}: face_location of row {row + 1} has shape {value.shape} "
                f"({value.dtype}), expected the 4 numbers [x1 y1 x2 y2]: the file is damaged"
            )
        boxes[k] = value.ravel()
    return boxes


def _require_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise NddrError(f"IMDBWiki {name} must be an integer >= {minimum}, got {value!r}")


__all__ = [
    "IMDBWiki",
    "IMDBWikiTable",
    "ages_at_photo",
    "datenum_to_datetime",
    "datenum_to_datetime64",
    "read_imdb_wiki_mat",
    "split_subjects",
]
