"""SIIM-ACR Pneumothorax: CSV `ImageId, EncodedPixels`, Kaggle RLE (-1 = negative, several rows per image)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config_choices import RLE_MODES
from ..data.benchmark_split import (
    MaskFile,
    RleMasks,
    RowChecks,
    Split,
    finish_split,
    read_csv,
    require_columns,
    split_file_path,
)
from ..data.rle import rle_encode
from ..phantom.benchmarks import mask_components, write_png
from .base import Benchmark


def _index_images(image_root: Path, ext: str) -> dict[str, Path]:
    """Image id -> path for every `*<ext>` under `image_root` (flat or nested, as Kaggle's
    `dicom-images-train/<study>/<series>/<id>.dcm`)."""
    if not image_root.is_dir():
        raise FileNotFoundError(f"image directory {image_root} not found")
    return {p.name[: -len(ext)]: p for p in image_root.rglob(f"*{ext}")}


@dataclass(frozen=True)
class SIIMLayout:
    """Where SIIM's images and masks are (benchmark.siim.options): images found by id under `image_dir`
    (any depth, `image_ext`: `.dcm` for the Kaggle DICOMs, `.png` for pre-rendered PNGs); masks from the
    RLE (`rle`: see `syncxr.data.rle` for the `relative`/`absolute` conventions) or, with `mask_dir`,
    from `<mask_dir>/<id>.png` (the pre-rendered image/mask PNG layout)."""

    image_dir: str = "png_images"
    image_ext: str = ".png"
    rle: str = "relative"
    mask_dir: str | None = None

    def __post_init__(self):
        if self.rle not in RLE_MODES:
            raise ValueError(f"SIIM rle must be one of {RLE_MODES}, got {self.rle!r}")


def read_siim(
    root,
    split_csv: str,
    classes: list[str] = ("pneumothorax",),
    on_error: str = "raise",
    allow_external_images: bool = False,
    **layout,
) -> Split:
    """SIIM-ACR Pneumothorax: `ImageId, EncodedPixels` (RLE, `-1` = negative, several rows per
    image for several masks), its files where `layout` (the fields of SIIMLayout) says."""
    if len(classes) != 1:
        raise ValueError(f"SIIM has one class (pneumothorax), got {list(classes)}")
    layout = SIIMLayout(**layout)
    image_dir, image_ext, mask_dir = layout.image_dir, layout.image_ext, layout.mask_dir
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
        regions = [RleMasks(tuple(order[k]), layout.rle) for k in ids]
    else:
        regions = [MaskFile(root / mask_dir / f"{k}.png") for k in ids]
    split = finish_split(
        csv,
        ids,
        paths,
        classes,
        labels,
        regions,
        [first_row[k] for k in ids],
        checks=RowChecks(root, on_error, allow_external_images),
    )
    for region, row in zip(split.regions, split.rows):  # after finish_split has confined them
        if isinstance(region, MaskFile) and not region.path.is_file():
            raise FileNotFoundError(f"{csv}: row {row}: mask {region.path} not found")
    return split


class SIIM(Benchmark):
    name = "siim"
    title = "SIIM"
    tasks = ("classification", "grounding", "segmentation")
    # Table 2b's published column order: RSNA, COVID-19 Rural, SIIM (its header row).
    tables = (("table1", 4, None), ("table2b", 2, None), ("table3a", 1, None), ("table3b", 1, None))
    subject = ("pneumothorax",)
    reader = staticmethod(read_siim)

    def write_twin_image(self, spec, out_dir, split, code, i, image, masks, findings):
        rid = f"1.2.276.0.7230010.3.1.4.{spec.seed}.{code}.{i}"
        write_png(out_dir / "png_images" / f"{rid}.png", image)
        mask = masks.get("pneumothorax", np.zeros(image.shape, bool))
        write_png(out_dir / "png_masks" / f"{rid}.png", mask.astype(np.uint8) * 255)
        parts = mask_components(mask) if mask.any() else []
        return [f"{rid}, {rle_encode(m, 'relative')}" for m in parts] or [f"{rid}, -1"]

    def write_twin_split(self, path, rows):
        # Kaggle's header and ", " separator, written as published; an image has a line per mask.
        path.write_text("ImageId, EncodedPixels\n" + "".join(f"{x}\n" for lines in rows for x in lines))
