"""PadChest: CSV with the image path in column 0 and one column per label (by name); 16-bit PNGs."""

from __future__ import annotations

import numpy as np

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

# PadChest label columns of the twin (PadChest's own label names). The first name of each finding is
# the one its class sets use; a second name is one phantom reports never use ("unseen").
PADCHEST_OF = {
    "cardiomegaly": ("cardiomegaly",),
    "pleural_effusion": ("pleural effusion", "costophrenic angle blunting"),
    "atelectasis": ("atelectasis", "laminar atelectasis"),
    "consolidation": ("consolidation", "alveolar pattern"),
    "edema": ("pulmonary edema", "interstitial pattern"),
    "nodule": ("nodule",),
    "infiltration": ("infiltrates",),
    "mass": ("mass",),
    "emphysema": ("emphysema", "copd signs"),
    "tortuous_aorta": ("tortuous aorta", "aortic elongation"),
    "scoliosis": ("scoliosis",),
    "calcified_granuloma": ("calcified granuloma",),
    "pneumothorax": ("pneumothorax",),
    # the tail
    "pneumonia": ("pneumonia",),
    "fibrosis": ("pulmonary fibrosis",),
    "hernia": ("hiatal hernia",),
    "pacemaker": ("pacemaker",),
    "rib_fracture": ("callus rib fracture",),
    "elevated_hemidiaphragm": ("hemidiaphragm elevation",),
    "hilar_enlargement": ("hilar enlargement",),
    "chest_tube": ("chest drain tube",),
    "widened_mediastinum": ("mediastinal enlargement",),
    "bulla": ("bullas",),
    "subcutaneous_emphysema": ("subcutaneous emphysema",),
    "pleural_plaques": ("calcified pleural plaques",),
    "clavicle_fracture": ("clavicle fracture",),
    "cavity": ("cavitation",),
    "pneumoperitoneum": ("pneumoperitoneo",),
    "miliary_nodules": ("miliary opacities",),
}
PADCHEST_LABELS = ("normal", *sorted({c for cols in PADCHEST_OF.values() for c in cols}))
TAIL = tail_findings()


def read_padchest(
    root, split_csv: str, classes: list[str], on_error: str = "raise", allow_external_images: bool = False
) -> Split:
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
    return finish_split(
        csv, df[first], paths, classes, labels, None, checks=RowChecks(root, on_error, allow_external_images)
    )


class PadChest(Benchmark):
    name = "padchest"
    title = "PadChest"
    tables = (("table1", 2, "seen"), ("table2a", 0, "unseen"), ("table2a", 1, "rare"))
    subject = tuple(k for k in PADCHEST_OF if k not in TAIL)
    rare = tuple(k for k in PADCHEST_OF if k in TAIL)
    reader = staticmethod(read_padchest)

    def write_twin_image(self, spec, out_dir, split, code, i, image, masks, findings):
        rid = f"{split}_{i:05d}"
        write_png(out_dir / "images" / f"{rid}.png", image.astype(np.uint16) * 257)  # 16 bit, as published
        cols = dict.fromkeys(PADCHEST_LABELS, 0)
        for k in findings:
            for c in PADCHEST_OF.get(k, ()):
                cols[c] = 1
        cols["normal"] = int(not findings)
        return {"ImagePath": f"images/{rid}.png", **cols}

    def twin_class_sets(self):
        return {
            "seen": [PADCHEST_OF[k][0] for k in self.subject],
            "unseen": [PADCHEST_OF[k][1] for k in self.subject if len(PADCHEST_OF[k]) > 1],
            "rare": [PADCHEST_OF[k][0] for k in self.rare],
        }
