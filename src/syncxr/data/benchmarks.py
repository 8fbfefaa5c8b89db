"""Readers of downstream benchmark split files, as published (real data and phantom twins alike):
one function per benchmark, each (root, split file, classes, on_error, options) -> `Split`; see
`syncxr.data.benchmark_split` for what a split holds and how bad rows are reported. Every image and
mask a split file names must stay inside `root` unless `allow_external_images=True`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .benchmark_split import (Boxes, MaskFile, RleMasks, Split, benchmark_root, binary_labels, finish_split,
                              image_path, read_csv, require_columns, split_file_path)
from .rle import MODES as RLE_MODES

# --------------------------------------------------------------------------- readers
def read_chexpert_split(root, split_csv: str, classes: list[str], on_error: str = "raise",
                        uncertain: float | None = None, allow_external_images: bool = False) -> Split:
    """CheXpert (`valid.csv`, `test.csv`, `train.csv`): `Path` + the 14 label columns, 0/1 (blank = 0;
    the training file's -1 "uncertain" needs `uncertain=0` or `1`, the U-Zeros / U-Ones policies).
    `Path` is relative to the root (absolute or leaving it only with `allow_external_images`); the
    published files prefix it with the dataset folder name, so point `root` at the folder above it."""
    root, csv = split_file_path(root, split_csv, "CheXpert")
    df = read_csv(csv, "CheXpert")
    require_columns(df, ["Path", *classes], csv)
    labels = binary_labels(df, classes, csv, uncertain)
    paths = [image_path(root, v, csv, i) for i, v in enumerate(df["Path"])]
    return finish_split(csv, df["Path"], paths, classes, labels, None, on_error,
                        inside=benchmark_root(root, allow_external_images))


CHESTXRAY14_CLASSES = ("atelectasis", "cardiomegaly", "effusion", "infiltration", "mass", "nodule",
                       "pneumonia", "pneumothorax", "consolidation", "edema", "emphysema", "fibrosis",
                       "pleural_thickening", "hernia")


def read_chestxray14(root, split_csv: str, classes: list[str], on_error: str = "raise",
                     allow_external_images: bool = False) -> Split:
    """ChestX-ray14: `img_path, Image Index, Finding Label` + the 14 lower-case label columns."""
    root, csv = split_file_path(root, split_csv, "ChestX-ray14")
    df = read_csv(csv, "ChestX-ray14")
    require_columns(df, ["img_path", "Image Index", "Finding Label", *classes], csv)
    labels = binary_labels(df, classes, csv)
    paths = [image_path(root, v, csv, i) for i, v in enumerate(df["img_path"])]
    return finish_split(csv, df["Image Index"], paths, classes, labels, None, on_error,
                        inside=benchmark_root(root, allow_external_images))


def read_padchest(root, split_csv: str, classes: list[str], on_error: str = "raise",
                  allow_external_images: bool = False) -> Split:
    """PadChest: the image path in column 0 (whatever its name), classes chosen by column name.
    Images are 16-bit PNGs, scaled to 8 bit when loaded."""
    root, csv = split_file_path(root, split_csv, "PadChest")
    df = read_csv(csv, "PadChest")
    if df.shape[1] < 1:
        raise ValueError(f"{csv}: no columns")
    require_columns(df, classes, csv)
    labels = binary_labels(df, classes, csv)
    first = df.columns[0]
    paths = [image_path(root, v, csv, i) for i, v in enumerate(df[first])]
    return finish_split(csv, df[first], paths, classes, labels, None, on_error,
                        inside=benchmark_root(root, allow_external_images))


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
              box_frame: int = 1024, allow_external_images: bool = False) -> Split:
    """RSNA Pneumonia: `ID, img_path, boxes, classes`; boxes `x;y;w;h|...` in `box_frame`-pixel
    coordinates (1024: the published DICOMs' size), empty for negatives; DICOM images."""
    if len(classes) != 1:
        raise ValueError(f"RSNA has one class (pneumonia), got {list(classes)}")
    root, csv = split_file_path(root, split_csv, "RSNA")
    df = read_csv(csv, "RSNA", dtype={"boxes": str, "classes": str}, keep_default_na=False)
    require_columns(df, ["ID", "img_path", "boxes", "classes"], csv)
    regions, labels = [], []
    for i, (b, c) in enumerate(zip(df["boxes"], df["classes"])):
        boxes = parse_boxes(b, csv, i)
        labels.append(_parse_classes(c, len(boxes), csv, i))
        regions.append(Boxes(boxes, (box_frame, box_frame)))
    paths = [image_path(root, v, csv, i) for i, v in enumerate(df["img_path"])]
    return finish_split(csv, df["ID"], paths, classes, labels, regions, on_error,
                        inside=benchmark_root(root, allow_external_images))


def _index_images(image_root: Path, ext: str) -> dict[str, Path]:
    """Image id -> path for every `*<ext>` under `image_root` (flat or nested, as Kaggle's
    `dicom-images-train/<study>/<series>/<id>.dcm`)."""
    if not image_root.is_dir():
        raise FileNotFoundError(f"image directory {image_root} not found")
    return {p.name[: -len(ext)]: p for p in image_root.rglob(f"*{ext}")}


def read_siim(root, split_csv: str, classes: list[str] = ("pneumothorax",), on_error: str = "raise",
              image_dir: str = "png_images", image_ext: str = ".png", rle: str = "relative",
              mask_dir: str | None = None, allow_external_images: bool = False) -> Split:
    """SIIM-ACR Pneumothorax: `ImageId, EncodedPixels` (RLE, `-1` = negative, several rows per
    image for several masks; see `syncxr.data.rle` for the `relative`/`absolute` conventions).
    Images are found by id under `image_dir` (any depth, `image_ext`: `.dcm` for the Kaggle DICOMs,
    `.png` for pre-rendered PNGs). With `mask_dir` the masks are read from `<mask_dir>/<id>.png`
    instead of the RLE (the pre-rendered image/mask PNG layout)."""
    if len(classes) != 1:
        raise ValueError(f"SIIM has one class (pneumothorax), got {list(classes)}")
    if rle not in RLE_MODES:
        raise ValueError(f"SIIM rle must be one of {RLE_MODES}, got {rle!r}")
    root, csv = split_file_path(root, split_csv, "SIIM")
    df = read_csv(csv, "SIIM", dtype=str, keep_default_na=False)
    require_columns(df, ["ImageId", "EncodedPixels"], csv)
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
    split = finish_split(csv, ids, paths, classes, labels, regions, on_error, [first_row[k] for k in ids],
                         inside=benchmark_root(root, allow_external_images))
    for region, row in zip(split.regions, split.rows):  # after finish_split has confined them
        if isinstance(region, MaskFile) and not region.path.is_file():
            raise FileNotFoundError(f"{csv}: row {row}: mask {region.path} not found")
    return split


COVIDX_CLASSES = {"positive": 1, "negative": 0, "COVID-19": 1, "normal": 0, "pneumonia": 0}


def read_covidx(root, split_txt: str, classes: list[str] = ("covid",), on_error: str = "raise",
                image_dir: str | None = None, allow_external_images: bool = False) -> Split:
    """COVIDx CXR-2: space-separated, no header: `patient_id filename class source`, class
    `positive` or `negative` (older releases: `COVID-19`, `normal`, `pneumonia`). Images live in a
    folder named like the split file (`train.txt` -> `train/`) unless `image_dir` says otherwise."""
    if len(classes) != 1:
        raise ValueError(f"COVIDx has one class (COVID-19), got {list(classes)}")
    root, txt = split_file_path(root, split_txt, "COVIDx")
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
    return finish_split(txt, ids, paths, classes, labels, None, on_error,
                        inside=benchmark_root(root, allow_external_images))


def read_covid_rural(root, split_csv: str, classes: list[str] = ("covid",), on_error: str = "raise",
                     image_dir: str = "jpgs", mask_dir: str = "pngs_masks",
                     allow_external_images: bool = False) -> Split:
    """COVID Rural: a CSV of ids in column `filepath`; images `jpgs/<id>.jpg`, opacity masks
    `pngs_masks/<id>.png`. Every image is COVID-positive (a grounding/segmentation benchmark)."""
    root, csv = split_file_path(root, split_csv, "COVID Rural")
    df = read_csv(csv, "COVID Rural", dtype=str, keep_default_na=False)
    require_columns(df, ["filepath"], csv)
    ids = [Path(v.strip()).stem for v in df["filepath"]]
    for i, k in enumerate(ids):
        if not k:
            raise ValueError(f"{csv}: row {i} has an empty filepath")
    paths = [root / image_dir / f"{k}.jpg" for k in ids]
    regions = [MaskFile(root / mask_dir / f"{k}.png") for k in ids]
    split = finish_split(csv, ids, paths, classes, np.ones((len(ids), len(classes))), regions, on_error,
                         inside=benchmark_root(root, allow_external_images))
    keep = np.array([r.path.is_file() for r in split.regions], dtype=bool)
    if not keep.all() and on_error == "raise":
        i = int(np.flatnonzero(~keep)[0])
        raise FileNotFoundError(f"{csv}: row {split.rows[i]}: mask {split.regions[i].path} not found")
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
