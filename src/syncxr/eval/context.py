"""What the tasks of an evaluation suite share: the run's settings, the datasets tasks name
(`bench` or `bench:class_set`), and the `Context` that builds each benchmark once, reads each split
once and counts the rows left out of every split file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from omegaconf import DictConfig

from ..benchmarks import Benchmark, build_benchmark
from ..data.benchmark_split import Split
from ..data.transforms import eval_transform
from .class_sets import resolve_classes
from .embeddings import EmbeddingCache


@dataclass(frozen=True)
class DatasetRef:
    """`bench` or `bench:class_set` as tasks list them; `label` is the dataset part of metric keys."""

    bench: str
    class_set: str | None

    @classmethod
    def parse(cls, text: str) -> DatasetRef:
        bench, _, class_set = str(text).partition(":")
        return cls(bench, class_set or None)

    @property
    def label(self) -> str:
        return self.bench if self.class_set is None else f"{self.bench}_{self.class_set}"


@dataclass(frozen=True)
class EvalSettings:
    """Run-level settings of a suite (evaluate.py's root keys, train.py's `evaluation` section)."""

    protocol: str  # val: F1/ACC and grounding thresholds chosen on the validation split; paper: on the test split
    seed: int  # label fractions, fine-tuning, the random grounding baseline
    batch_size: int  # images per encoding batch
    num_workers: int  # DataLoader workers for image decoding
    normalize: str = "standard"  # pixel values, as the model was pre-trained (loader.normalize; PIXEL_NORMS)


@dataclass
class Context:
    settings: EvalSettings
    benchmarks: DictConfig  # name -> benchmark/*.yaml section
    model: torch.nn.Module
    tokenizer: object
    max_length: int  # tokens per prompt (the text encoder's)
    accelerator: Accelerator
    image_size: int
    cache: EmbeddingCache
    cache_dir: Path
    splits: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    skipped_rows: dict = field(default_factory=dict)  # split file -> its rows left out (missing or undecodable)
    cases: dict = field(default_factory=dict)
    # "<task>/<dataset>" -> one row per test image (its id, labels, scores or per-image metrics): what
    # a sweep report resamples to put confidence intervals on differences between runs.
    predictions: dict = field(default_factory=dict)
    built: dict = field(default_factory=dict)  # name -> Benchmark

    @property
    def transform(self):
        return eval_transform(self.image_size, normalize=self.settings.normalize)

    def input_transform(self, size: int, resize: int | None = None):
        """The run's pixel normalisation at another input side (or a `resize`, then a centre crop of `size`)."""
        return eval_transform(size, resize, self.settings.normalize)

    @property
    def protocol(self) -> str:
        return self.settings.protocol

    def ref(self, text: str, kind: str) -> DatasetRef:
        """The dataset a task names (`bench` or `bench:class_set`), whose benchmark must serve `kind`."""
        ref = DatasetRef.parse(text)
        bench = self.benchmark(ref)
        if kind not in bench.tasks:
            raise ValueError(
                f"benchmark.{ref.bench} ({type(bench).__name__}) serves {list(bench.tasks)}, not "
                f"{kind}: remove {text!r} from that task's datasets"
            )
        return ref

    def benchmark(self, ref: DatasetRef) -> Benchmark:
        """The benchmark object of conf/benchmark/<name>.yaml, built once per run; evaluation.json records
        what the sweep report needs of it (its title and the paper's tables it feeds)."""
        if ref.bench not in self.built:
            benches = self.benchmarks or {}
            if ref.bench not in benches:
                raise ValueError(
                    f"unknown benchmark {ref.bench!r}: add conf/benchmark/{ref.bench}.yaml to the "
                    f"`benchmark` list; configured: {sorted(benches)}"
                )
            bench = self.built[ref.bench] = build_benchmark(benches[ref.bench], f"benchmark.{ref.bench}")
            self.info.setdefault("benchmarks", {})[ref.bench] = {
                "title": bench.title,
                "tables": [list(t) for t in bench.tables],
            }
        return self.built[ref.bench]

    def classes(self, ref: DatasetRef) -> list[str]:
        key = (ref, "classes")
        if key not in self.splits:
            self.splits[key] = resolve_classes(
                self.benchmark(ref).labels,
                ref.class_set,
                f"benchmark.{ref.bench}",
                lambda labels: self._read(ref, "test", labels).labels.sum(0),
            )
        return self.splits[key]

    def prompt_names(self, ref: DatasetRef) -> list:
        """Per class: the text its prompts use (a name, or a list of names pooled as an ensemble)."""
        names = self.benchmark(ref).labels.get("prompt_names") or {}
        out = []
        for c in self.classes(ref):
            n = names.get(c, c.replace("_", " ").lower())
            out.append(str(n) if isinstance(n, str) else [str(x) for x in n])
        return out

    def skip_bad(self, ref: DatasetRef) -> bool:
        return self.benchmark(ref).on_error == "skip"

    def split(self, ref: DatasetRef, which: str, required: bool = True) -> Split | None:
        """Split `which` (train | valid | test) of a benchmark with its classes, read once per run."""
        key = (ref, which)
        if key not in self.splits:
            if not self.benchmark(ref).splits.get(which) and not required:
                return None
            self.splits[key] = self._read(ref, which, self.classes(ref))
        return self.splits[key]

    def _read(self, ref: DatasetRef, which: str, classes: list[str]) -> Split:
        bench = self.benchmark(ref)
        s = bench.read_split(bench.root_dir(self.cache_dir), which, classes)
        self.note_skipped(s)
        if bench.is_twin:  # said loudly wherever results are read
            self.info.setdefault("phantom_twins", [])
            if ref.bench not in self.info["phantom_twins"]:
                self.info["phantom_twins"].append(ref.bench)
        return s

    def features(self, ref: DatasetRef, split: Split, kind: str, transform=None):
        feats, ok = self.cache.features(
            self.model,
            split,
            transform or self.transform,
            kind,
            self.accelerator,
            self.settings.batch_size,
            self.skip_bad(ref),
            self.settings.num_workers,
        )
        self.note_skipped(split, ok)
        return feats, ok

    def note_skipped(self, split: Split, ok: np.ndarray | None = None) -> None:
        """Counts every row of the split's file left out so far, in `evaluation.json`: those whose image
        is missing (found when the file is read) and, with `ok`, those that did not decode (found when
        encoded). Rows are collected as a set, so subsets and re-encodings of a split count each once."""
        rows = self.skipped_rows.setdefault(str(split.source), set())
        rows.update(split.skipped_rows)
        if ok is not None:
            rows.update(split.rows[i] for i in np.flatnonzero(~np.asarray(ok, dtype=bool)))
        if rows:
            self.info.setdefault("skipped", {})[str(split.source)] = len(rows)
            self.info.setdefault("skipped_rows", {})[str(split.source)] = sorted(rows)

    def usable(self, ref: DatasetRef, split: Split) -> Split:
        """The split without images that fail to load (only looked for with on_error=skip)."""
        if not self.skip_bad(ref):
            return split
        _, ok = self.features(ref, split, "backbone")
        return split.where(ok)

    def note(self, task: str, ds: str, **kv) -> None:
        self.info.setdefault(task, {}).setdefault(ds, {}).update(kv)
