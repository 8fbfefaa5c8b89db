"""Phantom twins of downstream benchmarks, written in the published file layouts.

Each twin is rendered by the phantom renderer, so its labels, boxes and masks are exact, and is
written exactly as the real benchmark is laid out on disk, so `syncxr.data.benchmarks` reads both:

| twin         | split files                          | images                        | ground truth            |
|--------------|--------------------------------------|-------------------------------|-------------------------|
| chexpert     | `{train,valid,test}.csv` (`Path`+14) | `<split>/patientN/study1/...png` | 14 label columns     |
| chestxray14  | `{train,valid,test}.csv`             | `images/<Image Index>` PNG    | 14 lower-case columns   |
| padchest     | `{train,valid,test}.csv` (path col 0)| `images/<id>.png`, 16 bit     | label columns by name   |
| rsna         | `{train,valid,test}.csv` (`ID, img_path, boxes, classes`) | `images/<ID>.dcm` | consolidation boxes, 1024-px frame |
| siim         | `{train,valid,test}.csv` (`ImageId, EncodedPixels`, relative RLE) | `png_images/<id>.png` (+ `png_masks/`) | pneumothorax masks |
| covidx       | `{train,val,test}.txt` (`pid file class source`, no header) | `<split>/<file>.png` | consolidation + edema = COVID |
| covid_rural  | `{train,valid,test}.csv` (`filepath`)| `jpgs/<id>.jpg`               | `pngs_masks/<id>.png`: consolidation + edema |

Twins are small by default and cached under `<cache>/benchmarks/<name>-<hash of the spec>`.
Finding counts per split are exact (`round(prevalence * n)`, at least one), so no class of a small
twin ends up without positives.
"""

from __future__ import annotations

import hashlib
import uuid
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from scipy import ndimage
from tqdm.auto import tqdm

from ..data.dataset_format import DatasetBuilder, config_hash, write_json_atomic
from ..data.image_io import write_dicom
from ..data.rle import rle_encode
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

CHESTXRAY14_LABELS = ("Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule",
                      "Pneumonia", "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis",
                      "Pleural_Thickening", "Hernia")
CHESTXRAY14_OF = {"atelectasis": ("Atelectasis",), "cardiomegaly": ("Cardiomegaly",),
                  "pleural_effusion": ("Effusion",), "consolidation": ("Consolidation",),
                  "edema": ("Edema",), "nodule": ("Nodule",), "pneumothorax": ("Pneumothorax",)}

# PadChest label columns of the twin. "Unseen": names the phantom reports never use for the
# finding; "rare": findings drawn with `prevalence_rare`.
PADCHEST_OF = {
    "cardiomegaly": ("cardiomegaly",),
    "pleural_effusion": ("pleural effusion", "costophrenic angle blunting"),
    "atelectasis": ("atelectasis", "laminar atelectasis"),
    "consolidation": ("consolidation", "pneumonia", "alveolar pattern"),
    "edema": ("pulmonary edema", "interstitial pattern"),
    "nodule": ("nodule",),
    "pneumothorax": ("pneumothorax",),
    "support_device": ("endotracheal tube",),
}
PADCHEST_LABELS = ("normal", *sorted({c for cols in PADCHEST_OF.values() for c in cols}))
PADCHEST_RARE = ("pneumothorax", "support_device")

TWINS = ("chexpert", "chestxray14", "padchest", "rsna", "siim", "covidx", "covid_rural")
# Findings each twin draws with `prevalence` (its subject) and with `prevalence_other` (distractors).
SUBJECT = {
    "chestxray14": tuple(CHESTXRAY14_OF),
    "padchest": ("atelectasis", "cardiomegaly", "consolidation", "edema", "nodule", "pleural_effusion"),
    "rsna": ("consolidation",),
    "siim": ("pneumothorax",),
    "covidx": ("consolidation", "edema"),  # both together: "COVID"
    "covid_rural": ("consolidation", "edema"),
}
DISTRACTORS = {
    "chestxray14": ("support_device",),
    "padchest": (),
    "rsna": ("atelectasis", "cardiomegaly", "edema", "nodule", "pleural_effusion", "support_device"),
    "siim": ("atelectasis", "cardiomegaly", "consolidation", "pleural_effusion", "support_device"),
    "covidx": ("atelectasis", "cardiomegaly", "consolidation", "edema", "nodule", "pleural_effusion"),
    "covid_rural": ("cardiomegaly", "pleural_effusion", "support_device"),
}
SPLIT_FILES = {"covidx": {"train": "train.txt", "valid": "val.txt", "test": "test.txt"}}
BOX_FRAME = 1024  # RSNA boxes are in the coordinates of the published 1024 x 1024 DICOMs


@dataclass(frozen=True)
class ChexpertTwinSpec:
    """A CheXpert-shaped test set; the five competition classes are common, the rest rarer."""

    n_test: int = 500
    n_valid: int = 200
    seed: int = 1000
    image_size: int = 128
    prevalence_5: float = 0.3  # each of the five zero-shot classes
    prevalence_other: float = 0.08  # pneumothorax, nodule, support device
    n_train: int = 0  # a labelled training split (for fine-tuning); 0: none, as before

    @property
    def hash(self) -> str:
        d = asdict(self)
        if not d["n_train"]:
            del d["n_train"]  # twins without a training split keep the hash they always had
        return config_hash({"version": PHANTOM_VERSION, "benchmark": "chexpert", **d})


@dataclass(frozen=True)
class TwinSpec:
    """A phantom twin of benchmark `name` (one of TWINS other than chexpert)."""

    name: str
    n_train: int = 300
    n_valid: int = 100
    n_test: int = 200
    seed: int = 2000
    image_size: int = 128
    prevalence: float = 0.3  # each finding the benchmark is about (COVIDx: the COVID pair)
    prevalence_other: float = 0.1  # each distractor finding
    prevalence_rare: float = 0.05  # PadChest's rare findings

    def __post_init__(self):
        if self.name not in TWINS or self.name == "chexpert":
            raise ValueError(f"no phantom twin {self.name!r}; choose from {[t for t in TWINS if t != 'chexpert']}"
                             " (chexpert: ChexpertTwinSpec)")
        for k in ("n_train", "n_valid", "n_test"):
            if getattr(self, k) < 0:
                raise ValueError(f"twin {self.name}: {k} must be >= 0")
        for k in ("prevalence", "prevalence_other", "prevalence_rare"):
            if not 0.0 <= getattr(self, k) <= 1.0:
                raise ValueError(f"twin {self.name}: {k} must be in [0, 1]")

    @property
    def hash(self) -> str:
        return config_hash({"version": PHANTOM_VERSION, "benchmark": self.name, **asdict(self)})



def exact_draw(rng: np.random.Generator, n: int, prevalence: float) -> np.ndarray:
    """Boolean mask of n rows with exactly round(prevalence * n) true (at least 1 if p > 0)."""
    k = 0 if prevalence <= 0 or n == 0 else min(n, max(1, round(prevalence * n)))
    out = np.zeros(n, dtype=bool)
    out[rng.permutation(n)[:k]] = True
    return out


def _split_labels(spec, split_code: int, n: int) -> list[set[str]]:
    rng = np.random.default_rng([spec.seed, split_code, 7, zlib.crc32(spec.name.encode())])
    labels = [set() for _ in range(n)]
    name = spec.name

    def add(key, p):
        for i in np.flatnonzero(exact_draw(rng, n, p)):
            labels[i].add(key)

    if name == "covidx":
        covid = exact_draw(rng, n, spec.prevalence)
        for k in DISTRACTORS[name]:
            add(k, spec.prevalence_other)
        for i in range(n):
            if covid[i]:
                labels[i] |= {"consolidation", "edema"}
            elif {"consolidation", "edema"} <= labels[i]:  # the pair is what makes "COVID"
                labels[i].discard("edema" if rng.random() < 0.5 else "consolidation")
        return labels
    if name == "covid_rural":
        for s in labels:
            s |= {"consolidation", "edema"}
    else:
        for k in SUBJECT[name]:
            add(k, spec.prevalence)
    for k in DISTRACTORS[name]:
        add(k, spec.prevalence_other)
    if name == "padchest":
        for k in PADCHEST_RARE:
            add(k, spec.prevalence_rare)
    return labels


def _render(spec, split_code: int, i: int, labels: set[str]):
    # The twin's name is part of the seed: twins with equal seeds still draw different chests.
    rng = np.random.default_rng([spec.seed, split_code, i, zlib.crc32(spec.name.encode())])
    return render(sample_scene(rng, labels), spec.image_size)


def _uid(*parts) -> str:
    return str(uuid.UUID(bytes=hashlib.md5("/".join(map(str, parts)).encode()).digest()))


def _png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, compress_level=1)


def _boxes(mask: np.ndarray, scale: float, min_area: int = 4) -> list[tuple[int, int, int, int]]:
    """Bounding boxes (x, y, w, h) of the connected components of `mask`, scaled to the box frame."""
    lab, _ = ndimage.label(mask, structure=np.ones((3, 3)))
    out = []
    for sl in ndimage.find_objects(lab):
        ys, xs = sl
        if (ys.stop - ys.start) * (xs.stop - xs.start) < min_area:
            continue
        out.append((round(xs.start * scale), round(ys.start * scale),
                    round((xs.stop - xs.start) * scale), round((ys.stop - ys.start) * scale)))
    return out


def _components(mask: np.ndarray) -> list[np.ndarray]:
    lab, n = ndimage.label(mask, structure=np.ones((3, 3)))
    return [lab == k for k in range(1, n + 1)]


def _write_split(spec, tmp: Path, split: str, code: int, n: int, progress: bool) -> dict:
    """Renders and writes one split of twin `spec.name`; returns its positive counts."""
    name = spec.name
    labels = _split_labels(spec, code, n)
    rows, lines = [], []
    for i in tqdm(range(n), desc=f"phantom {name} {split}", disable=not progress):
        image, masks = _render(spec, code, i, labels[i])
        keys = labels[i]
        if name == "chestxray14":
            index = f"{code * 100000 + i:08d}_000.png"
            _png(tmp / "images" / index, image)
            cols = {c.lower(): 0 for c in CHESTXRAY14_LABELS}
            names = sorted({c for k in keys for c in CHESTXRAY14_OF.get(k, ())})
            for c in names:
                cols[c.lower()] = 1
            rows.append({"img_path": f"images/{index}", "Image Index": index,
                         "Finding Label": "|".join(names) or "No Finding", **cols})
        elif name == "padchest":
            rid = f"{split}_{i:05d}"
            _png(tmp / "images" / f"{rid}.png", image.astype(np.uint16) * 257)  # 16 bit, as published
            cols = dict.fromkeys(PADCHEST_LABELS, 0)
            for k in keys:
                for c in PADCHEST_OF[k]:
                    cols[c] = 1
            cols["normal"] = int(not keys)
            rows.append({"ImagePath": f"images/{rid}.png", **cols})
        elif name == "rsna":
            rid = _uid(spec.seed, split, i)
            (tmp / "images").mkdir(exist_ok=True)
            write_dicom(tmp / "images" / f"{rid}.dcm", image, patient_id=rid)
            boxes = _boxes(masks["consolidation"], BOX_FRAME / spec.image_size) if "consolidation" in keys else []
            rows.append({"ID": rid, "img_path": f"images/{rid}.dcm",
                         "boxes": "|".join(";".join(str(v) for v in b) for b in boxes),
                         "classes": int(bool(boxes))})
        elif name == "siim":
            rid = f"1.2.276.0.7230010.3.1.4.{spec.seed}.{code}.{i}"
            _png(tmp / "png_images" / f"{rid}.png", image)
            mask = masks.get("pneumothorax", np.zeros(image.shape, bool))
            _png(tmp / "png_masks" / f"{rid}.png", mask.astype(np.uint8) * 255)
            parts = _components(mask) if mask.any() else []
            lines += [f"{rid}, {rle_encode(m, 'relative')}" for m in parts] or [f"{rid}, -1"]
        elif name == "covidx":
            filename = f"phantom-{code}-{i:05d}.png"
            _png(tmp / Path(SPLIT_FILES["covidx"][split]).stem / filename, image)
            covid = {"consolidation", "edema"} <= keys
            lines.append(f"P{code}{i:05d} {filename} {'positive' if covid else 'negative'} phantom")
        elif name == "covid_rural":
            rid = f"rural_{split}_{i:05d}"
            path = tmp / "jpgs" / f"{rid}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(path, quality=95)
            _png(tmp / "pngs_masks" / f"{rid}.png",
                 ((masks["consolidation"] | masks["edema"]).astype(np.uint8) * 255))
            rows.append({"filepath": f"jpgs/{rid}.jpg"})
        else:  # pragma: no cover - guarded by TwinSpec
            raise ValueError(name)
    split_file = tmp / SPLIT_FILES.get(name, {}).get(split, f"{split}.csv")
    if name == "siim":  # Kaggle's header and ", " separator, written as published
        split_file.write_text("ImageId, EncodedPixels\n" + "".join(f"{x}\n" for x in lines))
    elif name == "covidx":
        split_file.write_text("".join(f"{x}\n" for x in lines))
    else:
        pd.DataFrame(rows).to_csv(split_file, index=False)
    counts: dict[str, int] = {"images": n}
    for s in labels:
        for k in s:
            counts[k] = counts.get(k, 0) + 1
    return counts


def build_twin(spec: TwinSpec, target: Path, progress: bool = True) -> Path:
    """Writes the twin of `spec.name` (train, valid and test splits) under `target`."""
    counts = {}
    with DatasetBuilder(target, marker="benchmark.json", subdirs=()) as tmp:
        for split, n, code in (("train", spec.n_train, 2), ("valid", spec.n_valid, 0), ("test", spec.n_test, 1)):
            if n:
                counts[split] = _write_split(spec, tmp, split, code, n, progress)
        write_json_atomic(tmp / "benchmark.json", {"name": spec.name, "config": asdict(spec), "hash": spec.hash,
                                                   "generator": PHANTOM_VERSION, "counts": counts})
    return target


def _ensure_built(target: Path, build) -> Path:
    """`target` once it holds a finished twin, calling `build(target)` on first use."""
    if not (target / "benchmark.json").is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        build(target)
    return target


def ensure_twin(spec: TwinSpec, cache_dir: str | Path, progress: bool = True) -> Path:
    """Directory of the twin of `spec` under `cache_dir`, built on first use."""
    return _ensure_built(Path(cache_dir) / "benchmarks" / f"{spec.name}-{spec.hash}",
                         lambda t: build_twin(spec, t, progress))


def _chexpert_row(labels: set[str]) -> dict:
    row = dict.fromkeys(CHEXPERT_LABELS, 0)
    for k in labels:
        for col in CHEXPERT_COLUMNS_OF[k]:
            row[col] = 1
    row["No Finding"] = int(not labels)
    return row


def build_chexpert_twin(spec: ChexpertTwinSpec, target: Path, progress: bool = True) -> Path:
    """Writes `valid.csv`, `test.csv` (and `train.csv` when n_train > 0): `Path` + 14 label columns,
    and the images under `target`."""
    five = ("atelectasis", "cardiomegaly", "consolidation", "edema", "pleural_effusion")
    other = ("pneumothorax", "nodule", "support_device")
    with DatasetBuilder(target, marker="benchmark.json", subdirs=()) as tmp:
        for split, n, code in (("valid", spec.n_valid, 0), ("test", spec.n_test, 1), ("train", spec.n_train, 2)):
            if split == "train" and not n:
                continue
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
            pd.DataFrame(rows, columns=["Path", *CHEXPERT_LABELS]).to_csv(tmp / f"{split}.csv", index=False)
        write_json_atomic(tmp / "benchmark.json", {"name": "chexpert", "config": asdict(spec),
                                                   "hash": spec.hash, "generator": PHANTOM_VERSION})
    return target


def ensure_chexpert_twin(spec: ChexpertTwinSpec, cache_dir: str | Path, progress: bool = True) -> Path:
    return _ensure_built(Path(cache_dir) / "benchmarks" / f"chexpert-{spec.hash}",
                         lambda t: build_chexpert_twin(spec, t, progress))
