"""GLoRIA end to end: a tiny `model=gloria scheduler=plateau` run is SIGKILLed mid-epoch, resumed to
exactly the uninterrupted run (weights, metrics, the plateau scheduler's best / bad epochs / LR),
then loaded through `load_trained` and scored zero-shot and on grounding."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch
from safetensors.torch import load_file

from syncxr.eval.evaluation_job import run_evaluation
from syncxr.train.checkpoint import checkpoint_dirs
from syncxr.train.state_files import load_state
from syncxr.train.training_job import run_training
from tests.helpers import TINY_GLORIA, chexpert_twin, compose_eval, compose_train

pytestmark = pytest.mark.slow

# About 60 rows at 16 a step: 3 steps an epoch, 12 in all; checkpoints at steps 2, 3, 4, 6, 8, 9, 10, 12.
# The plateau: an epoch counts as better only if its mean loss is under half the best so far, which
# after the first epoch none is: epochs 1 and 2 are bad, the second of them (patience 1) halves the
# LR for epoch 3, and epoch 3 leaves one bad epoch counted.
ARGS = [
    *TINY_GLORIA,
    "generation.n_samples=64",
    "trainer.max_epochs=4",
    "trainer.checkpoint_every=2",
    "scheduler=plateau",
    "scheduler.patience=1",
    "+scheduler.threshold=0.5",
]
KILL_AFTER_SAVES_OF_STEPS = (2, 8)  # inside epochs 0 and 2, two of their three losses summed


def epochs_of(history: list[dict]) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for h in history:
        out.setdefault(h["epoch"], []).append(h)
    return out


def history(run) -> list[dict]:
    return [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]


def final_scheduler_state(run) -> dict:
    return load_state(checkpoint_dirs(run / "checkpoints")[-1], "scheduler")


def train_until_killed(cfg, run_dir, step: int) -> None:
    """Trains (resuming) in a forked child that SIGKILLs itself right after the checkpoint of `step`."""
    pid = os.fork()
    if pid == 0:
        try:
            from syncxr.train import loop

            real_save = loop.save_checkpoint

            def save_then_die(accelerator, root, state, *a, **k):
                real_save(accelerator, root, state, *a, **k)
                if state.global_step == step:
                    os.kill(os.getpid(), signal.SIGKILL)

            loop.save_checkpoint = save_then_die
            run_training(cfg, run_dir)
        finally:
            os._exit(3)  # reached only if the kill never came
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (step, status)


@pytest.fixture
def one_thread():
    """Reference and killed runs on one thread alike: a forked child cannot use the parent's OpenMP
    pool, and another thread count would sum floats in another order."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_gloria_with_plateau_killed_resumed_and_evaluated(cache_dir, tmp_path, one_thread):
    cfg = compose_train(ARGS)
    ref = run_training(cfg, tmp_path / "ref")
    lr0 = float(cfg.optimizer.lr)
    steps = history(tmp_path / "ref")
    by_epoch = epochs_of(steps)
    assert sorted(by_epoch) == [0, 1, 2, 3] and {len(v) for v in by_epoch.values()} == {3}, by_epoch

    # Once per epoch, on the epoch's mean training loss (log_every=1: every step's loss is in the
    # history): the LR each epoch ran at, worked out from those means by the rule of the config.
    means = [sum(h["loss"] for h in by_epoch[e]) / len(by_epoch[e]) for e in range(4)]
    assert all(m > means[0] / 2 for m in means), means  # no epoch counts as better than the first
    assert [{h["lr"] for h in by_epoch[e]} for e in range(4)] == [{lr0}, {lr0}, {lr0}, {lr0 / 2}]
    state = final_scheduler_state(tmp_path / "ref")
    assert state["last_epoch"] == 4 and state["best"] == pytest.approx(means[0], rel=1e-6)
    assert state["num_bad_epochs"] == 1 and state["_last_lr"] == [lr0 / 2]

    # The same run SIGKILLed right after its checkpoint inside epoch 0 (the best epoch's mean loss
    # is then half summed), resumed and SIGKILLed again inside epoch 2 (one bad epoch counted), resumed.
    run_dir = tmp_path / "killed"
    for step in KILL_AFTER_SAVES_OF_STEPS:
        train_until_killed(cfg, run_dir, step)
        assert not (run_dir / "metrics.json").exists()
    killed = load_state(checkpoint_dirs(run_dir / "checkpoints")[-1], "scheduler")
    assert killed["num_bad_epochs"] == 1 and killed["last_epoch"] == 2  # what the resume must carry on from

    resumed = run_training(cfg, run_dir)
    assert resumed == ref
    assert final_scheduler_state(run_dir) == state
    assert history(run_dir) == steps  # every step's loss and LR, none lost or repeated
    a, b = load_file(tmp_path / "ref" / "model.safetensors"), load_file(run_dir / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (run_dir / "attention_maps.png").is_file()

    # evaluate.py's path: load_trained rebuilds the GLoRIA model; zero-shot scores what training
    # scored, and grounding reads the model's own word-to-region attention.
    out = tmp_path / "eval"
    m = run_evaluation(
        compose_eval(
            run_dir,
            [
                "task=[zeroshot_cls,zeroshot_grounding]",
                *chexpert_twin(60, 40, 64),
                "task.zeroshot_cls.datasets=[chexpert]",
                "task.zeroshot_grounding.datasets=[rsna]",
            ],
        ),
        out,
    )
    for key in [k for k in ref if k.startswith("zeroshot_cls/chexpert/") and k.endswith("auc")]:
        assert m[key] == pytest.approx(ref[key], abs=1e-4), key
    info = json.loads((out / "evaluation.json").read_text())["details"]["zeroshot_grounding"]["rsna"]
    # upscale=auto: GLoRIA's third-stage maps are taken at the run's own 48 px.
    assert info["map_source"] == "model.word_similarity" and info["image_size"] == 48, info
    g = "zeroshot_grounding/rsna"
    assert m[f"{g}/n_positive"] > 0 and 0 < m[f"{g}/dice"] <= 1 and 0 < m[f"{g}/random_dice"] <= 1, m
