"""The training loop: accelerate for devices and precision, step checkpoints, exact resume."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..data.durable import write_text_atomic
from .checkpoint import TrainerState, load_latest, save_checkpoint
from .history import recover_history
from .validation import check_settings, record_validation, restore_best, save_best, validation_loss, write_validation


@dataclass
class LoopSettings:
    max_epochs: int = 1
    max_steps: int | None = None  # stop early after this many steps (budgeted runs and tests)
    grad_clip: float | None = None
    checkpoint_every: int = 0  # also checkpoint every N steps inside an epoch (0: epoch ends only)
    keep_checkpoints: int = 2
    log_every: int = 10
    resume: bool = True
    # Validation on the held-out rows (TrainingParts.val_loader): after epochs 0, N, 2N, ... (0: never).
    val_every: int = 0
    monitor: str = "train_loss"  # what a plateau scheduler steps on: train_loss (epoch mean) | val_loss
    early_stopping_patience: int | None = None  # stop after this many validations without improvement
    early_stopping_min_delta: float = 0.0  # an improvement is a loss lower than the best by more than this
    restore_best: bool = False  # end with the weights of the lowest validation loss


def _move(batch: dict, device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


@dataclass
class TrainingParts:
    """What the loop trains with. `model`, `optimizer` and `loader` are already `prepare`d by
    `accelerator`; `scheduler` may be None. `samplers` are objects with `set_epoch` (the sampler and
    the dataset) so each epoch's order and augmentations are fixed by the seed. `on_device` turns a
    batch on the device into the model's inputs (e.g. the batched half of the augmentation)."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object | None
    loader: Iterable
    samplers: Sequence
    accelerator: object  # accelerate.Accelerator
    on_device: Callable[[dict], dict] | None = None
    val_loader: Iterable | None = None  # the held-out rows (LoopSettings.val_every), `prepare`d


def train(parts: TrainingParts, out_dir: Path, settings: LoopSettings, run_config: dict | None = None) -> list[dict]:
    """Trains `parts.model` and returns the logged history.

    The model's forward returns a dict with `loss`. A batch may list dataset rows whose image failed
    to load (`skipped`, data.on_error=skip): they are counted in the history (`skipped_rows`, distinct
    rows over the whole run). `run_config` (the run's resolved config) is stored in every checkpoint.
    """
    return _TrainingRun(parts, out_dir, settings, run_config).run()


class _TrainingRun:
    """One call of `train`: the resumed state, the history and the steps of the loop, each a method."""

    def __init__(self, parts: TrainingParts, out_dir: Path, settings: LoopSettings, run_config: dict | None):
        check_settings(settings.val_every, settings.monitor, settings.early_stopping_patience, settings.restore_best)
        if settings.val_every and parts.val_loader is None:
            raise ValueError("trainer.val_every >= 1 needs the held-out rows' loader (TrainingParts.val_loader)")
        self.parts, self.settings, self.run_config = parts, settings, run_config
        self.out_dir = out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        self.ckpt_root = out_dir / "checkpoints"
        self.history_path = out_dir / "history.jsonl"
        self.state = self._start_state()
        self.steps_per_epoch = len(parts.loader)
        self.total = settings.max_epochs * self.steps_per_epoch
        if settings.max_steps is not None:
            self.total = min(self.total, settings.max_steps)
        self.history = self._start_history()
        self.bar = tqdm(
            total=self.total,
            initial=self.state.global_step,
            desc="train",
            dynamic_ncols=True,
            disable=not parts.accelerator.is_local_main_process,
        )
        # ReduceLROnPlateau steps once per epoch on the epoch's mean training loss, or after each
        # validation on its loss (monitor=val_loss); the others once per batch.
        self.plateau = isinstance(parts.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
        self.plateau_on_train = self.plateau and settings.monitor == "train_loss"
        self.skipped: list[int] = []  # rows skipped on this process since the last merge into `state`

    def _start_state(self) -> TrainerState:
        p = self.parts
        state = (
            load_latest(p.accelerator, self.ckpt_root, p.model, p.optimizer, p.scheduler)
            if self.settings.resume
            else None
        )
        if state is None:
            return TrainerState()
        if p.accelerator.is_main_process:
            p.accelerator.print(f"resuming from epoch {state.epoch} step {state.global_step}")
        return state

    def _start_history(self) -> list[dict]:
        # Records logged after the checkpoint we resumed from are re-made by this run (a fresh start
        # re-makes them all: an old history is not even read).
        history = recover_history(self.history_path, self.state.global_step) if self.state.global_step else []
        if self.parts.accelerator.is_main_process:
            write_text_atomic(self.history_path, "".join(json.dumps(r) + "\n" for r in history))
        return history

    def run(self) -> list[dict]:
        self.parts.model.train()
        state = self.state
        while state.global_step < self.total and state.epoch < self.settings.max_epochs and not state.stopped_early:
            self._run_epoch()
            self._checkpoint()
        self.bar.close()
        if state.stopped_early and self.parts.accelerator.is_main_process:
            self.parts.accelerator.print(
                f"early stopping after epoch {state.epoch - 1}: no validation-loss improvement in "
                f"{state.bad_validations} validations (best {state.best_val_loss:.4f})"
            )
        if self.settings.restore_best and state.best_val_loss is not None:
            restore_best(self.parts.accelerator, self.parts.model, self.out_dir)
        elif self.settings.restore_best and self.parts.accelerator.is_main_process:
            # A step budget (trainer.max_steps) ended the run before its first validation.
            self.parts.accelerator.print("trainer.restore_best: no validation ran; the last weights are kept")
        return self.history

    def _checkpoint(self) -> None:
        p = self.parts
        _merge_skipped(p.accelerator, self.state, self.skipped)
        save_checkpoint(
            p.accelerator,
            self.ckpt_root,
            self.state,
            self.settings.keep_checkpoints,
            p.model,
            p.optimizer,
            p.scheduler,
            self.run_config,
        )

    def _run_epoch(self) -> None:
        """The rest of the current epoch (all of it, or what follows the step resumed from)."""
        state, every = self.state, self.settings.checkpoint_every
        for batch in self._epoch_batches():
            loss = self._step(batch)
            if state.global_step % self.settings.log_every == 0 or state.global_step == self.total:
                self._log(loss)
            if state.global_step >= self.total:
                break
            if every and state.global_step % every == 0 and state.step_in_epoch < self.steps_per_epoch:
                self._checkpoint()
        if state.step_in_epoch >= self.steps_per_epoch:
            self._end_epoch()

    def _epoch_batches(self):
        p, state = self.parts, self.state
        batches = p.accelerator.skip_first_batches(p.loader, state.step_in_epoch) if state.step_in_epoch else p.loader
        # accelerate's loaders keep their own epoch counter and push it to the sampler on iteration.
        if hasattr(batches, "set_epoch"):  # third-party: accelerate's loader or its skipping wrapper
            batches.set_epoch(state.epoch)
        for s in p.samplers:
            s.set_epoch(state.epoch)
        return batches

    def _step(self, batch: dict) -> torch.Tensor:
        """One optimiser step on `batch`; returns its loss."""
        p, state = self.parts, self.state
        self.skipped.extend(batch.get("skipped", ()))
        if len(batch["images"]) == 0:
            raise ValueError(
                f"no image of the batch at step {state.global_step} could be loaded "
                f"(data.on_error=skip); rows {batch['skipped'][:5]} ..."
            )
        batch = _move(batch, p.accelerator.device)
        if p.on_device is not None:
            batch = p.on_device(batch)
        loss = p.model(batch["images"], batch["input_ids"], batch["attention_mask"])["loss"]
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at step {state.global_step}")
        p.accelerator.backward(loss)
        if self.settings.grad_clip:
            p.accelerator.clip_grad_norm_(p.model.parameters(), self.settings.grad_clip)
        p.optimizer.step()
        p.optimizer.zero_grad(set_to_none=True)
        if p.scheduler is not None and not self.plateau:
            p.scheduler.step()
        if self.plateau_on_train:  # .item() syncs a GPU: only pay for it when the scheduler needs it
            state.epoch_loss_sum += loss.detach().item()
            state.epoch_loss_count += 1
        state.global_step += 1
        state.step_in_epoch += 1
        self.bar.update(1)
        return loss

    def _log(self, loss: torch.Tensor) -> None:
        p, state = self.parts, self.state
        _merge_skipped(p.accelerator, state, self.skipped)
        record = {
            "step": state.global_step,
            "epoch": state.epoch,
            "loss": p.accelerator.gather(loss.detach()).mean().item(),
            "lr": p.optimizer.param_groups[0]["lr"],
            "skipped_rows": len(state.skipped_rows),
        }
        self.history.append(record)
        self.bar.set_postfix(loss=f"{record['loss']:.3f}")
        p.accelerator.log({"train/loss": record["loss"], "train/lr": record["lr"]}, step=state.global_step)
        if p.accelerator.is_main_process:
            with self.history_path.open("a") as f:
                f.write(json.dumps(record) + "\n")

    def _end_epoch(self) -> None:
        p, state = self.parts, self.state
        if self.plateau_on_train:
            mean = torch.tensor(state.epoch_loss_sum / max(state.epoch_loss_count, 1), device=p.accelerator.device)
            p.scheduler.step(p.accelerator.gather(mean).mean().item())
        if self.settings.val_every and state.epoch % self.settings.val_every == 0:
            self._validate()
        state.epoch += 1
        state.step_in_epoch = 0
        state.epoch_loss_sum, state.epoch_loss_count = 0.0, 0

    def _validate(self) -> None:
        """The held-out loss after this epoch: logged, recorded in the state (with the best and the
        validations since it improved), stepping a plateau scheduler that monitors it, keeping the
        best weights and stopping early as the settings say."""
        p, state, s = self.parts, self.state, self.settings
        loss = validation_loss(p.model, p.val_loader, p.accelerator, p.on_device)
        improved = record_validation(state, loss, s.early_stopping_min_delta)
        p.accelerator.log({"val/loss": loss}, step=state.global_step)
        if p.accelerator.is_main_process:
            p.accelerator.print(f"epoch {state.epoch}: validation loss {loss:.4f} (best {state.best_val_loss:.4f})")
        if self.plateau and s.monitor == "val_loss":
            p.scheduler.step(loss)
        if improved and s.restore_best:
            save_best(p.accelerator, p.model, self.out_dir)
        if s.early_stopping_patience is not None and state.bad_validations >= s.early_stopping_patience:
            state.stopped_early = True
        if p.accelerator.is_main_process:
            write_validation(self.out_dir, state)


def _merge_skipped(accelerator, state: TrainerState, skipped: list[int]) -> None:
    """Adds the rows every process skipped since the last call to `state` (the same on all)."""
    rows = list(skipped)
    if accelerator.num_processes > 1:
        from accelerate.utils import gather_object  # noqa: PLC0415

        rows = gather_object(rows)
    if rows:
        state.skipped_rows = sorted(set(state.skipped_rows) | set(rows))
    skipped.clear()


def steps_for(n_rows: int, batch_size: int, drop_last: bool) -> int:
    return n_rows // batch_size if drop_last else math.ceil(n_rows / batch_size)
