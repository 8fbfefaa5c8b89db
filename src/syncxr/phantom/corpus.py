"""Paired phantom corpora: a balanced, clean "syn" set and a long-tailed, flawed "real" set.

The real set carries the defects the SynCXR paper measured in MIMIC-CXR: long-tailed finding
frequencies, low-quality and wrong-view images, and image-report pairs that do not belong together.
Every defect is recorded per row (`defect`) and counted in `dataset.json`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from filelock import FileLock
from PIL import Image
from tqdm.auto import tqdm

from ..data.dataset_format import (
    INFO,
    MANIFEST,
    DatasetBuilder,
    config_hash,
    is_complete,
    write_json_atomic,
    write_parquet_atomic,
)
from ..data.inequality import gini
from .frequencies import ANCHOR_PREVALENCE, NIH_FINDINGS_PER_IMAGE, calibration_record, draw_profile_labels
from .renderer import render
from .report_writer import Report, write_report
from .scene import Scene, sample_scene
from .vocabulary import FINDING_KEYS

# Bump when the renderer or report writer changes, so cached datasets are rebuilt.
PHANTOM_VERSION = "phantom-v3"


@dataclass(frozen=True)
class PhantomCorpusSpec:
    """Everything that determines a phantom corpus; its hash addresses the cached copy."""

    kind: str = "syn"  # "syn": balanced and clean; "real": long-tailed with defects
    n: int = 2000  # image-report pairs
    seed: int = 0
    image_size: int = 128  # rendered side length in pixels
    val_fraction: float = 0.05  # rows marked split="val"
    findings_per_image: tuple[float, ...] = (0.1, 0.4, 0.35, 0.15)  # syn: P(k findings), k=0..3
    # real: relative frequency of each finding (percent of images in its anchor dataset, see
    # phantom/frequencies.py) and P(k findings per image), k = 0, 1, ... (NIH ChestX-ray14)
    prevalence: dict = field(default_factory=lambda: dict(ANCHOR_PREVALENCE))
    real_findings_per_image: tuple[float, ...] = NIH_FINDINGS_PER_IMAGE
    # real defects; the judge removes low-quality and wrong-view images: 3 % in all, as curation
    # removed from MIMIC-CXR (SynCXR, Section 3.1)
    low_quality_rate: float = 0.02  # burnt-out, dark, noisy or blurred images
    wrong_view_rate: float = 0.01  # lateral images in a frontal corpus
    unpaired_rate: float = 0.03  # real: rows whose report belongs to another image
    negation_rate: float = 0.5  # scales how often reports state an absent finding (x its negation_weight)

    def __post_init__(self):
        if self.kind not in ("syn", "real"):
            raise ValueError(f"phantom corpus kind must be 'syn' or 'real', got {self.kind!r}")
        if self.n < 2:
            raise ValueError(f"phantom corpus n must be >= 2, got {self.n}")
        for name in ("val_fraction", "low_quality_rate", "wrong_view_rate", "unpaired_rate"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise ValueError(f"phantom corpus {name} must be in [0, 1), got {v}")
        for name in ("findings_per_image", "real_findings_per_image"):
            p = getattr(self, name)
            if abs(sum(p) - 1.0) > 1e-6 or min(p) < 0:
                raise ValueError(f"{name} must be probabilities summing to 1, got {p}")
        unknown = set(self.prevalence) - set(FINDING_KEYS)
        if unknown:
            raise ValueError(f"prevalence names unknown finding(s) {sorted(unknown)}; known: {FINDING_KEYS}")
        if not self.prevalence or min(self.prevalence.values()) <= 0:
            raise ValueError(f"prevalence must give each finding it names a positive frequency, got {self.prevalence}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["findings_per_image"] = list(self.findings_per_image)
        d["real_findings_per_image"] = list(self.real_findings_per_image)
        return d

    @property
    def hash(self) -> str:
        return config_hash({"version": PHANTOM_VERSION, **self.to_dict()})


def draw_balanced_labels(spec: PhantomCorpusSpec, rng: np.random.Generator) -> list[tuple[str, ...]]:
    """Finding sets with equal counts per finding (within one): each image takes the k least-used
    findings, ties broken at random, so however many findings there are, none falls behind."""
    ks = rng.choice(len(spec.findings_per_image), size=spec.n, p=spec.findings_per_image)
    counts = np.zeros(len(FINDING_KEYS), dtype=int)
    out = []
    for k in ks:
        order = rng.permutation(len(FINDING_KEYS))
        chosen = order[np.argsort(counts[order], kind="stable")[:k]]
        counts[chosen] += 1
        out.append(tuple(sorted(FINDING_KEYS[j] for j in chosen)))
    return out


def draw_longtail_labels(spec: PhantomCorpusSpec, rng: np.random.Generator) -> list[tuple[str, ...]]:
    """Finding sets with the anchors' relative finding frequencies and number-of-findings profile."""
    return draw_profile_labels(spec.n, spec.prevalence, spec.real_findings_per_image, rng)


def _draw_defects(spec: PhantomCorpusSpec, rng: np.random.Generator) -> list[str]:
    if spec.kind == "syn":
        return ["none"] * spec.n
    u = rng.random(spec.n)
    edges = np.cumsum([spec.low_quality_rate, spec.wrong_view_rate, spec.unpaired_rate])
    names = np.array(["low_quality", "wrong_view", "unpaired", "none"])
    defects = list(names[np.searchsorted(edges, u, side="right")])
    if defects.count("unpaired") == 1:  # a single row cannot swap its report with another
        defects[defects.index("unpaired")] = "none"
    return defects


def row_scene_report(spec: PhantomCorpusSpec, i: int, labels, defect: str) -> tuple[Scene, Report]:
    """The scene of row i (drawn with finding keys `labels`, its `defect`) and the report written of
    it, with the entities' exact spans (an unpaired row's manifest carries another row's report)."""
    rng = np.random.default_rng([spec.seed, 0 if spec.kind == "syn" else 1, i])
    scene = sample_scene(
        rng, labels, view="LATERAL" if defect == "wrong_view" else "PA", low_quality=defect == "low_quality"
    )
    return scene, write_report(scene, rng, spec.negation_rate)  # rendering draws nothing from rng


def _make_row(spec: PhantomCorpusSpec, i: int, labels: tuple[str, ...], defect: str, images_dir: Path | None) -> dict:
    """Row i; its image is rendered into `images_dir` (None: not rendered; the report does not
    depend on the pixels, so the row is the same)."""
    scene, report = row_scene_report(spec, i, labels, defect)
    rid = f"{spec.kind}-{spec.seed}-{i:07d}"
    if images_dir is not None:
        Image.fromarray(render(scene, spec.image_size)[0]).save(
            images_dir / f"{rid}.png", optimize=False, compress_level=1
        )
    return {
        "id": rid,
        "image": f"images/{rid}.png",
        "findings": report.findings,
        "impression": report.impression,
        "entities": report.entities,
        "labels": list(scene.finding_keys),
        "view": scene.view,
        "defect": defect,
    }


def corpus_manifest(spec: PhantomCorpusSpec, images_dir: Path | None = None, progress: bool = False) -> pd.DataFrame:
    """The manifest of the corpus of `spec`, rendering its images into `images_dir` (None: the rows
    alone, as the cached corpus has them, for uses that read only the reports)."""
    rng = np.random.default_rng([spec.seed, 7])
    labels = draw_balanced_labels(spec, rng) if spec.kind == "syn" else draw_longtail_labels(spec, rng)
    defects = _draw_defects(spec, rng)
    rows = [
        _make_row(spec, i, labels[i], defects[i], images_dir)
        for i in tqdm(range(spec.n), desc=f"phantom {spec.kind} corpus", disable=not progress)
    ]
    df = pd.DataFrame(rows)
    unpaired = np.flatnonzero(df["defect"].to_numpy() == "unpaired")
    if len(unpaired):  # rotate reports among the unpaired rows: each gets another image's report
        src = np.roll(unpaired, 1)
        for col in ("findings", "impression", "entities"):
            df.loc[unpaired, col] = df.loc[src, col].to_numpy()
    df["split"] = np.where(rng.random(spec.n) < spec.val_fraction, "val", "train")
    df["source"] = f"phantom_{spec.kind}"
    df["generator"] = PHANTOM_VERSION
    df["seed"] = spec.seed
    return df


def build_phantom_corpus(spec: PhantomCorpusSpec, target: Path, progress: bool = True) -> Path:
    """Renders the corpus of `spec` into directory `target` (atomically)."""
    with DatasetBuilder(target) as tmp:
        df = corpus_manifest(spec, tmp / "images", progress)
        write_parquet_atomic(tmp / MANIFEST, df)
        info = {
            "name": f"phantom_{spec.kind}",
            "config": spec.to_dict(),
            "hash": spec.hash,
            "generator": PHANTOM_VERSION,
            "counts": corpus_counts(df),
        }
        info["finding_stats"] = finding_stats(info["counts"]["findings"])
        if spec.kind == "real":
            info["calibration"] = calibration_record()
        write_json_atomic(tmp / INFO, info)
    return target


def corpus_counts(df: pd.DataFrame) -> dict:
    """Row, split, finding and defect counts of a manifest, as stored in dataset.json."""
    findings = pd.Series([k for ks in df["labels"] for k in ks], dtype=object).value_counts()
    return {
        "rows": int(len(df)),
        "splits": {str(k): int(v) for k, v in df["split"].value_counts().items()},
        "findings": {k: int(findings.get(k, 0)) for k in FINDING_KEYS},
        "no_finding": int(sum(len(ks) == 0 for ks in df["labels"])),
        "defects": {d: int((df["defect"] == d).sum()) for d in ("low_quality", "wrong_view", "unpaired")},
    }


def finding_stats(counts: dict[str, int]) -> dict:
    """Skew of the finding frequencies (images per finding, over every finding of the world): Gini,
    max/min among the findings present, and how many are present."""
    c = np.array([counts.get(k, 0) for k in FINDING_KEYS], dtype=float)
    present = c[c > 0]
    return {
        "findings": int(len(present)),
        "gini": gini(c),
        "max": int(c.max()) if len(c) else 0,
        "min": int(present.min()) if len(present) else 0,
        "max_min_ratio": float(present.max() / present.min()) if len(present) else 0.0,
    }


def corpus_dir(spec: PhantomCorpusSpec, cache_dir: str | Path) -> Path:
    return Path(cache_dir) / "datasets" / f"phantom_{spec.kind}-{spec.hash}"


def corpus_reports(spec: PhantomCorpusSpec, cache_dir: str | Path, split: str = "train") -> pd.DataFrame:
    """The manifest rows of one split of the corpus of `spec`: read from the cached corpus when it
    is built, made without rendering a single image otherwise (what a vocabulary needs)."""
    target = corpus_dir(spec, cache_dir)
    df = pd.read_parquet(target / MANIFEST) if is_complete(target) else corpus_manifest(spec)
    return df[df["split"] == split].reset_index(drop=True)


def ensure_phantom_corpus(spec: PhantomCorpusSpec, cache_dir: str | Path, progress: bool = True) -> Path:
    """Directory of the corpus of `spec` under `cache_dir`, building it on first use under the
    directory's lock (as dataset_dirs builds datasets): concurrent jobs render its images once."""
    target = corpus_dir(spec, cache_dir)
    if is_complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if not is_complete(target):  # else another process built it while this one waited
            build_phantom_corpus(spec, target, progress)
    return target
