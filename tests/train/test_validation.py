"""Validation during pre-training (trainer.val_every): the held-out loss, the plateau scheduler and
early stopping it drives, the best weights kept, all carried through a kill and resume; and the
paper-mode pre-training settings that use them (the official codebases')."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from syncxr.train.checkpoint import TrainerState, checkpoint_dirs, read_trainer_state
from syncxr.train.state_files import load_state
from syncxr.train.training_job import run_training
from syncxr.train.validation import check_settings, record_validation
from tests.helpers import TINY, compose_train
from tests.train.test_gloria_e2e import history, one_thread, train_until_killed  # noqa: F401 (a fixture)


def test_early_stopping_counts_as_lightning_does():
    """An improvement is a loss lower than the best by more than min_delta; the others are counted."""
    state = TrainerState()
    assert [record_validation(state, v, 0.0) for v in (1.0, 0.9, 0.9, 0.95, 0.89)] == [True, True, False, False, True]
    assert state.best_val_loss == 0.89 and state.bad_validations == 0 and state.val_losses[-1] == 0.89
    state = TrainerState()
    assert [record_validation(state, v, 0.05) for v in (1.0, 0.96, 0.94, 0.8)] == [True, False, True, True]
    with pytest.raises(FloatingPointError, match="validation loss is nan"):
        record_validation(state, float("nan"), 0.0)


def test_settings_that_need_a_validation_loss_are_refused_without_one():
    with pytest.raises(ValueError, match="trainer.early_stopping_patience.*trainer.val_every >= 1"):
        check_settings(0, "train_loss", 10, False)
    with pytest.raises(ValueError, match="trainer.monitor=val_loss"):
        check_settings(0, "val_loss", None, False)
    with pytest.raises(ValueError, match="trainer.monitor must be one of"):
        check_settings(1, "valid_loss", None, False)
    check_settings(0, "train_loss", None, False)  # the phantom default


def test_a_checkpoint_written_before_validation_existed_still_resumes(tmp_path):
    d = tmp_path / "step_00000004"
    d.mkdir()
    old = {"epoch": 1, "step_in_epoch": 0, "global_step": 4, "epoch_loss_sum": 0.0, "epoch_loss_count": 0}
    (d / "trainer_state.json").write_text(json.dumps({**old, "skipped_rows": []}))
    state = read_trainer_state(d)
    assert state.val_losses == [] and state.best_val_loss is None and not state.stopped_early
    (d / "trainer_state.json").write_text(
        json.dumps(
            {
                **old,
                "skipped_rows": [],
                "val_losses": [1.0],
                "best_val_loss": 2.0,
                "bad_validations": 0,
                "stopped_early": False,
            }
        )
    )
    with pytest.raises(ValueError, match="best_val_loss"):
        read_trainer_state(d)


def test_paper_mode_pretraining_validates_as_the_official_codebases():
    gloria = compose_train(["experiment=syncxr_paper", "model=gloria"])
    t = gloria.trainer
    assert (t.val_every, t.monitor, t.early_stopping_patience, t.early_stopping_min_delta, t.restore_best) == (
        1,
        "val_loss",
        10,
        0.0,
        True,
    )
    assert gloria.scheduler._target_.endswith("ReduceLROnPlateau") and (
        gloria.scheduler.factor,
        gloria.scheduler.patience,
    ) == (0.5, 5)
    assert gloria.model.divide_by_temp2 is False  # gloria/loss/gloria_loss.py
    convirt = compose_train(["experiment=syncxr_paper", "model=convirt"])
    t = convirt.trainer
    assert (t.val_every, t.early_stopping_patience, t.restore_best, t.max_epochs) == (5, None, True, 50)
    assert (convirt.loader.crop_scale, convirt.loader.jitter, convirt.text_encoder.pool) == (0.8, 0.0, "mean")
    assert convirt.model.proj_hidden is None and convirt.model.proj_dim == 512
    # The phantom default does not validate.
    assert compose_train([]).trainer.val_every == 0


# 96 rows, 30 % held out: 64 training rows (4 steps of 16 an epoch), 32 validation rows. The plateau and
# early stopping count a validation as better only if it beats the best by half (threshold) / by 100
# (min_delta): validation 0 is the best, 1 and 2 are bad; the plateau (patience 0) halves the LR after
# each bad one, early stopping (patience 2) stops after epoch 2 of 6.
ARGS = [
    *TINY,
    "generation.val_fraction=0.3",
    "trainer.max_epochs=6",
    "trainer.checkpoint_every=2",
    "trainer.val_every=1",
    "trainer.monitor=val_loss",
    "scheduler=plateau",
    "scheduler.patience=0",
    "+scheduler.threshold=0.5",
    "trainer.early_stopping_patience=2",
    "trainer.early_stopping_min_delta=100",
    "trainer.restore_best=true",
]


@pytest.mark.slow
def test_validation_drives_the_plateau_and_early_stopping_and_survives_a_kill(cache_dir, tmp_path, one_thread):  # noqa: F811
    cfg = compose_train(ARGS)
    ref = run_training(cfg, tmp_path / "ref")
    val = json.loads((tmp_path / "ref" / "validation.json").read_text())
    assert len(val["val_losses"]) == 3 and val["stopped_early"] and val["best_val_loss"] == val["val_losses"][0]
    assert ref["train/steps"] == 12 and ref["train/stopped_early"] == 1 and ref["train/validations"] == 3
    lr0 = float(cfg.optimizer.lr)
    lrs = {h["epoch"]: h["lr"] for h in history(tmp_path / "ref")}
    assert lrs == {0: lr0, 1: lr0, 2: lr0 / 2}  # halved after validation 1, on the validation loss
    sched = load_state(checkpoint_dirs(tmp_path / "ref" / "checkpoints")[-1], "scheduler")
    assert sched["best"] == pytest.approx(val["val_losses"][0]) and sched["last_epoch"] == 3
    # The evaluated (and saved) weights are epoch 0's, not the last step's.
    model = load_file(tmp_path / "ref" / "model.safetensors")
    best = load_file(tmp_path / "ref" / "best_model.safetensors")
    last = load_file(checkpoint_dirs(tmp_path / "ref" / "checkpoints")[-1] / "model.safetensors")
    assert all(torch.equal(model[k], best[k]) for k in best)
    assert any(not torch.equal(best[k], last[k]) for k in best)

    # Killed inside epoch 1 (after validation 0 made the best) and inside epoch 2 (one bad validation
    # counted, the LR not yet halved): the resumed run is the uninterrupted one.
    run_dir = tmp_path / "killed"
    for step in (6, 10):
        train_until_killed(cfg, run_dir, step)
    assert run_training(cfg, run_dir) == ref
    assert json.loads((run_dir / "validation.json").read_text()) == val
    assert history(run_dir) == history(tmp_path / "ref")
    again = load_file(run_dir / "model.safetensors")
    assert all(torch.equal(again[k], model[k]) for k in model)


@pytest.mark.slow
def test_a_step_budget_that_ends_before_the_first_validation_keeps_the_last_weights(cache_dir, tmp_path):
    cfg = compose_train([*ARGS, "trainer.max_steps=2"])  # 4 steps an epoch: no validation runs
    metrics = run_training(cfg, tmp_path / "run")
    assert metrics["train/steps"] == 2 and "train/val_loss" not in metrics
    assert not (tmp_path / "run" / "best_model.safetensors").exists()
    saved = load_file(tmp_path / "run" / "model.safetensors")
    last = load_file(checkpoint_dirs(tmp_path / "run" / "checkpoints")[-1] / "model.safetensors")
    assert all(torch.equal(saved[k], last[k]) for k in saved)
