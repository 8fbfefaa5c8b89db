"""Which classes a benchmark is scored on: its `classes` or a named `class_sets` entry of its label
section (`Benchmark.labels`: its `published` section when the benchmark is read from disk, the labels
as the published split files name them, and the phantom twin's otherwise).

A class set is a list, or a rule over the benchmark's labels computed from its test split:
`{labels: <list or the name of a set>, exclude: [<set names or labels>], min_test_positives: N,
max_test_positives: M}` (e.g. PadChest's unseen classes: every label outside the seen set with at
least N positive test images)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from omegaconf import DictConfig, ListConfig, OmegaConf


def _names(source: DictConfig, spec, key: str) -> list[str]:
    """A list of labels, or the labels of the named set (or `labels`, the benchmark's whole label list)."""
    if isinstance(spec, (list, ListConfig)):
        return [str(x) for x in spec]
    sets = source.get("class_sets") or {}
    if spec == "labels" and source.get("labels") is not None:
        return [str(x) for x in source.labels]
    if spec in sets and isinstance(sets[spec], (list, ListConfig)):
        return [str(x) for x in sets[spec]]
    raise ValueError(f"{key}: {spec!r} names no list of labels (class sets: {sorted(sets)})")


def resolve_classes(
    source: DictConfig, class_set: str | None, key: str, test_positives: Callable[[list[str]], np.ndarray]
) -> list[str]:
    """The classes of `class_set` (None: `classes`) in label section `source`. `test_positives(labels)`
    counts the positive test images of each label (read only for a rule)."""
    if class_set is None:
        return [str(c) for c in source.classes]
    sets = source.get("class_sets") or {}
    if class_set not in sets:
        raise ValueError(f"{key}.class_sets has no {class_set!r}; has {sorted(sets)}")
    spec = sets[class_set]
    if isinstance(spec, (list, ListConfig)):
        return [str(c) for c in spec]
    rule = OmegaConf.to_container(spec, resolve=True)
    unknown = set(rule) - {"labels", "exclude", "min_test_positives", "max_test_positives"}
    if unknown:
        raise ValueError(f"{key}.class_sets.{class_set}: unknown rule key(s) {sorted(unknown)}")
    labels = _names(source, rule.get("labels", "labels"), f"{key}.class_sets.{class_set}.labels")
    excluded = set()
    for item in rule.get("exclude", []):
        excluded |= set(_names(source, item, key)) if item in sets or item == "labels" else {str(item)}
    labels = [c for c in labels if c not in excluded]
    counts = test_positives(labels)
    lo, hi = rule.get("min_test_positives", 1), rule.get("max_test_positives")
    return [c for c, n in zip(labels, counts) if n >= lo and (hi is None or n <= hi)]
