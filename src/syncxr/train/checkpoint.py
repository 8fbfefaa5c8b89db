"""Step checkpoints through `accelerator.save_state`, written so that a kill never leaves a torn one.

A checkpoint directory counts only once its `trainer_state.json` exists; that file is written last,
after the state was saved into a temporary directory that was then renamed into place.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

STATE_FILE = "trainer_state.json"


@dataclass
class TrainerState:
    epoch: int = 0  # epoch in progress
    step_in_epoch: int = 0  # batches of that epoch already trained
    global_step: int = 0
    epoch_loss_sum: float = 0.0  # this epoch's losses so far: a plateau scheduler steps on their mean
    epoch_loss_count: int = 0


def checkpoint_dirs(root: Path) -> list[Path]:
    """Complete checkpoints under `root`, oldest first."""
    if not root.is_dir():
        return []
    done = [p for p in root.glob("step_*") if (p / STATE_FILE).is_file()]
    return sorted(done, key=lambda p: int(p.name.split("_")[1]))


def save_checkpoint(accelerator, root: Path, state: TrainerState, keep: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{state.global_step:08d}"
    tmp = root / f".tmp_step_{state.global_step:08d}"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (tmp / STATE_FILE).write_text(json.dumps(asdict(state)))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        for old in checkpoint_dirs(root)[:-keep] if keep > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load_latest(accelerator, root: Path) -> TrainerState | None:
    """Restores model, optimizer, scheduler and RNG states of the newest checkpoint, if any."""
    found = checkpoint_dirs(root)
    if not found:
        return None
    accelerator.load_state(str(found[-1]))
    return TrainerState(**json.loads((found[-1] / STATE_FILE).read_text()))
