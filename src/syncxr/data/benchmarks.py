"""Readers of downstream benchmark split files, as published (real data and phantom twins alike).

Each reader takes the benchmark's root directory and one split file and returns a `Split`: image
paths, 0/1 labels for the chosen classes and, where the benchmark has them, ground-truth regions
(boxes, RLE masks or mask files). Bad input fails early with the file and the row named: a missing
split file, a missing column, a malformed cell, a missing image. With `on_error="skip"` a missing
image is a counted skip instead (`Split.skipped`); images that exist but cannot be decoded are found
(and, with skip, counted) when they are loaded, see `syncxr.eval.embeddings`.

Rows are numbered from 0 over the data rows of the split file (the header is not a row).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from .image_io import load_image
from .rle import MODES as RLE_MODES, decode_rles

ON_ERROR = ("raise", "skip")


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
            out[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] = True
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

    def subset(self, index) -> "Split":
        index = [int(i) for i in index]
        return replace(self, ids=[self.ids[i] for i in index], paths=[self.paths[i] for i in index],
                       rows=[self.rows[i] for i in index], labels=self.labels[index],
                       regions=None if self.regions is None else [self.regions[i] for i in index])

    def where(self, keep: np.ndarray) -> "Split":
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


def _check_on_error(on_error: str) -> None:
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")


def _split_file(root: str | Path, split_file: str, what: str) -> tuple[Path, Path]:
    root = Path(root)
    path = root / split_file
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} split file not found")
    return root, path


def _read_csv(path: Path, what: str, **kw) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, **kw)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a readable {what} CSV: {e}") from e
    df.columns = [str(c).strip() for c in df.columns]  # Kaggle's "ImageId, EncodedPixels"
    return df


def _require_columns(df: pd.DataFrame, columns, path: Path) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; has {list(df.columns)}")


def _binary_labels(df: pd.DataFrame, classes: list[str], path: Path,
                   uncertain: float | None = None) -> np.ndarray:
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


def _finish(source: Path, ids, paths, classes, labels, regions, on_error: str, rows=None) -> Split:
    """Checks that every image exists: a missing one fails naming the row, or is a counted skip."""
    _check_on_error(on_error)
    rows = list(range(len(paths))) if rows is None else list(rows)
    split = Split(source=source, ids=[str(i) for i in ids], paths=list(paths), rows=rows,
                  classes=list(classes), labels=np.asarray(labels, dtype=np.int64).reshape(len(paths), len(classes)),
                  regions=regions)
    exists = np.array([p.is_file() for p in split.paths], dtype=bool)
    if not exists.all() and on_error == "raise":
        i = int(np.flatnonzero(~exists)[0])
        raise FileNotFoundError(f"{source}: row {rows[i]}: image {split.paths[i]} not found "
                                f"({int((~exists).sum())} missing in all; on_error=skip leaves them out)")
    return split if exists.all() else split.where(exists)


def _image_path(root: Path, value, path: Path, row: int) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{path}: row {row} has an empty image path")
    p = Path(value.strip())
    return p if p.is_absolute() else root / p


# --------------------------------------------------------------------------- readers
def read_chexpert(root: str | Path, split_csv: str, classes: list[str]) -> tuple[list[Path], pd.DataFrame]:
    """CheXpert split file: `Path` + label columns (0/1). Returns image paths and the chosen labels."""
    split = read_chexpert_split(root, split_csv, classes)
    return split.paths, pd.DataFrame(split.labels, columns=list(classes))


def read_chexpert_split(root, split_csv: str, classes: list[str], on_error: str = "raise",
                        uncertain: float | None = None) -> Split:
    """CheXpert (`valid.csv`, `test.csv`, `train.csv`): `Path` + the 14 label columns, 0/1 (blank = 0;
    the training file's -1 "uncertain" needs `uncertain=0` or `1`, the U-Zeros / U-Ones policies).
    `Path` is relative to the root (or absolute); the published files prefix it with the dataset
    folder name, so point `root` at the folder above it."""
    root, csv = _split_file(root, split_csv, "CheXpert")
    df = _read_csv(csv, "CheXpert")
    _require_columns(df, ["Path", *classes], csv)
    labels = _binary_labels(df, classes, csv, uncertain)
    paths = [_image_path(root, v, csv, i) for i, v in enumerate(df["Path"])]
    return _finish(csv, df["Path"], paths, classes, labels, None, on_error)


CHESTXRAY14_CLASSES = ("atelectasis", "cardiomegaly", "effusion", "infiltration", "mass", "nodule",
                       "pneumonia", "pneumothorax", "consolidation", "edema", "emphysema", "fibrosis",
                       "pleural_thickening", "hernia")


def read_chestxray14(root, split_csv: str, classes: list[str], on_error: str = "raise") -> Split:
    """ChestX-ray14: `img_path, Image Index, Finding Label` + the 14 lower-case label columns."""
    root, csv = _split_file(root, split_csv, "ChestX-ray14")
    df = _read_csv(csv, "ChestX-ray14")
    _require_columns(df, ["img_path", "Image Index", "Finding Label", *classes], csv)
    labels = _binary_labels(df, classes, csv)
    paths = [_image_path(root, v, csv, i) for i, v in enumerate(df["img_path"])]
    return _finish(csv, df["Image Index"], paths, classes, labels, None, on_error)


def read_padchest(root, split_csv: str, classes: list[str], on_error: str = "raise") -> Split:
    """PadChest: the image path in column 0 (whatever its name), classes chosen by column name.
    Images are 16-bit PNGs, scaled to 8 bit when loaded."""
    root, csv = _split_file(root, split_csv, "PadChest")
    df = _read_csv(csv, "PadChest")
    if df.shape[1] < 1:
        raise ValueError(f"{csv}: no columns")
    _require_columns(df, classes, csv)
    labels = _binary_labels(df, classes, csv)
    first = df.columns[0]
    paths = [_image_path(root, v, csv, i) for i, v in enumerate(df[first])]
    return _finish(csv, df[first], paths, classes, labels, None, on_error)


def parse_boxes(text, path: Path, row: int) -> tuple[tuple[float, float, float, float], ...]:
    """`x;y;w;h|x;y;w;h` (empty or NaN: no boxes)."""
    if text is None or (isinstance(text, float) and np.isnan(text)) or not str(text).strip():
        return ()
    boxes = []
    for part in str(text).strip().split("|"):
        values = part.split(";")
        try:
            x, y, w, h = (float(v) for v in values)
        except ValueError:
            raise ValueError(f"{path}: row {row}: box {part!r} is not x;y;w;h") from None
        if w <= 0 or h <= 0:
            raise ValueError(f"{path}: row {row}: box {part!r} has a non-positive width or height")
        boxes.append((x, y, w, h))
    return tuple(boxes)


def _parse_classes(text, n_boxes: int, path: Path, row: int) -> int:
    """The `classes` cell: an image label (0/1) or one class per box joined by `|`; any non-zero
    value (or any box) makes the image positive."""
    if text is None or (isinstance(text, float) and np.isnan(text)) or not str(text).strip():
        return int(n_boxes > 0)
    parts = str(text).strip().split("|")
    try:
        values = [int(float(p)) for p in parts]
    except ValueError:
        raise ValueError(f"{path}: row {row}: classes {text!r} is not a 0/1 label or `|`-joined "
                         "class ids") from None
    if len(values) > 1 and len(values) != n_boxes:
        raise ValueError(f"{path}: row {row}: {len(values)} classes for {n_boxes} boxes")
    label = int(any(v != 0 for v in values))
    if n_boxes and not label:
        raise ValueError(f"{path}: row {row}: boxes given but classes {text!r} says negative")
    return label


def read_rsna(root, split_csv: str, classes: list[str] = ("pneumonia",), on_error: str = "raise",
              box_frame: int = 1024) -> Split:
    """RSNA Pneumonia: `ID, img_path, boxes, classes`; boxes `x;y;w;h|...` in `box_frame`-pixel
    coordinates (1024: the published DICOMs' size), empty for negatives; DICOM images."""
    if len(classes) != 1:
        raise ValueError(f"RSNA has one class (pneumonia), got {list(classes)}")
    root, csv = _split_file(root, split_csv, "RSNA")
    df = _read_csv(csv, "RSNA", dtype={"boxes": str, "classes": str}, keep_default_na=False)
    _require_columns(df, ["ID", "img_path", "boxes", "classes"], csv)
    regions, labels = [], []
    for i, (b, c) in enumerate(zip(df["boxes"], df["classes"])):
        boxes = parse_boxes(b, csv, i)
        labels.append(_parse_classes(c, len(boxes), csv, i))
        regions.append(Boxes(boxes, (box_frame, box_frame)))
    paths = [_image_path(root, v, csv, i) for i, v in enumerate(df["img_path"])]
    return _finish(csv, df["ID"], paths, classes, labels, regions, on_error)


def _index_images(image_root: Path, ext: str) -> dict[str, Path]:
    """Image id -> path for every `*<ext>` under `image_root` (flat or nested, as Kaggle's
    `dicom-images-train/<study>/<series>/<id>.dcm`)."""
    if not image_root.is_dir():
        raise FileNotFoundError(f"image directory {image_root} not found")
    return {p.name[: -len(ext)]: p for p in image_root.rglob(f"*{ext}")}


def read_siim(root, split_csv: str, classes: list[str] = ("pneumothorax",), on_error: str = "raise",
              image_dir: str = "png_images", image_ext: str = ".png", rle: str = "relative",
              mask_dir: str | None = None) -> Split:
    """SIIM-ACR Pneumothorax: `ImageId, EncodedPixels` (RLE, `-1` = negative, several rows per
    image for several masks; see `syncxr.data.rle` for the `relative`/`absolute` conventions).
    Images are found by id under `image_dir` (any depth, `image_ext`: `.dcm` for the Kaggle DICOMs,
    `.png` for pre-rendered PNGs). With `mask_dir` the masks are read from `<mask_dir>/<id>.png`
    instead of the RLE (the pre-rendered image/mask PNG layout)."""
    if len(classes) != 1:
        raise ValueError(f"SIIM has one class (pneumothorax), got {list(classes)}")
    if rle not in RLE_MODES:
        raise ValueError(f"SIIM rle must be one of {RLE_MODES}, got {rle!r}")
    root, csv = _split_file(root, split_csv, "SIIM")
    df = _read_csv(csv, "SIIM", dtype=str, keep_default_na=False)
    _require_columns(df, ["ImageId", "EncodedPixels"], csv)
    index = _index_images(root / image_dir, image_ext)
    order: dict[str, list[str]] = {}
    first_row: dict[str, int] = {}
    for i, (image_id, enc) in enumerate(zip(df["ImageId"], df["EncodedPixels"])):
        image_id, enc = image_id.strip(), enc.strip()
        if not image_id:
            raise ValueError(f"{csv}: row {i} has an empty ImageId")
        if enc and enc != "-1" and not all(v.isdigit() for v in enc.split()):
            raise ValueError(f"{csv}: row {i}: EncodedPixels is not an RLE: {enc[:60]!r}")
        first_row.setdefault(image_id, i)
        runs = order.setdefault(image_id, [])
        if enc and enc != "-1":
            runs.append(enc)
    ids = list(order)
    paths = [index.get(k, root / image_dir / f"{k}{image_ext}") for k in ids]
    labels = [int(bool(order[k])) for k in ids]
    if mask_dir is None:
        regions = [RleMasks(tuple(order[k]), rle) for k in ids]
    else:
        regions = [MaskFile(root / mask_dir / f"{k}.png") for k in ids]
        for k in ids:
            if not (root / mask_dir / f"{k}.png").is_file():
                raise FileNotFoundError(f"{csv}: row {first_row[k]}: mask {root / mask_dir / f'{k}.png'} not found")
    return _finish(csv, ids, paths, classes, labels, regions, on_error, [first_row[k] for k in ids])


COVIDX_CLASSES = {"positive": 1, "negative": 0, "COVID-19": 1, "normal": 0, "pneumonia": 0}


def read_covidx(root, split_txt: str, classes: list[str] = ("covid",), on_error: str = "raise",
                image_dir: str | None = None) -> Split:
    """COVIDx CXR-2: space-separated, no header: `patient_id filename class source`, class
    `positive` or `negative` (older releases: `COVID-19`, `normal`, `pneumonia`). Images live in a
    folder named like the split file (`train.txt` -> `train/`) unless `image_dir` says otherwise."""
    if len(classes) != 1:
        raise ValueError(f"COVIDx has one class (COVID-19), got {list(classes)}")
    root, txt = _split_file(root, split_txt, "COVIDx")
    folder = root / (image_dir if image_dir is not None else Path(split_txt).stem)
    ids, paths, labels = [], [], []
    for i, line in enumerate(txt.read_text().splitlines()):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 4:
            raise ValueError(f"{txt}: row {i}: expected 4 space-separated fields "
                             f"`patient_id filename class source`, got {len(parts)}: {line!r}")
        pid, filename, cls, _source = parts
        if cls not in COVIDX_CLASSES:
            raise ValueError(f"{txt}: row {i}: unknown class {cls!r}; expected one of {sorted(COVIDX_CLASSES)}")
        ids.append(f"{pid}/{filename}")
        paths.append(folder / filename)
        labels.append(COVIDX_CLASSES[cls])
    if not paths:
        raise ValueError(f"{txt}: no rows")
    return _finish(txt, ids, paths, classes, labels, None, on_error)


def read_covid_rural(root, split_csv: str, classes: list[str] = ("covid",), on_error: str = "raise",
                     image_dir: str = "jpgs", mask_dir: str = "pngs_masks") -> Split:
    """COVID Rural: a CSV of ids in column `filepath`; images `jpgs/<id>.jpg`, opacity masks
    `pngs_masks/<id>.png`. Every image is COVID-positive (a grounding/segmentation benchmark)."""
    root, csv = _split_file(root, split_csv, "COVID Rural")
    df = _read_csv(csv, "COVID Rural", dtype=str, keep_default_na=False)
    _require_columns(df, ["filepath"], csv)
    ids = [Path(v.strip()).stem for v in df["filepath"]]
    for i, k in enumerate(ids):
        if not k:
            raise ValueError(f"{csv}: row {i} has an empty filepath")
        m = root / mask_dir / f"{k}.png"
        if not m.is_file() and on_error == "raise":
            raise FileNotFoundError(f"{csv}: row {i}: mask {m} not found")
    paths = [root / image_dir / f"{k}.jpg" for k in ids]
    regions = [MaskFile(root / mask_dir / f"{k}.png") for k in ids]
    split = _finish(csv, ids, paths, classes, np.ones((len(ids), len(classes))), regions, on_error)
    keep = np.array([r.path.is_file() for r in split.regions], dtype=bool)
    return split if keep.all() else split.where(keep)


READERS = {
    "chexpert": read_chexpert_split, "chestxray14": read_chestxray14, "padchest": read_padchest,
    "rsna": read_rsna, "siim": read_siim, "covidx": read_covidx, "covid_rural": read_covid_rural,
}


def read_split(reader: str, root, split_file: str, classes: list[str], on_error: str = "raise",
               **options) -> Split:
    """Reads one split with the reader named `reader` (a key of READERS)."""
    if reader not in READERS:
        raise ValueError(f"unknown benchmark reader {reader!r}; expected one of {sorted(READERS)}")
    try:
        return READERS[reader](root, split_file, list(classes), on_error=on_error, **options)
    except TypeError as e:
        if "unexpected keyword" in str(e):
            raise ValueError(f"benchmark reader {reader!r}: {e}") from e
        raise
