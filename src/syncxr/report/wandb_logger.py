"""W&B through accelerate's trackers: rank 0 only, resolved config, stable ids across requeues."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

NOT_CONFIGURED = ("W&B is not configured: run `wandb login` (or set WANDB_API_KEY), or log offline with "
                  "logger.mode=offline (WANDB_MODE=offline) and upload later with `wandb sync <dir>/wandb/offline-run-*`, "
                  "or choose logger=none.")


def run_id(out_dir: str | Path) -> str:
    """The same output dir always maps to the same W&B run: a requeued job continues its run."""
    return hashlib.sha1(str(Path(out_dir).resolve()).encode()).hexdigest()[:16]


def check_configured(mode: str | None) -> str:
    """The effective mode; fails with instructions when online logging has no credentials."""
    mode = mode or os.environ.get("WANDB_MODE") or "online"
    if mode not in ("online", "offline", "disabled"):
        raise ValueError(f"logger.mode must be online, offline or disabled, got {mode!r}")
    if mode == "online":
        import wandb
        if not (os.environ.get("WANDB_API_KEY") or wandb.api.api_key):
            raise RuntimeError(NOT_CONFIGURED)
    return mode


def init_kwargs(logger_cfg, out_dir: Path, name: str, group: str, job_type: str) -> dict:
    mode = check_configured(logger_cfg.get("mode"))
    wandb_dir = Path(logger_cfg.get("dir") or out_dir)
    wandb_dir.mkdir(parents=True, exist_ok=True)
    return {"wandb": {"entity": logger_cfg.get("entity"), "name": name, "group": group, "job_type": job_type,
                      "id": run_id(out_dir), "resume": "allow", "dir": str(wandb_dir), "mode": mode,
                      "tags": list(logger_cfg.get("tags") or [])}}
