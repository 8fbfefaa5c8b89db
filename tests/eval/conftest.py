"""Fixtures of the evaluation tests: an untrained tiny checkpoint (the trained one, of the BUDGET
recipe, is the session's `trained_run`)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from safetensors.torch import save_file

from syncxr.models.build import build_model
from tests.helpers import TINY, compose_train


@pytest.fixture(scope="session")
def untrained_run(cache_dir, tmp_path_factory) -> Path:
    """A run dir holding an untrained model of the TINY recipe: for plumbing tests (seconds)."""
    cfg = compose_train(TINY)
    torch.manual_seed(0)
    model = build_model(cfg.model, cfg.image_encoder, cfg.text_encoder)
    out = tmp_path_factory.mktemp("untrained")
    (out / "resolved_config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out / "model.safetensors")
    return out
