"""Checkpoints of the training loop: exact resume, no unpickling, fallback, temp dirs of other runs."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch import nn
from torch.utils.data import DataLoader
from transformers import get_cosine_schedule_with_warmup

from syncxr.data.paired_dataset import EpochShuffleSampler
from syncxr.train.checkpoint import STATE_FILE, checkpoint_dirs
from syncxr.train.loop import LoopSettings, TrainingParts, train

N, BATCH, EPOCHS = 12, 4, 4  # 3 steps per epoch, 12 in all


class Tiny(nn.Module):
    """The loop's model interface; dropout draws from the global RNG, so RNG state matters."""

    def __init__(self):
        super().__init__()
        self.lin, self.drop = nn.Linear(4, 1), nn.Dropout(0.5)

    def forward(self, images, input_ids, attention_mask):
        return {"loss": ((self.drop(self.lin(images)).squeeze(-1) - input_ids.float()) ** 2).mean()}


def _collate(items):
    return {
        "images": torch.stack([x for x, _ in items]),
        "input_ids": torch.tensor([y for _, y in items]),
        "attention_mask": torch.ones(len(items), 1),
    }


def run(
    out: Path,
    scheduler: str,
    max_steps: int | None = None,
    checkpoint_every: int = 0,
    register_scheduler: bool = False,
    n: int = N,
    keep: int = 10,
):
    """Trains Tiny in `out` (resuming from its checkpoints); returns (weights, lr, scheduler state)."""
    out.mkdir(parents=True, exist_ok=True)
    set_seed(0)
    accelerator = Accelerator(cpu=True)
    g = torch.Generator().manual_seed(1)
    data = [(torch.randn(4, generator=g), int(i % 3)) for i in range(n)]
    model = Tiny()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    if scheduler == "cosine":
        sched = get_cosine_schedule_with_warmup(optimizer, num_warmup_steps=2, num_training_steps=n)
    else:  # mode=max on a falling loss: "no improvement" every epoch, so the LR halves each time
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=0)
    sampler = EpochShuffleSampler(n, seed=0)
    loader = DataLoader(
        data,
        batch_size=BATCH,
        sampler=sampler,
        drop_last=True,
        collate_fn=_collate,
        generator=torch.Generator().manual_seed(0),
    )
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    if register_scheduler:  # what train/run.py did before checkpoints stopped going through load_state
        accelerator.register_for_checkpointing(sched)
    train(
        TrainingParts(model, optimizer, sched, loader, [sampler], accelerator),
        out,
        LoopSettings(
            max_epochs=EPOCHS,
            max_steps=max_steps,
            checkpoint_every=checkpoint_every,
            keep_checkpoints=keep,
            log_every=1,
        ),
    )
    weights = {k: v.clone() for k, v in accelerator.unwrap_model(model).state_dict().items()}
    return weights, optimizer.param_groups[0]["lr"], sched.state_dict()


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("scheduler", ["cosine", "plateau"])
def test_resume_mid_epoch_equals_an_uninterrupted_run(tmp_path, scheduler):
    ref_w, ref_lr, ref_sched = run(tmp_path / "ref", scheduler)
    run(tmp_path / "cut", scheduler, max_steps=7)  # stops (and checkpoints) inside the third epoch
    (ckpt,) = checkpoint_dirs(tmp_path / "cut" / "checkpoints")[-1:]
    assert json.loads((ckpt / STATE_FILE).read_text())["step_in_epoch"] == 1
    assert not list(ckpt.glob("*.bin")) and not list(ckpt.glob("*.pkl")) and not list(ckpt.glob("*.pt"))
    w, lr, sched = run(tmp_path / "cut", scheduler)
    assert _same(w, ref_w) and lr == ref_lr and sched == ref_sched
    if scheduler == "plateau":
        assert ref_lr == 0.05 * 0.5**3  # the plateau state (best, bad epochs) came through the resume


class Payload:
    """Unpickling this creates `path` (as a command would)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def test_planted_pickles_in_a_checkpoint_are_never_unpickled(tmp_path):
    run(tmp_path / "run", "cosine", max_steps=5, register_scheduler=True)
    (ckpt,) = checkpoint_dirs(tmp_path / "run" / "checkpoints")[-1:]
    marker = tmp_path / "pwned"
    # Names accelerate's load_state reads; it unpickles the registered scheduler's
    # custom_checkpoint_0.pkl with weights_only=False (the others with weights_only=True).
    for name in ("custom_checkpoint_0.pkl", "scheduler.bin", "random_states_0.pkl", "scaler.pt", "pytorch_model.bin"):
        torch.save({"state": Payload(marker)}, ckpt / name)
    error = None
    try:
        run(tmp_path / "run", "cosine", register_scheduler=True)
    except Exception as e:  # noqa: BLE001 - the planted code must not have run, whatever happened
        error = e
    assert not marker.exists(), "a pickle planted in the checkpoint was executed on resume"
    assert error is None


def test_unreadable_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, caplog):
    ref_w, ref_lr, _ = run(tmp_path / "ref", "cosine")
    run(tmp_path / "cut", "cosine", max_steps=8, checkpoint_every=2)
    ckpts = checkpoint_dirs(tmp_path / "cut" / "checkpoints")
    newest = ckpts[-1]
    blob = (newest / "model.safetensors").read_bytes()
    (newest / "model.safetensors").write_bytes(blob[: len(blob) // 2])  # torn by a crash of the disk
    w, lr, _ = run(tmp_path / "cut", "cosine")
    assert _same(w, ref_w) and lr == ref_lr
    assert f"{newest} cannot be loaded (model.safetensors: " in caplog.text


def test_no_loadable_checkpoint_is_an_error_naming_them(tmp_path):
    run(tmp_path / "cut", "cosine", max_steps=4)
    for ckpt in checkpoint_dirs(tmp_path / "cut" / "checkpoints"):
        (ckpt / "optimizer.json").write_text("{not json")
    with pytest.raises(
        RuntimeError,
        match=r"(?s)no checkpoint could be loaded:\n.*step_00000004/optimizer.json: "
        r"JSONDecodeError.*step_00000003/optimizer.json.*resume=false",
    ):
        run(tmp_path / "cut", "cosine")


# Another run writing its temp checkpoint: it holds an flock on `<dir>.lock` (as StagingDir does).
HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1] + ".lock", os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.makedirs(sys.argv[1])
open(sys.argv[1] + "/model.safetensors", "w").write("partial")
print("held", flush=True)
time.sleep(600)
"""


def test_a_live_runs_temp_checkpoint_is_left_alone_and_a_dead_runs_removed(tmp_path):
    """Two identical runs in one directory: neither writes into, or removes, the other's temp dir."""
    root = tmp_path / "run" / "checkpoints"
    root.mkdir(parents=True)
    live, dead = root / ".tmp_step_00000003", root / ".tmp_step_00000002"
    dead.mkdir()
    (dead / "model.safetensors").write_text("left by a killed run")
    other = subprocess.Popen([sys.executable, "-c", HOLD, str(live)], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "held"
        run(tmp_path / "run", "cosine", max_steps=3)  # checkpoints at step 3, as the other run does
        assert (live / "model.safetensors").read_text() == "partial"
        assert not dead.exists()
        assert [p.name for p in checkpoint_dirs(root)] == ["step_00000003"]
    finally:
        other.kill()
        other.wait()
    time.sleep(0.1)
    run(tmp_path / "run", "cosine", max_steps=6)  # the other run is gone now: its temp dir goes too
    assert not live.exists() and not list(root.glob(".tmp_step_*"))
