"""Paired phantom corpora: a balanced, clean "syn" set and a long-tailed, flawed "real" set.

The real set carries the defects the SynCXR paper measured in MIMIC-CXR: long-tailed finding
frequencies, low-quality and wrong-view images, and image-report pairs that do not belong together.
Every defect is recorded per row (`defect`) and counted in `dataset.json`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from ..data.dataset_format import (INFO, MANIFEST, DatasetBuilder, config_hash, is_complete,
                                   write_json_atomic, write_parquet_atomic)
from .renderer import render
from .report_writer import write_report
from .scene import sample_scene
from .vocabulary import FINDING_KEYS

# Bump when the renderer or report writer changes, so cached datasets are rebuilt.
PHANTOM_VERSION = "phantom-v2"

# Label prevalences of MIMIC-CXR (CheXpert labeler, rounded), mapped onto phantom findings.
REAL_PREVALENCE = {
    "support_device": 0.29, "pleural_effusion": 0.24, "atelectasis": 0.20, "cardiomegaly": 0.20,
    "edema": 0.12, "consolidation": 0.05, "pneumothorax": 0.045, "nodule": 0.03,
}


@dataclass(frozen=True)
class PhantomCorpusSpec:
    """Everything that determines a phantom corpus; its hash addresses the cached copy."""

    kind: str = "syn"  # "syn": balanced and clean; "real": long-tailed with defects
    n: int = 2000  # image-report pairs
    seed: int = 0
    image_size: int = 128  # rendered side length in pixels
    val_fraction: float = 0.05  # rows marked split="val"
    findings_per_image: tuple[float, ...] = (0.1, 0.4, 0.35, 0.15)  # syn: P(k findings), k=0..3
    tau_max_slack: float = 1.02  # syn: per-finding cap = slack x the balanced count
    prevalence: dict = field(default_factory=lambda: dict(REAL_PREVALENCE))  # real: P(finding)
    low_quality_rate: float = 0.03  # real: burnt-out, dark, noisy or blurred images
    wrong_view_rate: float = 0.02  # real: lateral images in a frontal corpus
    unpaired_rate: float = 0.03  # real: rows whose report belongs to another image
    negation_rate: float = 0.5  # share of absent findings a report states as negative

    def __post_init__(self):
        if self.kind not in ("syn", "real"):
            raise ValueError(f"phantom corpus kind must be 'syn' or 'real', got {self.kind!r}")
        if self.n < 2:
            raise ValueError(f"phantom corpus n must be >= 2, got {self.n}")
        for name in ("val_fraction", "low_quality_rate", "wrong_view_rate", "unpaired_rate"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise ValueError(f"phantom corpus {name} must be in [0, 1), got {v}")
        if abs(sum(self.findings_per_image) - 1.0) > 1e-6:
            raise ValueError(f"findings_per_image must sum to 1, got {self.findings_per_image}")
        unknown = set(self.prevalence) - set(FINDING_KEYS)
        if unknown:
            raise ValueError(f"prevalence names unknown finding(s) {sorted(unknown)}; known: {FINDING_KEYS}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["findings_per_image"] = list(self.findings_per_image)
        return d

    @property
    def hash(self) -> str:
        return config_hash({"version": PHANTOM_VERSION, **self.to_dict()})


def draw_balanced_labels(spec: PhantomCorpusSpec, rng: np.random.Generator) -> list[tuple[str, ...]]:
    """Finding sets with (near-)equal counts per finding: a finding at its cap τ_max is redrawn."""
    ks = rng.choice(len(spec.findings_per_image), size=spec.n, p=spec.findings_per_image)
    tau_max = math.ceil(ks.sum() / len(FINDING_KEYS) * spec.tau_max_slack)
    counts = dict.fromkeys(FINDING_KEYS, 0)
    out = []
    for k in ks:
        open_keys = [f for f in FINDING_KEYS if counts[f] < tau_max]
        chosen = rng.choice(open_keys, size=min(k, len(open_keys)), replace=False) if k else []
        for f in chosen:
            counts[str(f)] += 1
        out.append(tuple(sorted(str(f) for f in chosen)))
    return out


def draw_longtail_labels(spec: PhantomCorpusSpec, rng: np.random.Generator) -> list[tuple[str, ...]]:
    keys = sorted(spec.prevalence)
    p = np.array([spec.prevalence[k] for k in keys])
    hits = rng.random((spec.n, len(keys))) < p
    return [tuple(k for k, h in zip(keys, row) if h) for row in hits]


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


def _make_row(spec: PhantomCorpusSpec, i: int, labels: tuple[str, ...], defect: str,
              images_dir: Path) -> dict:
    rng = np.random.default_rng([spec.seed, 0 if spec.kind == "syn" else 1, i])
    scene = sample_scene(rng, labels, view="LATERAL" if defect == "wrong_view" else "PA",
                         low_quality=defect == "low_quality")
    image, _ = render(scene, spec.image_size)
    report = write_report(scene, rng, spec.negation_rate)
    rid = f"{spec.kind}-{spec.seed}-{i:07d}"
    Image.fromarray(image).save(images_dir / f"{rid}.png", optimize=False, compress_level=1)
    return {"id": rid, "image": f"images/{rid}.png", "findings": report.findings,
            "impression": report.impression, "entities": report.entities,
            "labels": list(scene.finding_keys), "view": scene.view, "defect": defect}


def build_phantom_corpus(spec: PhantomCorpusSpec, target: Path, progress: bool = True) -> Path:
    """Renders the corpus of `spec` into directory `target` (atomically)."""
    rng = np.random.default_rng([spec.seed, 7])
    labels = draw_balanced_labels(spec, rng) if spec.kind == "syn" else draw_longtail_labels(spec, rng)
    defects = _draw_defects(spec, rng)
    with DatasetBuilder(target) as tmp:
        rows = [_make_row(spec, i, labels[i], defects[i], tmp / "images")
                for i in tqdm(range(spec.n), desc=f"phantom {spec.kind} corpus", disable=not progress)]
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
        write_parquet_atomic(tmp / MANIFEST, df)
        write_json_atomic(tmp / INFO, {
            "name": f"phantom_{spec.kind}", "config": spec.to_dict(), "hash": spec.hash,
            "generator": PHANTOM_VERSION, "counts": corpus_counts(df),
        })
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


def ensure_phantom_corpus(spec: PhantomCorpusSpec, cache_dir: str | Path, progress: bool = True) -> Path:
    """Directory of the corpus of `spec` under `cache_dir`, building it on first use."""
    target = Path(cache_dir) / "datasets" / f"phantom_{spec.kind}-{spec.hash}"
    if not is_complete(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        build_phantom_corpus(spec, target, progress)
    return target
