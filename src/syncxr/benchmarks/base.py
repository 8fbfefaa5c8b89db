"""A downstream benchmark as one object: its settings (conf/benchmark/<name>.yaml, chosen by its
`_target_`), its reader of the published split files, its phantom twin and what the reports make of
it. Adding a benchmark is a subclass in a module of its own, a YAML naming it, and a test.

`root: null` is the benchmark's phantom twin (built once, cached by the hash of `twin`); a path is
the benchmark on disk, read with its `published` label names where it has them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, ClassVar

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from ..data.benchmark_split import Split
from ..phantom.benchmarks import TwinSpec, ensure_twin

TASK_KINDS = ("classification", "grounding", "segmentation")
CSV_SPLITS = {"train": "train.csv", "valid": "valid.csv", "test": "test.csv"}


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

    def __init__(self, root=None, twin=None, splits=None, classes=(), class_sets=None, prompt_names=None,
                 options=None, on_error: str = "raise", allow_external_images: bool = False, published=None):
        self.key = f"benchmark.{self.name}"  # where errors point; build_benchmark sets the config key
        self.root = root
        self.twin = _plain(twin) or {}
        self.splits = _plain(splits) or dict(self.twin_splits)
        self.on_error = str(on_error)
        self.allow_external_images = bool(allow_external_images)
        self.options = _plain(options) or {}
        own = {"classes": classes, "class_sets": class_sets or {}, "prompt_names": prompt_names or {}}
        self.twin_labels = OmegaConf.create(_plain(own))
        self.published = OmegaConf.create(_plain(published)) if published else None

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
            return type(self).reader(root, str(self.splits[split]), list(classes), on_error=self.on_error,
                                     allow_external_images=self.allow_external_images, **self.options)
        except TypeError as e:
            if "unexpected keyword" in str(e):
                raise ValueError(f"{self.key}.options: {e}") from e
            raise

    # ------------------------------------------------------------------ the phantom twin
    def draw_twin_subject(self, spec: TwinSpec, rng: np.random.Generator, labels: list[set[str]],
                          add: Callable) -> None:
        """Draws the twin's subject findings (default: each at `spec.prevalence`)."""
        for k in self.subject:
            add(k, spec.prevalence)

    def write_twin_image(self, spec: TwinSpec, out_dir: Path, split: str, code: int, i: int, image: np.ndarray,
                         masks: dict[str, np.ndarray], findings: set[str]) -> object:
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
