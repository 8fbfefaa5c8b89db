"""What a benchmark reader returns: a `Split` (image paths, labels, ground-truth regions) and the
checks every reader shares. The readers themselves are in `syncxr.benchmarks.<name>`.

Each reader takes the benchmark's root directory and one split file and returns a `Split`: image
paths, 0/1 labels for the chosen classes and, where the benchmark has them, ground-truth regions
(boxes, RLE masks or mask files). Bad input fails early with the file and the row named: a missing
split file, a missing column, a malformed cell, a missing image. With `on_error="skip"` a missing
image is a counted skip instead (`Split.skipped`); images that exist but cannot be decoded are found
(and, with skip, counted) when they are loaded, see `syncxr.eval.embeddings`. An image or mask path
that leaves the benchmark root (absolute, "..", a symbolic link to elsewhere) is refused, naming the
row, unless the reader is given `allow_external_images=True` (`benchmark.<name>.allow_external_images`).

Rows are numbered from 0 over the data rows of the split file (the header is not a row).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ..config_choices import ON_ERROR
from .confined_paths import OutsideRootError, RootConfinement
from .image_io import load_image
from .rle import decode_rles

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- ground-truth regions
@dataclass(frozen=True)
class Boxes:
    """Boxes `(x, y, w, h)` in a `frame` (W, H) coordinate system (RSNA: 1024 x 1024), or in the
    image's own pixels when `frame` is None. No boxes: a negative image."""

    boxes: tuple[tuple[float, float, float, float], ...] = ()
    frame: tuple[int, int] | None = None

    def mask(self, shape: tuple[int, int]) -> np.ndarray:
        h, w = shape
        out = np.zeros((h, w), dtype=bool)
        sx, sy = (1.0, 1.0) if self.frame is None else (w / self.frame[0], h / self.frame[1])
        for x, y, bw, bh in self.boxes:
            x0, y0 = int(np.floor(x * sx)), int(np.floor(y * sy))
            x1, y1 = int(np.ceil((x + bw) * sx)), int(np.ceil((y + bh) * sy))
            out[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] = True
        return out


@dataclass(frozen=True)
class RleMasks:
    """Run-length encoded masks of one image (several rows of a SIIM split file), decoded at the
    image's native size."""

    rles: tuple[str, ...] = ()
    mode: str = "relative"

    def mask(self, shape: tuple[int, int]) -> np.ndarray:
        return decode_rles(self.rles, shape, self.mode)


@dataclass(frozen=True)
class MaskFile:
    """A mask image (non-zero = inside), resized with nearest neighbour to the image if needed."""

    path: Path

    def mask(self, shape: tuple[int, int]) -> np.ndarray:
        try:
            with Image.open(self.path) as im:
                m = im.convert("L")
                if m.size != (shape[1], shape[0]):
                    m = m.resize((shape[1], shape[0]), Image.NEAREST)
                return np.asarray(m) > 0
        except (OSError, ValueError) as e:
            raise ValueError(f"mask {self.path} could not be decoded: {e}") from e


# --------------------------------------------------------------------------- splits
@dataclass
class Split:
    """One split of a benchmark: what a task needs to score a model on it."""

    source: Path  # the split file
    ids: list[str]
    paths: list[Path]
    rows: list[int]  # row of each image in the split file (for error messages)
    classes: list[str]
    labels: np.ndarray  # N x C, 0/1
    regions: list | None = None  # per image: Boxes | RleMasks | MaskFile, or None (no regions)
    skipped: int = 0  # rows left out (missing images, with on_error="skip")
    skipped_rows: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, index) -> Split:
        index = [int(i) for i in index]
        return replace(
            self,
            ids=[self.ids[i] for i in index],
            paths=[self.paths[i] for i in index],
            rows=[self.rows[i] for i in index],
            labels=self.labels[index],
            regions=None if self.regions is None else [self.regions[i] for i in index],
        )

    def where(self, keep: np.ndarray) -> Split:
        """The rows where `keep` is true; the others are counted as skipped."""
        keep = np.asarray(keep, dtype=bool)
        out = self.subset(np.flatnonzero(keep))
        out.skipped = self.skipped + int((~keep).sum())
        out.skipped_rows = self.skipped_rows + [self.rows[i] for i in np.flatnonzero(~keep)]
        return out

    def load(self, i: int):
        """The uint8 1xHxW image of item i; a failure names the split file and the row."""
        try:
            return load_image(self.paths[i])
        except (FileNotFoundError, ValueError) as e:
            raise type(e)(f"{self.source}: row {self.rows[i]}: {e}") from e

    def mask(self, i: int, shape: tuple[int, int]) -> np.ndarray:
        if self.regions is None:
            raise ValueError(f"{self.source}: this benchmark has no ground-truth regions")
        try:
            return self.regions[i].mask(shape)
        except ValueError as e:
            raise ValueError(f"{self.source}: row {self.rows[i]}: {e}") from e


def check_on_error(on_error: str) -> None:
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")


def split_file_path(root: str | Path, split_file: str, what: str) -> tuple[Path, Path]:
    root = Path(root)
    path = root / split_file
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} split file not found")
    return root, path


@dataclass(frozen=True)
class RowChecks:
    """How a reader checks the rows of a split file (`finish_split`): their images (and mask files)
    must stay inside the benchmark `root` unless `allow_external_images`; a missing image fails naming
    its row, or with `on_error="skip"` is a counted skip."""

    root: Path
    on_error: str = "raise"
    allow_external_images: bool = False

    def __post_init__(self):
        check_on_error(self.on_error)

    def confinement(self) -> RootConfinement:
        return RootConfinement(self.root, self.allow_external_images, what="benchmark root")


def read_csv(path: Path, what: str, **kw) -> pd.DataFrame:
    """The split file's rows; an unreadable file, or one without data rows, fails naming it."""
    try:
        df = pd.read_csv(path, **kw)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a readable {what} CSV: {e}") from e
    df.columns = [str(c).strip() for c in df.columns]  # Kaggle's "ImageId, EncodedPixels"
    if len(df) == 0:  # a header alone: nothing to score, and every task downstream would fail obscurely
        raise ValueError(f"{path}: the {what} split file has no rows (columns {list(df.columns)})")
    return df


def require_columns(df: pd.DataFrame, columns, path: Path) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; has {list(df.columns)}")


def binary_labels(df: pd.DataFrame, classes: list[str], path: Path, uncertain: float | None = None) -> np.ndarray:
    """0/1 label columns; blank is 0. `uncertain` maps CheXpert's -1 (None: -1 is an error)."""
    labels = df[list(classes)].apply(pd.to_numeric, errors="coerce")
    raw = df[list(classes)]
    bad_text = labels.isna() & raw.notna() & (raw.astype(str).apply(lambda s: s.str.strip()) != "")
    if bad_text.any().any():
        i = int(bad_text.any(axis=1).to_numpy().nonzero()[0][0])
        raise ValueError(f"{path}: row {i} has a non-numeric label: {raw.iloc[i].to_dict()}")
    labels = labels.fillna(0)
    if uncertain is not None:
        labels = labels.replace(-1, uncertain)
    bad = ~labels.isin([0, 1]).all(axis=1)
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        raise ValueError(f"{path}: row {i} has a label other than 0/1: {labels.iloc[i].to_dict()}")
    return labels.to_numpy(dtype=np.int64)


def finish_split(source: Path, ids, paths, classes, labels, regions, rows=None, *, checks: RowChecks) -> Split:
    """Checks that every image (and mask file) stays inside the benchmark root, which fails naming
    the row, and that every image exists: a missing one fails naming the row, or is a counted skip
    (`checks.on_error`)."""
    inside, on_error = checks.confinement(), checks.on_error
    if not paths:
        raise ValueError(f"{source}: no rows")
    rows = list(range(len(paths))) if rows is None else list(rows)
    for i, p in enumerate(paths):
        files = [p] + ([regions[i].path] if regions is not None and isinstance(regions[i], MaskFile) else [])
        for f in files:
            try:
                inside.check(f)
            except OutsideRootError as e:
                raise ValueError(
                    f"{source}: row {rows[i]}: {'image' if f is p else 'mask'} {e}; "
                    "benchmark.<name>.allow_external_images=true reads it anyway"
                ) from None
    split = Split(
        source=source,
        ids=[str(i) for i in ids],
        paths=list(paths),
        rows=rows,
        classes=list(classes),
        labels=np.asarray(labels, dtype=np.int64).reshape(len(paths), len(classes)),
        regions=regions,
    )
    exists = np.array([p.is_file() for p in split.paths], dtype=bool)
    if not exists.all() and on_error == "raise":
        i = int(np.flatnonzero(~exists)[0])
        raise FileNotFoundError(
            f"{source}: row {rows[i]}: image {split.paths[i]} not found "
            f"({int((~exists).sum())} missing in all; on_error=skip leaves them out)"
        )
    if not exists.any():
        raise FileNotFoundError(f"{source}: none of its {len(paths)} images exists, e.g. {split.paths[0]}")
    if not exists.all():
        missing = np.flatnonzero(~exists)
        shown = ", ".join(f"row {rows[i]} {split.paths[i]}" for i in missing[:5])
        log.warning(
            "%s: %d rows left out (on_error=skip), image missing: %s%s",
            source,
            len(missing),
            shown,
            " ..." if len(missing) > 5 else "",
        )
    return split if exists.all() else split.where(exists)


def image_path(root: Path, value, path: Path, row: int) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{path}: row {row} has an empty image path")
    p = Path(value.strip())
    return p if p.is_absolute() else root / p
