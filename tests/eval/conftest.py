"""Fixtures of the evaluation tests: a trained checkpoint (the BUDGET recipe, once per session), an
untrained tiny one, and composing evaluate.yaml with small phantom twins."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from safetensors.torch import save_file

import syncxr.config  # noqa: F401  (the run_dirname resolver)
from syncxr import builders
from tests.train.test_train_e2e import BUDGET, TINY, compose_train

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = ("chexpert", "chestxray14", "padchest", "rsna", "siim", "covidx", "covid_rural")


def small_twins(image_size: int = 64, n_train: int = 60, n_valid: int = 30, n_test: int = 60) -> list[str]:
    """Overrides that shrink every twin (the chexpert one is set separately by the tests)."""
    out = []
    for b in BENCHMARKS:
        out.append(f"benchmark.{b}.twin.image_size={image_size}")
        if b != "chexpert":
            out += [f"benchmark.{b}.twin.n_train={n_train}", f"benchmark.{b}.twin.n_valid={n_valid}",
                    f"benchmark.{b}.twin.n_test={n_test}"]
    return out


SMALL_RETRIEVAL = ["task.retrieval.datasets.phantom.dataset.n=60", "task.retrieval.datasets.phantom.dataset.image_size=64"]


# The phantom CheXpert twin that the BUDGET training run scored itself on.
BUDGET_CHEXPERT = ["benchmark.chexpert.twin.n_train=0", "benchmark.chexpert.twin.n_valid=100",
                   "benchmark.chexpert.twin.n_test=300", "benchmark.chexpert.twin.image_size=64"]


def compose_eval(run_dir, overrides=()):
    """evaluate.yaml for `run_dir` with small twins (and a small retrieval set where it runs)."""
    tasks = [o for o in overrides if o.startswith("task=")]
    extra = SMALL_RETRIEVAL if not tasks or "retrieval" in tasks[-1] else []
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(config_name="evaluate", overrides=[f"checkpoint={run_dir}", *small_twins(), *overrides, *extra])




@pytest.fixture(scope="session")
def untrained_run(cache_dir, tmp_path_factory) -> Path:
    """A run dir holding an untrained model of the TINY recipe: for plumbing tests (seconds)."""
    cfg = compose_train(TINY)
    text_path = builders.resolve_text_encoder_path(cfg.text_encoder, Path(cfg.paths.cache_dir), cfg.seed)
    torch.manual_seed(0)
    model = builders.build_model(cfg.model, cfg.image_encoder, cfg.text_encoder, text_path)
    out = tmp_path_factory.mktemp("untrained")
    (out / "resolved_config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out / "model.safetensors")
    return out
