"""ChestX-ray14: CSV `img_path, Image Index, Finding Label` + 14 lower-case label columns."""

from __future__ import annotations

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
from ..phantom.frequencies import tail_findings
from .base import Benchmark

CHESTXRAY14_LABELS = (
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
    "Consolidation",
    "Edema",
    "Emphysema",
    "Fibrosis",
    "Pleural_Thickening",
    "Hernia",
)
# The ChestX-ray14 label of each phantom finding it labels.
CHESTXRAY14_OF = {
    "atelectasis": ("Atelectasis",),
    "cardiomegaly": ("Cardiomegaly",),
    "pleural_effusion": ("Effusion",),
    "infiltration": ("Infiltration",),
    "mass": ("Mass",),
    "nodule": ("Nodule",),
    "pneumonia": ("Pneumonia",),
    "pneumothorax": ("Pneumothorax",),
    "consolidation": ("Consolidation",),
    "edema": ("Edema",),
    "emphysema": ("Emphysema",),
    "fibrosis": ("Fibrosis",),
    "pleural_thickening": ("Pleural_Thickening",),
    "hernia": ("Hernia",),
}
TAIL = tail_findings()


def read_chestxray14(
    root, split_csv: str, classes: list[str], on_error: str = "raise", allow_external_images: bool = False
) -> Split:
    """ChestX-ray14: `img_path, Image Index, Finding Label` + the 14 lower-case label columns."""
    root, csv = split_file_path(root, split_csv, "ChestX-ray14")
    df = read_csv(csv, "ChestX-ray14")
    require_columns(df, ["img_path", "Image Index", "Finding Label", *classes], csv)
    labels = binary_labels(df, classes, csv)
    paths = [image_path(root, v, csv, i) for i, v in enumerate(df["img_path"])]
    return finish_split(
        csv, df["Image Index"], paths, classes, labels, None, checks=RowChecks(root, on_error, allow_external_images)
    )


class ChestXray14(Benchmark):
    name = "chestxray14"
    title = "ChestX-ray14"
    tables = (("table1", 1, None), ("table3a", 3, None))
    # Common findings at twin.prevalence, the tail of the real corpus at twin.prevalence_rare.
    subject = tuple(k for k in CHESTXRAY14_OF if k not in TAIL)
    rare = tuple(k for k in CHESTXRAY14_OF if k in TAIL)
    reader = staticmethod(read_chestxray14)

    def write_twin_image(self, spec, out_dir, split, code, i, image, masks, findings):
        index = f"{code * 100000 + i:08d}_000.png"
        write_png(out_dir / "images" / index, image)
        cols = {c.lower(): 0 for c in CHESTXRAY14_LABELS}
        names = sorted({c for k in findings for c in CHESTXRAY14_OF.get(k, ())})
        for c in names:
            cols[c.lower()] = 1
        return {
            "img_path": f"images/{index}",
            "Image Index": index,
            "Finding Label": "|".join(names) or "No Finding",
            **cols,
        }

    def twin_class_sets(self):
        return {
            "common": [CHESTXRAY14_OF[k][0].lower() for k in self.subject],
            "rare": [CHESTXRAY14_OF[k][0].lower() for k in self.rare],
        }
