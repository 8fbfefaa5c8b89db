"""CheXpert: CSV `Path` + 14 label columns (0/1). Zero-shot on the five competition classes."""

from __future__ import annotations

import pandas as pd

from ..data.benchmark_split import (
    RowChecks,
    Split,
    binary_labels,
    finish_split,
    image_path,
    read_csv,
    require_columns,
    split_file_path,
)
from ..phantom.benchmarks import write_png
from ..phantom.vocabulary import DEVICES
from .base import Benchmark

CHEXPERT_LABELS = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)
# Which CheXpert columns a phantom finding turns on (findings CheXpert does not label turn on none).
CHEXPERT_COLUMNS_OF = {
    "cardiomegaly": ("Cardiomegaly", "Enlarged Cardiomediastinum"),
    "widened_mediastinum": ("Enlarged Cardiomediastinum",),
    "consolidation": ("Consolidation", "Lung Opacity"),
    "pneumonia": ("Pneumonia", "Lung Opacity"),
    "edema": ("Edema", "Lung Opacity"),
    "atelectasis": ("Atelectasis", "Lung Opacity"),
    "infiltration": ("Lung Opacity",),
    "fibrosis": ("Lung Opacity",),
    "pleural_effusion": ("Pleural Effusion",),
    "pneumothorax": ("Pneumothorax",),
    "pleural_thickening": ("Pleural Other",),
    "pleural_plaques": ("Pleural Other",),
    **{k: ("Lung Lesion",) for k in ("nodule", "mass", "cavity", "calcified_granuloma", "miliary_nodules")},
    "rib_fracture": ("Fracture",),
    "clavicle_fracture": ("Fracture",),
    **{k: ("Support Devices",) for k in DEVICES},
}
CHEXPERT5 = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")


def read_chexpert_split(
    root,
    split_csv: str,
    classes: list[str],
    on_error: str = "raise",
    uncertain: float | None = None,
    allow_external_images: bool = False,
) -> Split:
    """CheXpert (`valid.csv`, `test.csv`, `train.csv`): `Path` + the 14 label columns, 0/1 (blank = 0;
    the training file's -1 "uncertain" needs `uncertain=0` or `1`, the U-Zeros / U-Ones policies).
    `Path` is relative to the root (absolute or leaving it only with `allow_external_images`); the
    published files prefix it with the dataset folder name, so point `root` at the folder above it."""
    root, csv = split_file_path(root, split_csv, "CheXpert")
    df = read_csv(csv, "CheXpert")
    require_columns(df, ["Path", *classes], csv)
    labels = binary_labels(df, classes, csv, uncertain)
    paths = [image_path(root, v, csv, i) for i, v in enumerate(df["Path"])]
    return finish_split(
        csv, df["Path"], paths, classes, labels, None, checks=RowChecks(root, on_error, allow_external_images)
    )


class CheXpert(Benchmark):
    name = "chexpert"
    title = "CheXpert"
    tables = (("table1", 0, None),)
    subject = ("atelectasis", "cardiomegaly", "consolidation", "edema", "pleural_effusion")
    reader = staticmethod(read_chexpert_split)

    def write_twin_image(self, spec, out_dir, split, code, i, image, masks, findings):
        rel = f"{split}/patient{i:05d}/study1/view1_frontal.png"
        write_png(out_dir / rel, image)
        row = dict.fromkeys(CHEXPERT_LABELS, 0)
        row.update({c: 1 for k in findings for c in CHEXPERT_COLUMNS_OF.get(k, ())})
        return {"Path": rel, **row, "No Finding": int(not findings)}

    def write_twin_split(self, path, rows):
        pd.DataFrame(rows, columns=["Path", *CHEXPERT_LABELS]).to_csv(path, index=False)
