"""A downstream benchmark as one object: its settings (conf/benchmark/<name>.yaml, chosen by its
`_target_`), its reader of the published split files, its phantom twin and what the reports make of
it. Adding a benchmark is a subclass in a module of its own, a YAML naming it, and a test.

`root: null` is the benchmark's phantom twin (built once, cached by the hash of `twin`); a path is
the benchmark on disk, read with its `published` label names where it has them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from ..data.benchmark_split import Split
from ..phantom.benchmarks import TwinSpec, ensure_twin

TASK_KINDS = ("classification", "grounding", "segmentation")
CSV_SPLITS = {"train": "train.csv", "valid": "valid.csv", "test": "test.csv"}


@dataclass(frozen=True)
class BenchmarkSettings:
    """The keys of a conf/benchmark/<name>.yaml section beside `_target_`."""

    root: str | None = None  # None: the phantom twin; a path: the benchmark on disk there
    twin: dict | None = None  # the twin's TwinSpec fields (sizes, seed, prevalences)
    splits: dict | None = None  # train | valid | test -> split file (default: the twin's `twin_splits`)
    classes: Sequence[str] = ()  # the twin's classes ...
    class_sets: dict | None = None  # ... its named class sets ...
    prompt_names: dict | None = None  # ... and the text its prompts use for a class
    options: dict | None = None  # the reader's own keyword options
    on_error: str = "raise"  # raise | skip: what a missing or unreadable image does
    allow_external_images: bool = False  # split files may name images outside root
    published: dict | None = None  # with a root: classes, class sets, prompt names as the files name them


class Benchmark:
    """Subclasses set the class attributes and `reader`, and write their twin's rows."""

    name: ClassVar[str]  # the twin's name: part of its seeds and cache address
    title: ClassVar[str]  # how reports name it
    tasks: ClassVar[tuple[str, ...]] = ("classification",)  # the TASK_KINDS its labels serve
    # The paper's tables it feeds: (table key, column position in the paper's table, class set or None).
    tables: ClassVar[tuple[tuple[str, int, str | None], ...]] = ()
    # The twin: findings drawn at twin.prevalence (its subject), tail findings drawn at
    # twin.prevalence_rare, findings never drawn as background (the benchmark would call them its subject).
    subject: ClassVar[tuple[str, ...]] = ()
    rare: ClassVar[tuple[str, ...]] = ()
    excluded: ClassVar[tuple[str, ...]] = ()
    twin_splits: ClassVar[dict[str, str]] = CSV_SPLITS  # the files the twin writes, as published

    # (root, split file, classes, on_error=, allow_external_images=, **options) -> Split
    reader: ClassVar[Callable[..., Split]]

    settings_type: ClassVar[type] = BenchmarkSettings  # what the YAML's keys build (tests/test_configs.py)

    def __init__(self, **settings):
        """`settings`: the fields of BenchmarkSettings, as conf/benchmark/<name>.yaml gives them."""
        s = BenchmarkSettings(**settings)
        self.key = f"benchmark.{self.name}"  # where errors point; build_benchmark sets the config key
        self.root = s.root
        self.twin = _plain(s.twin) or {}
        self.splits = _plain(s.splits) or dict(self.twin_splits)
        self.on_error = str(s.on_error)
        self.allow_external_images = bool(s.allow_external_images)
        self.options = _plain(s.options) or {}
        own = {"classes": s.classes, "class_sets": s.class_sets or {}, "prompt_names": s.prompt_names or {}}
        self.twin_labels = OmegaConf.create(_plain(own))
        self.published = OmegaConf.create(_plain(s.published)) if s.published else None

    @property
    def is_twin(self) -> bool:
        return self.root is None

    @property
    def labels(self) -> DictConfig:
        """The section naming classes, class sets and prompt names: `published` for the benchmark on
        disk (the labels as its files name them) where it has one, the twin's otherwise."""
        return self.published if not self.is_twin and self.published is not None else self.twin_labels

    # ------------------------------------------------------------------ reading
    def root_dir(self, cache_dir: str | Path, progress: bool = True) -> Path:
        """The benchmark's directory: its twin under `cache_dir` (built on first use) or `root`."""
        if self.is_twin:
            return ensure_twin(self.twin_spec(), self, cache_dir, progress)
        root = Path(str(self.root)).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"{self.key}.root: benchmark directory {root} not found")
        return root

    def twin_spec(self) -> TwinSpec:
        try:
            return TwinSpec(name=self.name, **self.twin)
        except TypeError as e:
            raise ValueError(f"{self.key}.twin: {e}") from e
        except ValueError as e:
            raise ValueError(f"{self.key}: {e}") from e

    def read_split(self, root: Path, split: str, classes: list[str]) -> Split:
        """Split `split` (train | valid | test) of the benchmark at `root` with `classes`."""
        if not self.splits.get(split):
            raise ValueError(f"{self.key}.splits.{split} is not set; a task needs that split")
        try:
            return type(self).reader(
                root,
                str(self.splits[split]),
                list(classes),
                on_error=self.on_error,
                allow_external_images=self.allow_external_images,
                **self.options,
            )
        except TypeError as e:
            if "unexpected keyword" in str(e):
                raise ValueError(f"{self.key}.options: {e}") from e
            raise

    # ------------------------------------------------------------------ the phantom twin
    def draw_twin_subject(
        self, spec: TwinSpec, rng: np.random.Generator, labels: list[set[str]], add: Callable
    ) -> None:
        """Draws the twin's subject findings (default: each at `spec.prevalence`)."""
        for k in self.subject:
            add(k, spec.prevalence)

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
    ) -> object:
        """Writes image `i` of a twin split (and its masks) under `out_dir`; returns its split-file row."""
        raise NotImplementedError(f"{type(self).__name__} has no phantom twin")

    def write_twin_split(self, path: Path, rows: list) -> None:
        """Writes a twin split file from its rows (default: a CSV of dict rows)."""
        pd.DataFrame(rows).to_csv(path, index=False)

    def twin_class_sets(self) -> dict[str, list[str]]:
        """The twin's class sets (its rare / seen / unseen zero-shot sets), from its label maps."""
        return {}


def _plain(node):
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
