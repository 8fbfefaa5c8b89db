"""Resume over state files a crash tore or a hand (or disk) garbled: a torn history.jsonl is cut back to
the checkpoint's step; a checkpoint whose state files hold wrongly typed values is skipped for the one
before it, naming the file. Either way the run ends with the uninterrupted run's weights."""

from __future__ import annotations

import json
import logging
import math

import pytest
import torch
from safetensors.torch import load_file, save_file

from syncxr.train.checkpoint import STATE_FILE, checkpoint_dirs
from tests.train.test_checkpoint import N, _same, run


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run's weights."""
    weights, _, _ = run(tmp_path_factory.mktemp("ref") / "ref", "cosine")
    return weights


def _cut(tmp_path):
    """A run stopped at step 7 with checkpoints at steps 2, 3, 4, 6, 7; returns its dir and newest checkpoint."""
    run(tmp_path / "cut", "cosine", max_steps=7, checkpoint_every=2)
    ckpts = checkpoint_dirs(tmp_path / "cut" / "checkpoints")
    assert [c.name for c in ckpts[-2:]] == ["step_00000006", "step_00000007"]
    return tmp_path / "cut", ckpts[-1]


def test_a_torn_history_tail_and_records_past_the_checkpoint_are_dropped_on_resume(tmp_path, reference, caplog):
    cut, _ = _cut(tmp_path)
    history = cut / "history.jsonl"
    # Steps 8 and 9 were logged after the last checkpoint, then a crash tore the append of step 10.
    with history.open("a") as f:
        f.write(json.dumps({"step": 8, "epoch": 2, "loss": 1.0}) + "\n" + json.dumps({"step": 9, "epoch": 2}) + "\n")
        f.write('{"step": 10, "epoch": 3, "lo')
    caplog.set_level(logging.WARNING, "syncxr.train.history")
    weights, _, _ = run(cut, "cosine")
    assert _same(weights, reference)
    assert [json.loads(line)["step"] for line in history.read_text().splitlines()] == list(range(1, N + 1))
    assert f"{history}: line 10 is not a whole record" in caplog.text
    assert f"{history}: 2 record(s) past the checkpoint's step 7 dropped (steps 8-9" in caplog.text


WRONG_TRAINER_STATES = {
    "global_step_as_a_string": {"global_step": "7"},
    "step_in_epoch_as_a_float": {"step_in_epoch": 1.5},
    "a_negative_epoch": {"epoch": -1},
    "a_flag_for_a_count": {"epoch_loss_count": True},
    "a_non-finite_loss_sum": {"epoch_loss_sum": math.nan},
    "skipped_rows_not_a_list": {"skipped_rows": "3"},
    "another_checkpoints_step": {"global_step": 6},
    "step_in_epoch_past_global_step": {"step_in_epoch": 8},
    "a_missing_field": {"skipped_rows": None},  # None: the key is removed
    "a_non-finite_validation_loss": {"val_losses": [math.nan]},
    "more_bad_validations_than_validations": {"bad_validations": 1},
}


@pytest.mark.parametrize("change", WRONG_TRAINER_STATES.values(), ids=WRONG_TRAINER_STATES.keys())
def test_a_wrongly_typed_trainer_state_falls_back_to_the_previous_checkpoint(tmp_path, reference, caplog, change):
    cut, newest = _cut(tmp_path)
    state = json.loads((newest / STATE_FILE).read_text())
    state.update(change)
    state = {k: v for k, v in state.items() if v is not None}
    (newest / STATE_FILE).write_text(json.dumps(state))
    weights, _, _ = run(cut, "cosine")
    assert _same(weights, reference)
    assert f"checkpoint {newest} cannot be loaded ({newest / STATE_FILE}: " in caplog.text


def _set_first(blob, key: str, value):
    """Sets the first `key` found in the nested JSON `blob`."""
    if isinstance(blob, dict):
        if key in blob:
            blob[key] = value
            return True
        return any(_set_first(v, key, value) for v in blob.values())
    return isinstance(blob, list) and any(_set_first(v, key, value) for v in blob)


@pytest.mark.parametrize(
    "name, key, value",
    [
        ("scheduler", "last_epoch", "7"),
        ("scheduler", "base_lrs", 0.05),
        ("optimizer", "lr", "0.05"),
        ("optimizer", "amsgrad", 0),
    ],
)
def test_a_wrongly_typed_optimizer_or_scheduler_state_falls_back(tmp_path, reference, caplog, name, key, value):
    cut, newest = _cut(tmp_path)
    blob = json.loads((newest / f"{name}.json").read_text())
    assert _set_first(blob, key, value)
    (newest / f"{name}.json").write_text(json.dumps(blob))
    weights, _, _ = run(cut, "cosine")
    assert _same(weights, reference)
    assert f"checkpoint {newest} cannot be loaded ({newest / name}.json: " in caplog.text


def test_optimizer_moments_of_another_shape_fall_back(tmp_path, reference, caplog):
    cut, newest = _cut(tmp_path)
    tensors = load_file(newest / "optimizer.safetensors")
    (moment,) = [k for k in tensors if k.endswith("exp_avg")][:1]
    tensors[moment] = torch.zeros(7)
    save_file(tensors, newest / "optimizer.safetensors")
    weights, _, _ = run(cut, "cosine")
    assert _same(weights, reference)
    assert f"checkpoint {newest} cannot be loaded ({newest / 'optimizer.json'}: state of parameter" in caplog.text
