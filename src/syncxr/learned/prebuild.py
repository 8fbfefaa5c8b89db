"""Builds every learned phantom backend into the model cache at once, one process per core, so that
the studies' jobs find them built (each is otherwise trained by the first job that needs it, one
after the other):

  python -m syncxr.learned.prebuild [--jobs N] [KEY=VALUE ...]

The learned presets are the `llm`, `ner` and `imagegen` config files whose `_target_` lives in
`syncxr.learned` (report LMs, the NER, the text-to-image models); the overrides are train.py's (e.g.
`phantom.n=...`, `paths.cache_dir=...`), so the models built are the ones those jobs would build. The
builds are independent and each runs on one thread: on 2 cores two of them run side by side. A model
already in the cache is only loaded; a missing or corrupt one is trained (syncxr.learned.model_cache).
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from multiprocessing import get_context
from pathlib import Path
from unittest.mock import patch  # patch.dict: set and restore os.environ

from tqdm.auto import tqdm

from ..config_targets import CONF_DIR

GROUPS = ("llm", "ner", "imagegen")
LEARNED_TARGETS = "syncxr.learned."


@lru_cache(maxsize=4)
def learned_presets(conf_dir: Path = CONF_DIR) -> tuple[tuple[str, str], ...]:
    """(group, preset) of every config file of GROUPS that builds a learned phantom backend (its
    `_target_` as composed, its defaults included)."""
    from hydra import compose, initialize_config_dir  # noqa: PLC0415

    out = []
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        for group in GROUPS:
            for path in sorted((conf_dir / group).glob("*.yaml")):
                cfg = compose(config_name="train", overrides=[f"{group}={path.stem}"])
                if str(cfg.generation[group].get("_target_", "")).startswith(LEARNED_TARGETS):
                    out.append((group, path.stem))
    return tuple(out)


# What each worker process starts with: one thread, and no progress bars of its own (tqdm reads
# TQDM_DISABLE when it is imported, before an initializer could set it): one bar, in the parent.
WORKER_ENV = {"OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}


def worker_env():
    """WORKER_ENV set while the pool spawns its workers, the parent's own values restored after."""
    return patch.dict(os.environ, WORKER_ENV)


def build_preset(group: str, overrides: list[str], conf_dir: str) -> float:
    """Builds (trains on first use, else loads) the `group` backend that train.py with `overrides`
    would build; its seconds."""
    from hydra import compose, initialize_config_dir  # noqa: PLC0415

    from ..config import build  # noqa: PLC0415

    with initialize_config_dir(config_dir=conf_dir, version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    start = time.perf_counter()
    build(cfg.generation[group], group, progress=False)  # every learned target takes `progress`
    return time.perf_counter() - start


def with_learned_groups(presets: tuple[tuple[str, str], ...], group: str, preset: str) -> list[str]:
    """The group choices that build `preset`: it for its group and the first learned preset of each
    other group, so that every learned group's keys exist and one set of overrides fits every build."""
    first = {}
    for g, p in presets:
        first.setdefault(g, p)
    return [f"{g}={preset if g == group else p}" for g, p in first.items()]


def prebuild(overrides: list[str], jobs: int, conf_dir: Path = CONF_DIR) -> dict[str, float]:
    """Builds every learned preset with `jobs` worker processes; {group=preset: seconds}."""
    if jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {jobs}")
    presets = learned_presets(conf_dir)
    seconds = {}
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"))  # torch reads WORKER_ENV
    with worker_env(), pool:
        futures = [
            pool.submit(build_preset, g, [*with_learned_groups(presets, g, p), *overrides], str(conf_dir))
            for g, p in presets
        ]
        for future, (g, p) in zip(tqdm(futures, desc="learned backends"), presets):
            seconds[f"{g}={p}"] = future.result()
    return seconds


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="builds side by side (default: cores)")
    ap.add_argument("overrides", nargs="*", help="train.py overrides, e.g. paths.cache_dir=/data/cache")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    seconds = prebuild(args.overrides, args.jobs)
    for name, s in seconds.items():
        print(f"{name}: {s:.0f} s")
    print(f"all {len(seconds)} learned backends ready in {time.perf_counter() - start:.0f} s ({args.jobs} jobs)")


if __name__ == "__main__":
    main()
