"""Rebuilds a trained model from a training run directory (`resolved_config.yaml` + `model.safetensors`)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from omegaconf import DictConfig
from safetensors import SafetensorError
from safetensors.torch import load_file

from ..config_targets import load_checked_config
from ..models.build import build_model

CONFIG = "resolved_config.yaml"
WEIGHTS = "model.safetensors"


def run_files(run_dir: str | Path) -> tuple[Path, Path]:
    run_dir = Path(run_dir).expanduser()
    if not run_dir.is_dir():
        raise FileNotFoundError(f"checkpoint {run_dir}: not a directory (expected a train.py run dir)")
    config, weights = run_dir / CONFIG, run_dir / WEIGHTS
    for p in (config, weights):
        if not p.is_file():
            raise FileNotFoundError(f"checkpoint {run_dir}: {p.name} not found (is the training run finished?)")
    return config, weights


def load_trained(run_dir: str | Path, cache_dir: str | Path | None = None):
    """(model in eval mode, tokenizer, resolved training config) of a finished training run.

    `cache_dir` is where a phantom text encoder is looked up (default: the run's own
    `paths.cache_dir`); it is rebuilt there, identically, if the cache was cleared. The run's config
    is data (a shared or downloaded run dir): a `_target_` that no config group of the project offers
    is refused before anything is built.
    """
    config, weights = run_files(run_dir)
    cfg: DictConfig = load_checked_config(config)
    for key in ("model", "image_encoder", "text_encoder", "seed"):
        if key not in cfg:
            raise ValueError(f"{config}: missing key {key!r}")
    if "random_init" not in cfg.image_encoder:  # a run trained before the key existed: weights as they were
        cfg.image_encoder.random_init = False
    if cache_dir is not None and "cache_dir" in cfg.text_encoder:
        cfg.text_encoder.cache_dir = str(Path(cache_dir).expanduser().resolve())
    model = build_model(cfg.model, cfg.image_encoder, cfg.text_encoder)
    try:
        state = load_file(weights)
    except (OSError, SafetensorError) as e:  # e.g. truncated by a run killed while writing it
        raise ValueError(f"{weights}: not a readable safetensors file ({e})") from e
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{weights}: weights do not fit the model of {config.name} "
            f"(missing {missing[:5]}, unexpected {unexpected[:5]})"
        )
    model.eval()
    return model, model.text_encoder.tokenizer, cfg


def weights_fingerprint(run_dir: str | Path) -> str:
    """Content hash of the run's weights: the model part of every embedding-cache key."""
    _, weights = run_files(run_dir)
    h = hashlib.sha256()
    with open(weights, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()[:16]
