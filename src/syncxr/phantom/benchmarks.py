"""Phantom twins of downstream benchmarks, written in the published file layouts: the machinery every
twin shares. What a twin is about (its subject, rare and excluded findings), how a row of it is
written and its class sets belong to its benchmark (`syncxr.benchmarks.<name>`), which hands itself
to `ensure_twin` as the `TwinLayout` below.

Each twin is rendered by the phantom renderer, so its labels, boxes and masks are exact, and is
written exactly as the real benchmark is laid out on disk, so the benchmark's reader reads both.
Twins are small by default and cached under `<cache>/benchmarks/<name>-<hash of the spec>`. Finding
counts per split are exact (`round(prevalence * n)`, at least one for subject and rare findings), so
no class of a small twin ends up without positives.
"""

from __future__ import annotations

import hashlib
import uuid
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from filelock import FileLock
from PIL import Image
from scipy import ndimage
from tqdm.auto import tqdm

from ..data.dataset_format import DatasetBuilder, config_hash, write_json_atomic
from .corpus import PHANTOM_VERSION
from .frequencies import real_prevalence
from .renderer import render
from .scene import sample_scene
from .vocabulary import FINDING_KEYS

SPLIT_CODES = (("train", 2), ("valid", 0), ("test", 1))  # split -> the code in its seeds and ids


class TwinLayout(Protocol):
    """What a benchmark tells the twin machinery (`syncxr.benchmarks.base.Benchmark` implements it)."""

    name: str  # part of the twin's seeds and cache address
    twin_splits: dict[str, str]  # split -> the file the twin writes it to
    subject: tuple[str, ...]  # findings drawn at `prevalence`
    rare: tuple[str, ...]  # tail findings drawn at `prevalence_rare`
    excluded: tuple[str, ...]  # findings never drawn as background

    def draw_twin_subject(
        self, spec: TwinSpec, rng: np.random.Generator, labels: list[set[str]], add: Callable
    ) -> None: ...

    def write_twin_image(
        self,
        spec: TwinSpec,
        out_dir: Path,
        split: str,
        code: int,
        i: int,
        image: np.ndarray,
        masks: dict[str, np.ndarray],
        findings: set[str],
    ) -> object: ...

    def write_twin_split(self, path: Path, rows: list) -> None: ...

    def twin_class_sets(self) -> dict[str, list[str]]: ...


@dataclass(frozen=True)
class TwinSpec:
    """A phantom twin of benchmark `name`. Each subject finding is drawn at exactly `prevalence` of
    every split, each rare one at `prevalence_rare`, and every other finding at `background` times
    its prevalence in the phantom real corpus (a realistic backdrop of findings the benchmark does
    not label)."""

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
        if not self.name:
            raise ValueError("a twin needs its benchmark's name")
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


def background_findings(twin: TwinLayout) -> tuple[str, ...]:
    """What a twin draws at the real corpus's prevalence: every finding it is not about."""
    taken = {*twin.subject, *twin.rare, *twin.excluded}
    return tuple(k for k in FINDING_KEYS if k not in taken)


def split_labels(spec: TwinSpec, twin: TwinLayout, split_code: int, n: int) -> list[set[str]]:
    """The findings of each image of one split: background, then rare, then subject (this order is
    part of every twin's seeds)."""
    rng = np.random.default_rng([spec.seed, split_code, 7, zlib.crc32(spec.name.encode())])
    labels = [set() for _ in range(n)]

    def add(key, p, at_least_one=True):
        for i in np.flatnonzero(exact_draw(rng, n, p, at_least_one)):
            labels[i].add(key)

    real = real_prevalence()
    for k in background_findings(twin):
        add(k, spec.background * real[k], at_least_one=False)
    for k in twin.rare:
        add(k, spec.prevalence_rare)
    twin.draw_twin_subject(spec, rng, labels, add)
    return labels


def render_twin_image(spec: TwinSpec, split_code: int, i: int, labels: set[str]):
    # The twin's name is part of the seed: twins with equal seeds still draw different chests.
    rng = np.random.default_rng([spec.seed, split_code, i, zlib.crc32(spec.name.encode())])
    return render(sample_scene(rng, labels), spec.image_size)


def uid(*parts) -> str:
    """A UUID string fixed by `parts` (twin ids that look like the published ones)."""
    return str(uuid.UUID(bytes=hashlib.md5("/".join(map(str, parts)).encode()).digest()))


def write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, compress_level=1)


def mask_boxes(mask: np.ndarray, scale: float, min_area: int = 4) -> list[tuple[int, int, int, int]]:
    """Bounding boxes (x, y, w, h) of the connected components of `mask`, scaled to the box frame."""
    lab, _ = ndimage.label(mask, structure=np.ones((3, 3)))
    out = []
    for sl in ndimage.find_objects(lab):
        ys, xs = sl
        if (ys.stop - ys.start) * (xs.stop - xs.start) < min_area:
            continue
        out.append(
            (
                round(xs.start * scale),
                round(ys.start * scale),
                round((xs.stop - xs.start) * scale),
                round((ys.stop - ys.start) * scale),
            )
        )
    return out


def mask_components(mask: np.ndarray) -> list[np.ndarray]:
    lab, n = ndimage.label(mask, structure=np.ones((3, 3)))
    return [lab == k for k in range(1, n + 1)]


def _write_split(spec: TwinSpec, twin: TwinLayout, tmp: Path, split: str, code: int, n: int, progress: bool) -> dict:
    """Renders and writes one split of the twin; returns its positive counts."""
    labels = split_labels(spec, twin, code, n)
    rows = []
    for i in tqdm(range(n), desc=f"phantom {spec.name} {split}", disable=not progress):
        image, masks = render_twin_image(spec, code, i, labels[i])
        rows.append(twin.write_twin_image(spec, tmp, split, code, i, image, masks, labels[i]))
    twin.write_twin_split(tmp / twin.twin_splits[split], rows)
    counts: dict[str, int] = {"images": n}
    for s in labels:
        for k in s:
            counts[k] = counts.get(k, 0) + 1
    return counts


def build_twin(spec: TwinSpec, twin: TwinLayout, target: Path, progress: bool = True) -> Path:
    """Writes the twin (its train, valid and test splits, those with rows) under `target`."""
    counts = {}
    sizes = {"train": spec.n_train, "valid": spec.n_valid, "test": spec.n_test}
    with DatasetBuilder(target, marker="benchmark.json", subdirs=()) as tmp:
        for split, code in SPLIT_CODES:
            if sizes[split]:
                counts[split] = _write_split(spec, twin, tmp, split, code, sizes[split], progress)
        write_json_atomic(
            tmp / "benchmark.json",
            {
                "name": spec.name,
                "config": asdict(spec),
                "hash": spec.hash,
                "generator": PHANTOM_VERSION,
                "counts": counts,
                "class_sets": twin.twin_class_sets(),
            },
        )
    return target


def ensure_twin(spec: TwinSpec, twin: TwinLayout, cache_dir: str | Path, progress: bool = True) -> Path:
    """Directory of the twin of `spec` under `cache_dir`, built on first use under the directory's
    lock (as the phantom corpora are): the first jobs of a sweep on an empty cache draw it once."""
    target = Path(cache_dir) / "benchmarks" / f"{spec.name}-{spec.hash}"
    if (target / "benchmark.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if not (target / "benchmark.json").is_file():  # else another job built it while this one waited
            build_twin(spec, twin, target, progress)
    return target
