"""Phantom twins of downstream benchmarks, written in the published file layouts."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from ..data.dataset_format import DatasetBuilder, config_hash, write_json_atomic
from .corpus import PHANTOM_VERSION
from .renderer import render
from .scene import sample_scene

CHEXPERT_LABELS = ("No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity",
                   "Lung Lesion", "Edema", "Consolidation", "Pneumonia", "Atelectasis",
                   "Pneumothorax", "Pleural Effusion", "Pleural Other", "Fracture", "Support Devices")
# Which CheXpert columns a phantom finding turns on.
CHEXPERT_COLUMNS_OF = {
    "cardiomegaly": ("Cardiomegaly", "Enlarged Cardiomediastinum"),
    "consolidation": ("Consolidation", "Lung Opacity"),
    "edema": ("Edema", "Lung Opacity"),
    "atelectasis": ("Atelectasis", "Lung Opacity"),
    "pleural_effusion": ("Pleural Effusion",),
    "pneumothorax": ("Pneumothorax",),
    "nodule": ("Lung Lesion",),
    "support_device": ("Support Devices",),
}
CHEXPERT5 = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")


@dataclass(frozen=True)
class ChexpertTwinSpec:
    """A CheXpert-shaped test set; the five competition classes are common, the rest rarer."""

    n_test: int = 500
    n_valid: int = 200
    seed: int = 1000
    image_size: int = 128
    prevalence_5: float = 0.3  # each of the five zero-shot classes
    prevalence_other: float = 0.08  # pneumothorax, nodule, support device

    @property
    def hash(self) -> str:
        return config_hash({"version": PHANTOM_VERSION, "benchmark": "chexpert", **asdict(self)})


def _chexpert_row(labels: set[str]) -> dict:
    row = dict.fromkeys(CHEXPERT_LABELS, 0)
    for k in labels:
        for col in CHEXPERT_COLUMNS_OF[k]:
            row[col] = 1
    row["No Finding"] = int(not labels)
    return row


def build_chexpert_twin(spec: ChexpertTwinSpec, target: Path, progress: bool = True) -> Path:
    """Writes `valid.csv`, `test.csv` (`Path` + 14 label columns) and the images under `target`."""
    five = ("atelectasis", "cardiomegaly", "consolidation", "edema", "pleural_effusion")
    other = ("pneumothorax", "nodule", "support_device")
    with DatasetBuilder(target) as tmp:
        for split, n, code in (("valid", spec.n_valid, 0), ("test", spec.n_test, 1)):
            rows = []
            for i in tqdm(range(n), desc=f"phantom chexpert {split}", disable=not progress):
                rng = np.random.default_rng([spec.seed, code, i])
                labels = {k for k in five if rng.random() < spec.prevalence_5}
                labels |= {k for k in other if rng.random() < spec.prevalence_other}
                image, _ = render(sample_scene(rng, labels), spec.image_size)
                rel = f"{split}/patient{i:05d}/study1/view1_frontal.png"
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(image).save(tmp / rel, compress_level=1)
                rows.append({"Path": rel, **_chexpert_row(labels)})
            pd.DataFrame(rows).to_csv(tmp / f"{split}.csv", index=False)
        (tmp / "images").rmdir()
        write_json_atomic(tmp / "benchmark.json", {"name": "chexpert", "config": asdict(spec),
                                                   "hash": spec.hash, "generator": PHANTOM_VERSION})
    return target


def ensure_chexpert_twin(spec: ChexpertTwinSpec, cache_dir: str | Path, progress: bool = True) -> Path:
    target = Path(cache_dir) / "benchmarks" / f"chexpert-{spec.hash}"
    if not (target / "benchmark.json").is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        build_chexpert_twin(spec, target, progress)
    return target
