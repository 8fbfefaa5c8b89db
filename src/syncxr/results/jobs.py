"""The jobs of a sweep as the report reads them: overrides, Hydra choices, resolved config, metrics,
per-image predictions and the evaluation details, and `results_frame`, one row per job.

A job is a sub-directory holding `.hydra/overrides.yaml`; it is `ok` when it wrote `metrics.json`,
`quoted` when it was a paper-mode data=real job that quoted the published row instead of training
(provenance.QUOTED), and `failed` otherwise (failed jobs stay in the table as rows, they never silently vanish).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd
import yaml

from .provenance import QUOTED, unpublished

# Tasks whose `datasets` name benchmarks (retrieval names training-format datasets instead).
BENCHMARK_TASKS = ("zeroshot_cls", "zeroshot_grounding", "linear_probe", "finetune_cls", "finetune_seg")


def _yaml(path: Path):
    return yaml.safe_load(path.read_text()) if path.is_file() else None


def parse_overrides(items) -> dict[str, str]:
    """Hydra override strings (`key=value`, `+key=value`, `~key`) -> {key: value}."""
    out = {}
    for item in items or []:
        key, _, value = str(item).lstrip("+~").partition("=")
        out[key] = value
    return out


@dataclass
class Job:
    dir: Path
    overrides: dict[str, str]
    choices: dict = field(default_factory=dict)  # Hydra's group choices (.hydra/hydra.yaml)
    config: dict = field(default_factory=dict)  # resolved_config.yaml, else .hydra/config.yaml
    metrics: dict | None = None
    _predictions: dict = field(default_factory=dict, repr=False)

    @classmethod
    def read(cls, job_dir: Path) -> Job:
        hydra = _yaml(job_dir / ".hydra" / "hydra.yaml") or {}
        choices = ((hydra.get("hydra") or {}).get("runtime") or {}).get("choices") or {}
        config = _yaml(job_dir / "resolved_config.yaml") or _yaml(job_dir / ".hydra" / "config.yaml") or {}
        metrics_path = job_dir / "metrics.json"
        metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else None
        return cls(job_dir, parse_overrides(_yaml(job_dir / ".hydra" / "overrides.yaml")), choices, config, metrics)

    @property
    def name(self) -> str:
        return self.dir.name

    @property
    def ok(self) -> bool:
        return self.metrics is not None

    @property
    def quoted(self) -> bool:
        """A data=real job of paper.reuse_published_real=true: it did not train (QUOTED)."""
        return not self.ok and (self.dir / QUOTED).is_file()

    @property
    def status(self) -> str:
        return "ok" if self.ok else "quoted" if self.quoted else "failed"

    @property
    def seed(self) -> int:
        return int(self.overrides.get("seed", self.config.get("seed", 0)))

    def _choice(self, group: str) -> str:
        section = self.config.get(group)
        return str(
            self.overrides.get(
                group, self.choices.get(group) or (section.get("name", "") if isinstance(section, dict) else "")
            )
        )

    @property
    def data(self) -> str:
        return self._choice("data")

    @property
    def model(self) -> str:
        return self._choice("model")

    @property
    def recipe(self) -> str:
        """`paper` for the study as published (recipe=paper, which experiment=syncxr_paper selects)."""
        if self.choices.get("recipe"):
            return str(self.choices["recipe"])
        if self.overrides.get("recipe") == "paper" or self.overrides.get("experiment") == "syncxr_paper":
            return "paper"
        return str(self.overrides.get("recipe", "phantom"))

    @property
    def phantom_twins(self) -> list[str]:
        """Benchmarks this job's evaluation read from their phantom twins (`root: null`; older runs also
        said `builder: phantom`, always with a null root)."""
        benches = self.config.get("benchmark") or {}
        used = set()
        for task in BENCHMARK_TASKS:
            for ref in ((self.config.get("task") or {}).get(task) or {}).get("datasets") or []:
                used.add(str(ref).partition(":")[0])
        return sorted(b for b in used if b in benches and (benches[b] or {}).get("root") is None)

    @cached_property
    def evaluation(self) -> dict:
        path = self.dir / "evaluation.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    def thresholds(self, task: str, dataset: str) -> dict[str, float] | None:
        """Per-class F1/ACC thresholds the suite used (evaluation.json), or None."""
        return ((self.evaluation.get("details") or {}).get(task) or {}).get(dataset, {}).get("thresholds")

    def predictions(self, task: str, dataset: str) -> pd.DataFrame | None:
        """Per-image predictions `predictions/<task>/<dataset>.parquet` (read once), or None if the
        suite wrote none."""
        key = f"{task}/{dataset}"
        if key not in self._predictions:
            path = self.dir / "predictions" / task / f"{dataset}.parquet"
            self._predictions[key] = pd.read_parquet(path) if path.is_file() else None
        return self._predictions[key]


def find_jobs(sweep_dir: str | Path) -> list[Job]:
    sweep_dir = Path(sweep_dir)
    dirs = sorted(p.parent.parent for p in sweep_dir.glob("*/.hydra/overrides.yaml"))
    if not dirs:
        raise FileNotFoundError(f"{sweep_dir}: no jobs (no */.hydra/overrides.yaml)")
    return [Job.read(d) for d in dirs]


def results_frame(jobs: list[Job]) -> pd.DataFrame:
    """One row per job: swept values (`sweep/<key>`), seed, data, model, recipe, the phantom twins its
    evaluation used, status and every metric."""
    rows = []
    for job in jobs:
        row = {
            "job": job.name,
            **{f"sweep/{k}": v for k, v in job.overrides.items()},
            "seed": job.seed,
            "data": job.data,
            "model": job.model,
            "recipe": job.recipe,
            "phantom_twins": ";".join(job.phantom_twins),
            "status": job.status,
            "published_config": not unpublished(job),  # the paper published this configuration
        }
        row.update(job.metrics or {})
        rows.append(row)
    return pd.DataFrame(rows)


def swept_axes(df: pd.DataFrame) -> list[str]:
    """Swept keys that take more than one value (seed excluded: it is what we average over)."""
    return [c for c in df.columns if c.startswith("sweep/") and c != "sweep/seed" and df[c].nunique() > 1]


# The paper's order of pre-training data, then anything else alphabetically.
DATA_ORDER = ("real", "real_image_syn_report", "syn_image_real_report", "syn", "mix")


def ordered(values) -> list:
    """Values of an axis in reading order: numbers ascending, data choices as the paper lists them."""
    values = list(dict.fromkeys(values))
    try:
        return sorted(values, key=float)
    except (TypeError, ValueError):
        rank = {v: i for i, v in enumerate(DATA_ORDER)}
        return sorted(values, key=lambda v: (rank.get(v, len(rank)), str(v)))
