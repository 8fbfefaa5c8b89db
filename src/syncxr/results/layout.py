"""Where each dataset of a sweep goes in the paper's tables, and what the report calls it: from the
benchmark objects (`Benchmark.tables`, `Benchmark.title`), never from a list of names here.

An evaluation records them for the benchmarks it read (evaluation.json, `details.benchmarks`); for
jobs without that record (a run that evaluated nothing, an older run) the project's own
conf/benchmark/*.yaml classes stand in. The report never imports a class a job's files name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cache

import yaml
from hydra.utils import get_class

from ..config_targets import CONF_DIR

log = logging.getLogger(__name__)


@dataclass
class Layout:
    columns: dict[str, list[str]] = field(default_factory=dict)  # table key -> dataset labels, paper's order
    titles: dict[str, str] = field(default_factory=dict)  # dataset label -> its name in the report
    benchmark_of: dict[str, str] = field(default_factory=dict)  # dataset label -> benchmark name

    def title(self, label: str) -> str:
        return self.titles.get(label, label)

    def benchmark(self, label: str) -> str:
        return self.benchmark_of.get(label, label)


def dataset_label(bench: str, class_set: str | None) -> str:
    """The dataset part of metric keys (as `eval.context.DatasetRef.label`)."""
    return bench if class_set is None else f"{bench}_{class_set}"


@cache
def project_benchmarks() -> dict[str, dict]:
    """name -> {title, tables} of every benchmark conf/benchmark/*.yaml defines."""
    out = {}
    for path in sorted((CONF_DIR / "benchmark").glob("*.yaml")):
        for name, section in (yaml.safe_load(path.read_text()) or {}).items():
            if isinstance(section, dict) and section.get("_target_"):
                cls = get_class(section["_target_"])
                out[name] = {"title": cls.title, "tables": [list(t) for t in cls.tables]}
    return out


def sweep_layout(jobs) -> Layout:
    """The layout of the benchmarks the sweep's jobs recorded (the project's for jobs with no record)."""
    recorded: dict[str, dict] = {}
    for job in jobs:
        recorded.update((job.evaluation.get("details") or {}).get("benchmarks") or {})
    benches = {**project_benchmarks(), **recorded}
    layout, slots = Layout(), {}
    for name, entry in benches.items():
        layout.titles[name], layout.benchmark_of[name] = entry["title"], name
        for table, position, class_set in entry["tables"]:
            label = dataset_label(name, class_set)
            layout.titles[label] = entry["title"] if class_set is None else f"{entry['title']} {class_set}"
            layout.benchmark_of[label] = name
            slots.setdefault(table, []).append((position, label))
    layout.columns = {t: [label for _, label in sorted(s)] for t, s in slots.items()}
    return layout
