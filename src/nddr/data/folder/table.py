"""The CSV table of a ``folder`` dataset's image-level targets: one row per image, one column
per task, keyed by the image's stem (column ``stem``)."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from nddr.data.folder.manifest import ImageLevelTarget
from nddr.errors import NddrError

STEM_COLUMN = "stem"
"""The column naming each row's image (its path below the image folder, without suffix)."""


@dataclass(frozen=True)
class Table:
    """The rows of a CSV by stem, with the line each came from (for error messages)."""

    path: Path
    columns: tuple[str, ...]
    rows: dict[str, tuple[int, dict[str, str]]]

    def label(self, stem: str, column: str, target: ImageLevelTarget) -> int:
        """The class index of ``stem`` in ``column``: an integer 0..C-1 or a class name."""
        text, where = self._cell(stem, column)
        if target.class_names and text in target.class_names:
            return target.class_names.index(text)
        try:
            value = int(text)
        except ValueError:
            names = f" or one of {', '.join(target.class_names)}" if target.class_names else ""
            raise NddrError(
                f"{where}: {column} {text!r} is not a class: use an integer 0..{target.classes - 1}"
                f"{names}"
            ) from None
        if not 0 <= value < target.classes:
            raise NddrError(
                f"{where}: {column} {value} is outside 0..{target.classes - 1}: fix the table or "
                "raise classes in the manifest"
            )
        return value

    def value(self, stem: str, column: str) -> float:
        """The finite real number of ``stem`` in ``column``."""
        text, where = self._cell(stem, column)
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise NddrError(f"{where}: {column} {text!r} is not a finite number: give one")
        return value

    def _cell(self, stem: str, column: str) -> tuple[str, str]:
        """The text of a cell and where it is (``file:line``)."""
        if stem not in self.rows:
            raise NddrError(
                f"table {str(self.path)!r} has no row for {stem!r}: add one (column "
                f"{STEM_COLUMN!r})"
            )
        line, row = self.rows[stem]
        return row[column].strip(), f"{self.path}:{line}"


def read_table(path: Path, columns: list[str]) -> Table:
    """The CSV at ``path``, which must have a ``stem`` column and every one of ``columns``."""
    if not path.is_file():
        raise NddrError(f"table {str(path)!r} does not exist: the manifest's table names it")
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            header = tuple(reader.fieldnames or ())
            missing = [name for name in (STEM_COLUMN, *columns) if name not in header]
            if missing:
                raise NddrError(
                    f"table {str(path)!r} has no column {missing[0]!r} (it has "
                    f"{', '.join(header) or 'none'}): add it or set the task's column"
                )
            rows: dict[str, tuple[int, dict[str, str]]] = {}
            for row in reader:
                line = reader.line_num
                if None in row or any(row[name] is None for name in header):
                    raise NddrError(
                        f"{path}:{line}: expected {len(header)} fields ({', '.join(header)})"
                    )
                stem = row[STEM_COLUMN].strip()
                if stem in rows:
                    raise NddrError(
                        f"{path}:{line}: {stem!r} is listed twice (first on line {rows[stem][0]})"
                    )
                rows[stem] = (line, row)
    except (UnicodeDecodeError, csv.Error) as error:
        raise NddrError(f"table {str(path)!r} is not a readable UTF-8 CSV ({error})") from None
    return Table(path, header, rows)


__all__ = ["STEM_COLUMN", "Table", "read_table"]
