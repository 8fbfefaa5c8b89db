"""Shared by the benchmarks: the repo's configs, composed as train.py would."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir

import syncxr.config  # noqa: F401  (registers the config resolvers)

REPO = Path(__file__).resolve().parents[1]


def default_config(overrides=(), name: str = "train"):
    """conf/<name>.yaml with `overrides`, as the entry point composes it."""
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(config_name=name, overrides=list(overrides))
