"""Phantom twins of downstream benchmarks, written in the published file layouts.

Each twin is rendered by the phantom renderer, so its labels, boxes and masks are exact, and is
written exactly as the real benchmark is laid out on disk, so `syncxr.data.benchmarks` reads both:

| twin         | split files                          | images                        | ground truth            |
|--------------|--------------------------------------|-------------------------------|-------------------------|
| chexpert     | `{train,valid,test}.csv` (`Path`+14) | `<split>/patientN/study1/...png` | 14 label columns     |
| chestxray14  | `{train,valid,test}.csv`             | `images/<Image Index>` PNG    | 14 lower-case columns   |
| padchest     | `{train,valid,test}.csv` (path col 0)| `images/<id>.png`, 16 bit     | label columns by name   |
| rsna         | `{train,valid,test}.csv` (`ID, img_path, boxes, classes`) | `images/<ID>.dcm` | pneumonia boxes, 1024-px frame |
| siim         | `{train,valid,test}.csv` (`ImageId, EncodedPixels`, relative RLE) | `png_images/<id>.png` (+ `png_masks/`) | pneumothorax masks |
| covidx       | `{train,val,test}.txt` (`pid file class source`, no header) | `<split>/<file>.png` | consolidation + edema = COVID |
| covid_rural  | `{train,valid,test}.csv` (`filepath`)| `jpgs/<id>.jpg`               | `pngs_masks/<id>.png`: consolidation + edema |

One `TwinSpec` describes every twin; which findings a twin is about, its rare classes and its label
columns are in `twin_labels`. Twins are small by default and cached under
`<cache>/benchmarks/<name>-<hash of the spec>`. Finding counts per split are exact
(`round(prevalence * n)`, at least one for subject and rare findings), so no class of a small twin
ends up without positives.
"""

from __future__ import annotations

import hashlib
import uuid
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from filelock import FileLock
from PIL import Image
from scipy import ndimage
from tqdm.auto import tqdm

from ..data.dataset_format import DatasetBuilder, config_hash, write_json_atomic
from ..data.image_io import write_dicom
from ..data.rle import rle_encode
from .corpus import PHANTOM_VERSION
from .frequencies import real_prevalence
from .renderer import render
from .scene import sample_scene
from .twin_labels import (CHESTXRAY14_LABELS, CHESTXRAY14_OF, CHEXPERT5, CHEXPERT_COLUMNS_OF,  # noqa: F401
                          CHEXPERT_LABELS, PADCHEST_LABELS, PADCHEST_OF, RARE, SUBJECT, TWINS,
                          background_findings, class_sets)

SPLIT_FILES = {"covidx": {"train": "train.txt", "valid": "val.txt", "test": "test.txt"}}
BOX_FRAME = 1024  # RSNA boxes are in the coordinates of the published 1024 x 1024 DICOMs

@dataclass(frozen=True)
class TwinSpec:
    """A phantom twin of benchmark `name` (one of TWINS). Each subject finding is drawn at exactly
    `prevalence` of every split, each rare one at `prevalence_rare`, and every other finding at
    `background` times its prevalence in the phantom real corpus (a realistic backdrop of findings
    the benchmark does not label)."""

    name: str
    n_train: int = 0  # a labelled training split (for fine-tuning); 0: none
    n_valid: int = 100
    n_test: int = 200
    seed: int = 2000
    image_size: int = 128
    prevalence: float = 0.3  # each finding the benchmark is about (COVIDx: the COVID pair)
    prevalence_rare: float = 0.05  # each of its rare (tail) findings
    background: float = 1.0  # scale on the real-corpus prevalence of every other finding

    def __post_init__(self):
        if self.name not in TWINS:
            raise ValueError(f"no phantom twin {self.name!r}; choose from {list(TWINS)}")
        for k in ("n_train", "n_valid", "n_test"):
            if getattr(self, k) < 0:
                raise ValueError(f"twin {self.name}: {k} must be >= 0")
        for k in ("prevalence", "prevalence_rare"):
            if not 0.0 <= getattr(self, k) <= 1.0:
                raise ValueError(f"twin {self.name}: {k} must be in [0, 1]")
        if self.background < 0:
            raise ValueError(f"twin {self.name}: background must be >= 0")

    @property
    def hash(self) -> str:
        return config_hash({"version": PHANTOM_VERSION, "benchmark": self.name, **asdict(self)})


def exact_draw(rng: np.random.Generator, n: int, prevalence: float, at_least_one: bool = True) -> np.ndarray:
    """Boolean mask of n rows with exactly round(prevalence * n) true (at least 1 if p > 0 and
    `at_least_one`)."""
    k = 0 if prevalence <= 0 or n == 0 else min(n, max(int(at_least_one), round(prevalence * n)))
    out = np.zeros(n, dtype=bool)
    out[rng.permutation(n)[:k]] = True
    return out


def _split_labels(spec: TwinSpec, split_code: int, n: int) -> list[set[str]]:
    rng = np.random.default_rng([spec.seed, split_code, 7, zlib.crc32(spec.name.encode())])
    labels = [set() for _ in range(n)]
    name = spec.name

    def add(key, p, at_least_one=True):
        for i in np.flatnonzero(exact_draw(rng, n, p, at_least_one)):
            labels[i].add(key)

    real = real_prevalence()
    for k in background_findings(name):
        add(k, spec.background * real[k], at_least_one=False)
    for k in RARE.get(name, ()):
        add(k, spec.prevalence_rare)
    if name == "covid_rural":
        for s in labels:
            s |= {"consolidation", "edema"}
    elif name == "covidx":
        covid = exact_draw(rng, n, spec.prevalence)
        for i in range(n):
            if covid[i]:
                labels[i] |= {"consolidation", "edema"}
    else:
        for k in SUBJECT[name]:
            add(k, spec.prevalence)
    return labels


def _render(spec: TwinSpec, split_code: int, i: int, labels: set[str]):
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
        if name == "chexpert":
            rel = f"{split}/patient{i:05d}/study1/view1_frontal.png"
            _png(tmp / rel, image)
            row = dict.fromkeys(CHEXPERT_LABELS, 0)
            row.update({c: 1 for k in keys for c in CHEXPERT_COLUMNS_OF.get(k, ())})
            rows.append({"Path": rel, **row, "No Finding": int(not keys)})
        elif name == "chestxray14":
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
                for c in PADCHEST_OF.get(k, ()):
                    cols[c] = 1
            cols["normal"] = int(not keys)
            rows.append({"ImagePath": f"images/{rid}.png", **cols})
        elif name == "rsna":
            rid = _uid(spec.seed, split, i)
            (tmp / "images").mkdir(exist_ok=True)
            write_dicom(tmp / "images" / f"{rid}.dcm", image, patient_id=rid)
            boxes = _boxes(masks["pneumonia"], BOX_FRAME / spec.image_size) if "pneumonia" in keys else []
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
    elif name == "chexpert":
        pd.DataFrame(rows, columns=["Path", *CHEXPERT_LABELS]).to_csv(split_file, index=False)
    else:
        pd.DataFrame(rows).to_csv(split_file, index=False)
    counts: dict[str, int] = {"images": n}
    for s in labels:
        for k in s:
            counts[k] = counts.get(k, 0) + 1
    return counts


def build_twin(spec: TwinSpec, target: Path, progress: bool = True) -> Path:
    """Writes the twin of `spec.name` (its train, valid and test splits, those with rows) under `target`."""
    counts = {}
    with DatasetBuilder(target, marker="benchmark.json", subdirs=()) as tmp:
        for split, n, code in (("train", spec.n_train, 2), ("valid", spec.n_valid, 0), ("test", spec.n_test, 1)):
            if n:
                counts[split] = _write_split(spec, tmp, split, code, n, progress)
        write_json_atomic(tmp / "benchmark.json", {"name": spec.name, "config": asdict(spec), "hash": spec.hash,
                                                   "generator": PHANTOM_VERSION, "counts": counts,
                                                   "class_sets": class_sets(spec.name)})
    return target


def ensure_twin(spec: TwinSpec, cache_dir: str | Path, progress: bool = True) -> Path:
    """Directory of the twin of `spec` under `cache_dir`, built on first use under the directory's
    lock (as the phantom corpora are): the first jobs of a sweep on an empty cache draw it once."""
    target = Path(cache_dir) / "benchmarks" / f"{spec.name}-{spec.hash}"
    if (target / "benchmark.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if not (target / "benchmark.json").is_file():  # else another job built it while this one waited
            build_twin(spec, target, progress)
    return target
