"""RSNA Pneumonia: CSV `ID, img_path, boxes, classes`, boxes `x;y;w;h|...` in 1024-px coordinates
(empty when negative), DICOM images. Twin: lobar pneumonia, its boxes the targets.

MAVL's published `data/rsna/val.csv` (HieuPhan33/CVPR2024_MAVL) is the output of a pandas merge:
`ID_x, img_path, boxes_x, classes_x, ID_y, boxes_y, classes_y`, the `_y` columns empty and negatives
holding the literal text `nan` in `boxes_x`. It is read as published: a suffixed pair stands for its
column when one side of the pair is empty, and is refused, naming both columns, when both hold data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..data.benchmark_split import (
    Boxes,
    RowChecks,
    Split,
    finish_split,
    image_path,
    read_csv,
    require_columns,
    split_file_path,
)
from ..data.image_io import write_dicom
from ..phantom.benchmarks import mask_boxes, uid
from .base import Benchmark

BOX_FRAME = 1024  # RSNA boxes are in the coordinates of the published 1024 x 1024 DICOMs


def parse_boxes(text, path: Path, row: int) -> tuple[tuple[float, float, float, float], ...]:
    """`x;y;w;h|x;y;w;h` (empty, NaN or the text `nan`, as MAVL's val.csv writes it: no boxes)."""
    if text is None or (isinstance(text, float) and np.isnan(text)) or str(text).strip().lower() in ("", "nan"):
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
        raise ValueError(f"{path}: row {row}: classes {text!r} is not a 0/1 label or `|`-joined class ids") from None
    if len(values) > 1 and len(values) != n_boxes:
        raise ValueError(f"{path}: row {row}: {len(values)} classes for {n_boxes} boxes")
    label = int(any(v != 0 for v in values))
    if n_boxes and not label:
        raise ValueError(f"{path}: row {row}: boxes given but classes {text!r} says negative")
    return label


COLUMNS = ("ID", "img_path", "boxes", "classes")
TEXT_COLUMNS = {c: str for name in ("boxes", "classes") for c in (name, f"{name}_x", f"{name}_y")}


def _holds_data(column: pd.Series) -> bool:
    """Any cell other than empty or the text `nan` (how a merge's missing side is written)."""
    return bool((~column.astype(str).str.strip().str.lower().isin(["", "nan"])).any())


def unmerge_columns(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    """`df` with each missing column of `COLUMNS` taken from its pandas merge pair `<name>_x` /
    `<name>_y` (MAVL's val.csv): the side that holds data; an error naming both when both do."""
    for name in COLUMNS:
        x, y = f"{name}_x", f"{name}_y"
        if name in df.columns or x not in df.columns or y not in df.columns:
            continue
        if _holds_data(df[x]) and _holds_data(df[y]):
            raise ValueError(
                f"{path}: columns {x!r} and {y!r} both hold data (a pandas merge of two split files?); "
                f"keep one of them, named {name!r}"
            )
        df = df.rename(columns={(y if _holds_data(df[y]) else x): name}).drop(columns=[x, y], errors="ignore")
    return df


def read_rsna(
    root,
    split_csv: str,
    classes: list[str] = ("pneumonia",),
    on_error: str = "raise",
    box_frame: int = 1024,
    allow_external_images: bool = False,
) -> Split:
    """RSNA Pneumonia: `ID, img_path, boxes, classes`; boxes `x;y;w;h|...` in `box_frame`-pixel
    coordinates (1024: the published DICOMs' size), empty for negatives; DICOM images. MAVL's merged
    `_x` / `_y` columns are read as described in the module docstring."""
    if len(classes) != 1:
        raise ValueError(f"RSNA has one class (pneumonia), got {list(classes)}")
    root, csv = split_file_path(root, split_csv, "RSNA")
    df = unmerge_columns(read_csv(csv, "RSNA", dtype=TEXT_COLUMNS, keep_default_na=False), csv)
    require_columns(df, list(COLUMNS), csv)
    regions, labels = [], []
    for i, (b, c) in enumerate(zip(df["boxes"], df["classes"])):
        boxes = parse_boxes(b, csv, i)
        labels.append(_parse_classes(c, len(boxes), csv, i))
        regions.append(Boxes(boxes, (box_frame, box_frame)))
    paths = [image_path(root, v, csv, i) for i, v in enumerate(df["img_path"])]
    return finish_split(
        csv, df["ID"], paths, classes, labels, regions, checks=RowChecks(root, on_error, allow_external_images)
    )


class RSNA(Benchmark):
    name = "rsna"
    title = "RSNA"
    tasks = ("classification", "grounding", "segmentation")
    tables = (("table1", 3, None), ("table2b", 0, None), ("table3a", 0, None), ("table3b", 0, None))
    subject = ("pneumonia",)
    excluded = ("consolidation", "infiltration")  # an opacity in RSNA is "pneumonia"
    reader = staticmethod(read_rsna)

    def write_twin_image(self, spec, out_dir, split, code, i, image, masks, findings):
        rid = uid(spec.seed, split, i)
        (out_dir / "images").mkdir(exist_ok=True)
        write_dicom(out_dir / "images" / f"{rid}.dcm", image, patient_id=rid)
        boxes = mask_boxes(masks["pneumonia"], BOX_FRAME / spec.image_size) if "pneumonia" in findings else []
        return {
            "ID": rid,
            "img_path": f"images/{rid}.dcm",
            "boxes": "|".join(";".join(str(v) for v in b) for b in boxes),
            "classes": int(bool(boxes)),
        }
