"""Downstream benchmarks, one object each (`base.Benchmark`), built from conf/benchmark/<name>.yaml."""

from __future__ import annotations

from hydra.utils import instantiate
from omegaconf import DictConfig

from .base import TASK_KINDS, Benchmark

__all__ = ["TASK_KINDS", "Benchmark", "build_benchmark"]


def build_benchmark(cfg: DictConfig, key: str) -> Benchmark:
    """The benchmark of config section `key` (e.g. `benchmark.chexpert`): its `_target_` class called
    with the section's other keys."""
    if not cfg.get("_target_"):
        raise ValueError(f"{key} has no _target_: name its Benchmark class (see conf/benchmark/*.yaml)")
    try:
        bench = instantiate(cfg, _convert_="all")
    except Exception as e:  # Hydra wraps the class's TypeError (an unknown key) in its own error
        raise ValueError(f"{key}: {e}") from e
    if not isinstance(bench, Benchmark):
        raise ValueError(f"{key}._target_ {cfg._target_!r} is not a syncxr.benchmarks.Benchmark")
    bench.key = key
    return bench
