"""The training loop: accelerate for devices and precision, step checkpoints, exact resume."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..data.durable import write_text_atomic
from .checkpoint import TrainerState, load_latest, save_checkpoint
from .history import recover_history


@dataclass
class LoopSettings:
    max_epochs: int = 1
    max_steps: int | None = None  # stop early after this many steps (budgeted runs and tests)
    grad_clip: float | None = None
    checkpoint_every: int = 0  # also checkpoint every N steps inside an epoch (0: epoch ends only)
    keep_checkpoints: int = 2
    log_every: int = 10
    resume: bool = True


def _move(batch: dict, device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def train(model, optimizer, scheduler, loader, samplers, accelerator, out_dir: Path,
          settings: LoopSettings, on_device: Callable[[dict], dict] | None = None,
          run_config: dict | None = None) -> list[dict]:
    """Trains `model` (already `prepare`d) and returns the logged history.

    `samplers` are objects with `set_epoch` (the sampler and the dataset) so each epoch's order and
    augmentations are fixed by the seed. `on_device` turns a batch on the device into the model's
    inputs (e.g. the batched half of the augmentation). The model's forward returns a dict with
    `loss`. A batch may list dataset rows whose image failed to load (`skipped`, data.on_error=skip):
    they are counted in the history (`skipped_rows`, distinct rows over the whole run).
    `run_config` (the run's resolved config) is stored in every checkpoint.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_root = out_dir / "checkpoints"
    history_path = out_dir / "history.jsonl"
    state = load_latest(accelerator, ckpt_root, model, optimizer, scheduler) if settings.resume else None
    if state is None:
        state = TrainerState()
    elif accelerator.is_main_process:
        accelerator.print(f"resuming from epoch {state.epoch} step {state.global_step}")
    steps_per_epoch = len(loader)
    total = settings.max_epochs * steps_per_epoch
    if settings.max_steps is not None:
        total = min(total, settings.max_steps)
    # Records logged after the checkpoint we resumed from are re-made by this run (a fresh start
    # re-makes them all: an old history is not even read).
    history = recover_history(history_path, state.global_step) if state.global_step else []
    if accelerator.is_main_process:
        write_text_atomic(history_path, "".join(json.dumps(r) + "\n" for r in history))
    bar = tqdm(total=total, initial=state.global_step, desc="train", dynamic_ncols=True,
               disable=not accelerator.is_local_main_process)
    # ReduceLROnPlateau steps once per epoch on the epoch's mean loss; the others once per batch.
    plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    skipped: list[int] = []  # rows skipped on this process since the last merge into `state`

    def checkpoint():
        _merge_skipped(accelerator, state, skipped)
        save_checkpoint(accelerator, ckpt_root, state, settings.keep_checkpoints, model, optimizer, scheduler,
                        run_config)

    model.train()
    while state.global_step < total and state.epoch < settings.max_epochs:
        batches = accelerator.skip_first_batches(loader, state.step_in_epoch) if state.step_in_epoch else loader
        # accelerate's loaders keep their own epoch counter and push it to the sampler on iteration.
        if hasattr(batches, "set_epoch"):  # third-party: accelerate's loader or its skipping wrapper
            batches.set_epoch(state.epoch)
        for s in samplers:
            s.set_epoch(state.epoch)
        for batch in batches:
            skipped.extend(batch.get("skipped", ()))
            if len(batch["images"]) == 0:
                raise ValueError(f"no image of the batch at step {state.global_step} could be loaded "
                                 f"(data.on_error=skip); rows {batch['skipped'][:5]} ...")
            batch = _move(batch, accelerator.device)
            if on_device is not None:
                batch = on_device(batch)
            out = model(batch["images"], batch["input_ids"], batch["attention_mask"])
            loss = out["loss"]
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss is {loss.item()} at step {state.global_step}")
            accelerator.backward(loss)
            if settings.grad_clip:
                accelerator.clip_grad_norm_(model.parameters(), settings.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if scheduler is not None and not plateau:
                scheduler.step()
            if plateau:  # .item() syncs a GPU: only pay for it when the scheduler needs it
                state.epoch_loss_sum += loss.detach().item()
                state.epoch_loss_count += 1
            state.global_step += 1
            state.step_in_epoch += 1
            bar.update(1)
            if state.global_step % settings.log_every == 0 or state.global_step == total:
                _merge_skipped(accelerator, state, skipped)
                record = {"step": state.global_step, "epoch": state.epoch,
                          "loss": accelerator.gather(loss.detach()).mean().item(),
                          "lr": optimizer.param_groups[0]["lr"], "skipped_rows": len(state.skipped_rows)}
                history.append(record)
                bar.set_postfix(loss=f"{record['loss']:.3f}")
                accelerator.log({"train/loss": record["loss"], "train/lr": record["lr"]},
                                step=state.global_step)
                if accelerator.is_main_process:
                    with history_path.open("a") as f:
                        f.write(json.dumps(record) + "\n")
            if state.global_step >= total:
                break
            if settings.checkpoint_every and state.global_step % settings.checkpoint_every == 0 \
                    and state.step_in_epoch < steps_per_epoch:
                checkpoint()
        if state.step_in_epoch >= steps_per_epoch:
            if plateau:
                mean = torch.tensor(state.epoch_loss_sum / max(state.epoch_loss_count, 1), device=accelerator.device)
                scheduler.step(accelerator.gather(mean).mean().item())
            state.epoch += 1
            state.step_in_epoch = 0
            state.epoch_loss_sum, state.epoch_loss_count = 0.0, 0
        checkpoint()
    bar.close()
    return history


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
