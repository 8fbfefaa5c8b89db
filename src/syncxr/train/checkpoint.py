"""Step checkpoints that a kill never tears and that load without unpickling anything.

A checkpoint is a directory `step_XXXXXXXX/`:
  model.safetensors                      the unwrapped model (safetensors.torch.save_model)
  optimizer.json + optimizer.safetensors  optimizer.state_dict(): structure in JSON, tensors beside it
  scheduler.json, scaler.json            the LR scheduler's and the fp16 grad scaler's state, if any
  rng_<rank>.json (+ .safetensors)        each process's Python, NumPy, torch (and CUDA) RNG states
  run_config.json                        the resolved config that trained it (what a resume is checked against)
  trainer_state.json                     epoch, step, ...: written last, it marks the directory complete
It is written by the main process (each process adds its own RNG file) into a temporary directory
with a name no other run shares, fsynced, then renamed into place. Resuming tries the newest
checkpoint and falls back to older ones when it cannot be read. accelerate's save_state/load_state
are not used: load_state unpickles (torch.load with weights_only=False), so a planted file would run.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import re
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model

from ..data.durable import StagingDir, atomic_path, remove_abandoned, replace_dir, write_json_atomic
from .state_files import check_optimizer_state, load_state, save_state

log = logging.getLogger(__name__)
STATE_FILE = "trainer_state.json"
MODEL_FILE = "model.safetensors"
RUN_CONFIG = "run_config.json"
STEP_DIR = re.compile(r"step_\d+")
# What an unreadable or tampered checkpoint raises while loading: it is skipped for an older one.
UNREADABLE = (OSError, ValueError, KeyError, TypeError, IndexError, RuntimeError, SafetensorError)


@dataclass
class TrainerState:
    epoch: int = 0  # epoch in progress
    step_in_epoch: int = 0  # batches of that epoch already trained
    global_step: int = 0
    epoch_loss_sum: float = 0.0  # this epoch's losses so far: a plateau scheduler steps on their mean
    epoch_loss_count: int = 0
    skipped_rows: list[int] = field(default_factory=list)  # dataset rows whose image failed to load (skip)
    # Validation (trainer.val_every): each validation's mean loss on the held-out rows, the best of
    # them, validations since it last improved (early stopping counts these) and whether it stopped.
    val_losses: list[float] = field(default_factory=list)
    best_val_loss: float | None = None
    bad_validations: int = 0
    stopped_early: bool = False


# Fields a checkpoint written before validation existed lacks: they take their defaults.
_LATER_FIELDS = {"val_losses": [], "best_val_loss": None, "bad_validations": 0, "stopped_early": False}


def read_trainer_state(directory: Path) -> TrainerState:
    """The checkpoint's trainer_state.json, every field checked (type, range, agreement with the
    directory's step): a wrong one would otherwise fail deep inside the loop, or resume silently at the
    wrong place. Any fault is a ValueError naming the file."""
    path = directory / STATE_FILE
    try:
        blob = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: {type(e).__name__}: {e}") from e
    names = [f.name for f in fields(TrainerState)]
    if isinstance(blob, dict):
        blob = {**{k: v for k, v in _LATER_FIELDS.items() if k not in blob}, **blob}
    if not isinstance(blob, dict) or sorted(blob) != sorted(names):
        got = sorted(blob) if isinstance(blob, dict) else type(blob).__name__
        raise ValueError(f"{path}: holds {got}, not the fields {names}")

    def bad(key: str, wanted: str):
        return ValueError(f"{path}: {key} is {blob[key]!r}, not {wanted}")

    for key in ("epoch", "step_in_epoch", "global_step", "epoch_loss_count"):
        if not _is_count(blob[key]):
            raise bad(key, "an integer >= 0")
    loss_sum = blob["epoch_loss_sum"]
    if isinstance(loss_sum, bool) or not isinstance(loss_sum, (int, float)) or not math.isfinite(loss_sum):
        raise bad("epoch_loss_sum", "a finite number")
    rows = blob["skipped_rows"]
    if not isinstance(rows, list) or not all(_is_count(r) for r in rows) or len(set(rows)) != len(rows):
        raise bad("skipped_rows", "a list of distinct row numbers >= 0")
    if blob["global_step"] != _step_of(directory):
        raise bad("global_step", f"the step {_step_of(directory)} of its directory")
    if blob["step_in_epoch"] > blob["global_step"]:
        raise bad("step_in_epoch", f"at most global_step ({blob['global_step']})")
    if blob["epoch_loss_count"] > blob["step_in_epoch"]:
        raise bad("epoch_loss_count", f"at most step_in_epoch ({blob['step_in_epoch']})")
    _check_validation_fields(blob, bad)
    return TrainerState(**{**blob, "epoch_loss_sum": float(loss_sum)})


def _check_validation_fields(blob: dict, bad) -> None:
    losses, best = blob["val_losses"], blob["best_val_loss"]
    if not isinstance(losses, list) or not all(_is_finite(v) for v in losses):
        raise bad("val_losses", "a list of finite numbers")
    if best is not None and not (_is_finite(best) and best in losses):
        raise bad("best_val_loss", "null or one of val_losses")
    if not _is_count(blob["bad_validations"]) or blob["bad_validations"] > len(losses):
        raise bad("bad_validations", f"an integer in [0, {len(losses)}] (the validations run)")
    if not isinstance(blob["stopped_early"], bool):
        raise bad("stopped_early", "true or false")


def _is_finite(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _step_of(directory: Path) -> int:
    return int(directory.name.removeprefix("step_"))


def checkpoint_dirs(root: Path) -> list[Path]:
    """Complete checkpoints under `root`, oldest first."""
    if not root.is_dir():
        return []
    done = [p for p in root.glob("step_*") if STEP_DIR.fullmatch(p.name) and (p / STATE_FILE).is_file()]
    return sorted(done, key=_step_of)


def _shared_token(accelerator) -> str:
    """A random name part, the same on every process. From os.urandom: the seeded RNGs stay untouched."""
    token = torch.tensor([int.from_bytes(os.urandom(7), "big")], dtype=torch.int64, device=accelerator.device)
    if accelerator.num_processes > 1:
        from accelerate.utils import broadcast  # noqa: PLC0415

        token = broadcast(token)
    return f"{int(token.item()):014x}"


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(legacy=False), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    accelerator,
    root: Path,
    state: TrainerState,
    keep: int,
    model,
    optimizer,
    scheduler=None,
    run_config: dict | None = None,
) -> Path:
    """Writes the checkpoint of `state` under `root` and keeps the newest `keep` (0: all). Every
    process calls it. `run_config`: the resolved config of the run, stored with the checkpoint."""
    final = root / f"step_{state.global_step:08d}"
    staging = StagingDir(root / f".tmp_step_{state.global_step:08d}.{_shared_token(accelerator)}")
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        remove_abandoned(root, ".tmp_step_*")  # left by killed runs (a live run's are locked)
        tmp = staging.create()
        try:
            with atomic_path(tmp / MODEL_FILE) as t:
                save_model(accelerator.unwrap_model(model), str(t))
            save_state(tmp, "optimizer", optimizer.state_dict())
            if scheduler is not None:
                save_state(tmp, "scheduler", scheduler.state_dict())
            if accelerator.scaler is not None:
                save_state(tmp, "scaler", accelerator.scaler.state_dict())
            if run_config is not None:
                write_json_atomic(tmp / RUN_CONFIG, run_config)
        except BaseException:
            staging.release(remove=True)
            raise
    accelerator.wait_for_everyone()
    save_state(staging.path, f"rng_{accelerator.process_index}", _rng_state())
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        try:
            write_json_atomic(staging.path / STATE_FILE, asdict(state))
            shutil.rmtree(final, ignore_errors=True)  # an unreadable one, skipped at resume
            replace_dir(staging.path, final)  # False: an identical run put its own there first
            for old in checkpoint_dirs(root)[:-keep] if keep > 0 else []:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            staging.release(remove=True)
    accelerator.wait_for_everyone()
    return final


def _load(accelerator, directory: Path, model, optimizer, scheduler) -> TrainerState:
    if (directory / "optimizer.bin").is_file() and not (directory / "optimizer.json").is_file():
        raise ValueError(
            "written by an older syncxr as pickles (optimizer.bin, random_states_*.pkl), which "
            "are never loaded: unpickling can run code"
        )
    state = read_trainer_state(directory)
    try:
        missing, unexpected = load_model(accelerator.unwrap_model(model), str(directory / MODEL_FILE), strict=False)
    except (OSError, SafetensorError, RuntimeError) as e:
        raise ValueError(f"{MODEL_FILE}: {type(e).__name__}: {e}") from e
    if missing or unexpected:
        raise ValueError(f"{MODEL_FILE} does not fit the model (missing {missing[:5]}, unexpected {unexpected[:5]})")
    # Its per-parameter state is checked once loaded (a fresh optimizer has none to compare with).
    optimizer.load_state_dict(
        load_state(directory, "optimizer", like={"param_groups": optimizer.state_dict()["param_groups"]})
    )
    check_optimizer_state(optimizer, directory / "optimizer.json")
    if scheduler is not None:
        scheduler.load_state_dict(load_state(directory, "scheduler", like=scheduler.state_dict()))
    if accelerator.scaler is not None:
        accelerator.scaler.load_state_dict(load_state(directory, "scaler", like=accelerator.scaler.state_dict()))
    rank = accelerator.process_index
    if (directory / f"rng_{rank}.json").is_file():
        _set_rng_state(load_state(directory, f"rng_{rank}"))
    else:  # saved with fewer processes: this one's random streams start afresh
        log.warning("%s: no RNG state for process %d; its random streams are not restored", directory, rank)
    return state


def load_latest(accelerator, root: Path, model, optimizer, scheduler=None) -> TrainerState | None:
    """Restores model, optimizer, scheduler, scaler and RNG states from the newest readable
    checkpoint under `root`; None when there is none. Raises when checkpoints exist but none loads."""
    found = checkpoint_dirs(root)
    errors = []
    for directory in reversed(found):
        try:
            state = _load(accelerator, directory, model, optimizer, scheduler)
        except UNREADABLE as e:
            errors.append(f"{directory}: {e}")
            log.warning("checkpoint %s cannot be loaded (%s); trying an older one", directory, e)
            continue
        if errors and accelerator.is_main_process:
            accelerator.print(f"resuming from {directory.name}: the newer checkpoint(s) could not be loaded")
        return state
    if found:
        raise RuntimeError(
            f"{root}: no checkpoint could be loaded:\n  " + "\n  ".join(errors) + "\n(trainer.resume=false starts over)"
        )
    return None
