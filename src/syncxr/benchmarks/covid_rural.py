"""COVID Rural: CSV of ids (`filepath`), images jpgs/<id>.jpg, opacity masks pngs_masks/<id>.png.
Every image is positive. Twin: consolidation + edema, the mask their union."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..data.benchmark_split import MaskFile, RowChecks, Split, finish_split, read_csv, require_columns, split_file_path
from ..phantom.benchmarks import write_png
from .base import Benchmark


def read_covid_rural(
    root,
    split_csv: str,
    classes: list[str] = ("covid",),
    on_error: str = "raise",
    image_dir: str = "jpgs",
    mask_dir: str = "pngs_masks",
    allow_external_images: bool = False,
) -> Split:
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
    split = finish_split(
        csv,
        ids,
        paths,
        classes,
        np.ones((len(ids), len(classes))),
        regions,
        checks=RowChecks(root, on_error, allow_external_images),
    )
    keep = np.array([r.path.is_file() for r in split.regions], dtype=bool)
    if not keep.all() and on_error == "raise":
        i = int(np.flatnonzero(~keep)[0])
        raise FileNotFoundError(f"{csv}: row {split.rows[i]}: mask {split.regions[i].path} not found")
    return split if keep.all() else split.where(keep)


class COVIDRural(Benchmark):
    name = "covid_rural"
    title = "COVID Rural"
    tasks = ("grounding", "segmentation")  # every image is positive: nothing to classify
    tables = (("table2b", 1, None), ("table3b", 2, None))  # Table 2b: RSNA, COVID-19 Rural, SIIM
    subject = ("consolidation", "edema")  # every image
    reader = staticmethod(read_covid_rural)

    def draw_twin_subject(self, spec, rng, labels, add):
        for s in labels:
            s |= set(self.subject)

    def write_twin_image(self, spec, out_dir, split, code, i, image, masks, findings):
        rid = f"rural_{split}_{i:05d}"
        path = out_dir / "jpgs" / f"{rid}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path, quality=95)
        opacity = masks["consolidation"] | masks["edema"]
        write_png(out_dir / "pngs_masks" / f"{rid}.png", opacity.astype(np.uint8) * 255)
        return {"filepath": f"jpgs/{rid}.jpg"}
