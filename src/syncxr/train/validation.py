"""Validation during pre-training: the loss on the held-out rows, what it drives (a plateau scheduler,
early stopping) and the weights of the best validation, kept for evaluation.

GLoRIA's released trainer validates every epoch, steps ReduceLROnPlateau on `val_loss`, stops when
`val_loss` has not improved for `patience` validations (an improvement: lower than the best by more
than `min_delta`), and evaluates the checkpoint of the lowest `val_loss`; ConVIRT-pytorch validates
every few epochs and keeps the weights of the lowest validation loss. These are those rules.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import torch
from safetensors.torch import load_model, save_model

from ..config_choices import MONITORS
from ..data.durable import atomic_path, write_json_atomic
from .checkpoint import TrainerState

BEST_MODEL = "best_model.safetensors"  # in the run dir: the weights of the lowest validation loss
VALIDATION_FILE = "validation.json"  # in the run dir: the validations so far (written after each)


def check_settings(val_every: int, monitor: str, patience: int | None, restore_best: bool) -> None:
    """Settings that cannot work together fail before anything is trained, naming the trainer keys."""
    if monitor not in MONITORS:
        raise ValueError(f"trainer.monitor must be one of {MONITORS}, got {monitor!r}")
    needs_val = [
        key
        for key, on in (
            ("trainer.monitor=val_loss", monitor == "val_loss"),
            ("trainer.early_stopping_patience", patience is not None),
            ("trainer.restore_best=true", restore_best),
        )
        if on
    ]
    if needs_val and val_every < 1:
        raise ValueError(f"{', '.join(needs_val)} need(s) a validation loss: set trainer.val_every >= 1")


def validation_loss(model: torch.nn.Module, loader: Iterable, accelerator, on_device=None) -> float:
    """The mean loss of `model` over the batches of `loader` (every process's batches), in eval mode
    and without gradients; the model is put back in training mode."""
    # The same views and sentences at every validation: accelerate's loader would otherwise pass the
    # dataset its own count of iterations as the epoch (and a resumed run's count starts over).
    if hasattr(loader, "set_epoch"):  # third-party: accelerate's prepared loader
        loader.set_epoch(0)
    model.eval()
    total = torch.zeros(2, dtype=torch.float64, device=accelerator.device)  # (loss sum, batches)
    try:
        with torch.no_grad():
            for batch in loader:
                if len(batch["images"]) == 0:
                    continue
                batch = {k: v.to(accelerator.device) if torch.is_tensor(v) else v for k, v in batch.items()}
                if on_device is not None:
                    batch = on_device(batch)
                loss = model(batch["images"], batch["input_ids"], batch["attention_mask"])["loss"]
                total += torch.stack([loss.detach().double(), torch.ones((), dtype=torch.float64, device=total.device)])
    finally:
        model.train()
    total = accelerator.reduce(total, reduction="sum") if accelerator.num_processes > 1 else total
    if total[1].item() == 0:
        raise ValueError("the validation loader gave no batch: the held-out (split 'val') rows are empty")
    return (total[0] / total[1]).item()


def record_validation(state: TrainerState, loss: float, min_delta: float) -> bool:
    """Adds `loss` to `state`; True when it improves on the best by more than `min_delta` (the first
    always does), else one more bad validation is counted."""
    if not torch.isfinite(torch.tensor(loss)):
        raise FloatingPointError(f"validation loss is {loss} after epoch {state.epoch}")
    state.val_losses.append(float(loss))
    improved = state.best_val_loss is None or loss < state.best_val_loss - min_delta
    if improved:
        state.best_val_loss = float(loss)
        state.bad_validations = 0
    else:
        state.bad_validations += 1
    return improved


def save_best(accelerator, model, out_dir: Path) -> None:
    if accelerator.is_main_process:
        with atomic_path(out_dir / BEST_MODEL) as tmp:
            save_model(accelerator.unwrap_model(model), str(tmp))
    accelerator.wait_for_everyone()


def restore_best(accelerator, model, out_dir: Path) -> None:
    """Loads the best validation's weights into `model` (every process)."""
    path = out_dir / BEST_MODEL
    if not path.is_file():
        raise FileNotFoundError(f"{path}: trainer.restore_best=true but the best validation's weights are missing")
    load_model(accelerator.unwrap_model(model), str(path))


def write_validation(out_dir: Path, state: TrainerState) -> None:
    write_json_atomic(
        out_dir / VALIDATION_FILE,
        {
            "val_losses": state.val_losses,
            "best_val_loss": state.best_val_loss,
            "bad_validations": state.bad_validations,
            "stopped_early": state.stopped_early,
            "after_epoch": state.epoch,
        },
    )


def validation_metrics(out_dir: Path) -> dict:
    """The run's validation summary for metrics.json ({} when it never validated)."""
    path = out_dir / VALIDATION_FILE
    if not path.is_file():
        return {}
    v = json.loads(path.read_text())
    return {
        "train/val_loss": v["val_losses"][-1],
        "train/best_val_loss": v["best_val_loss"],
        "train/validations": len(v["val_losses"]),
        "train/stopped_early": int(v["stopped_early"]),
    }
