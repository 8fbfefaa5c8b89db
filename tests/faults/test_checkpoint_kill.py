"""Training SIGKILLed while it writes a checkpoint resumes to exactly the run that was never
interrupted: same weights, same metrics, no temp directory left behind. A training job in a child
process is killed at a seeded random point; the tiny loop at every point of one save."""

from __future__ import annotations

import json
import multiprocessing
import signal

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from syncxr.train.training_job import run_training
from tests.faults.kill_points import KillPoints
from tests.helpers import TINY, compose_train

pytestmark = pytest.mark.slow
# 5 steps per epoch, 15 in all; checkpoints at steps 2, 4, 5, 6, 8, 10, 12, 14, 15, the oldest pruned.
ARGS = [*TINY, "trainer.checkpoint_every=2"]
SEED = 0  # picks the kill points


@pytest.fixture
def one_thread():
    """One torch thread for the test, as in an xdist worker: a child forked from a process whose
    OpenMP pool ran several threads hangs in its first parallel region, and the killed child must
    take the float path of the runs it is compared with."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def killed_in_a_fork(save: int, event: int, train) -> int:
    """The exit code of `train()` run in a child forked from this process (it inherits the imports
    a new interpreter would spend seconds on) at one torch thread, SIGKILLed just before event
    `event` of its `save`-th checkpoint save (0 if it was never hit)."""

    def child() -> None:
        torch.set_num_threads(1)
        KillPoints(save, event).install()
        train()

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    process.join(timeout=900)
    if process.exitcode is None:
        process.kill()
        pytest.fail(f"the training to be killed in save {save} was still running after 900 s")
    return process.exitcode


def test_training_killed_inside_checkpoint_writing_resumes_to_the_uninterrupted_result(
    cache_dir, tmp_path, monkeypatch, capsys, one_thread
):
    # The uninterrupted run, counting the file-system events of each of its checkpoint saves.
    steps = []
    counter = KillPoints()
    counter.install(monkeypatch.setattr)
    from syncxr.train import loop

    counting_save = loop.save_checkpoint
    monkeypatch.setattr(
        loop,
        "save_checkpoint",
        lambda acc, root, state, *a, **k: (steps.append(state.global_step), counting_save(acc, root, state, *a, **k))[
            1
        ],
    )
    ref = run_training(compose_train(ARGS), tmp_path / "ref")
    monkeypatch.undo()
    per_save = dict(zip(steps, counter.per_save))  # step -> events of its save
    assert steps == [2, 4, 5, 6, 8, 10, 12, 14, 15] and min(per_save.values()) >= 10, per_save

    rng = np.random.default_rng(SEED)
    run_dir = tmp_path / "killed"
    save = int(rng.integers(2, len(steps)))  # any save but the last (after it only evaluation is left)
    event = int(rng.integers(1, per_save[steps[save - 1]] + 1))
    cfg = compose_train(ARGS)
    assert killed_in_a_fork(save, event, lambda: run_training(cfg, run_dir)) == -signal.SIGKILL
    assert not (run_dir / "metrics.json").exists()
    print(f"killed in the save of step {steps[save - 1]}, before event {event} of {per_save[steps[save - 1]]}")

    capsys.readouterr()
    assert run_training(compose_train(ARGS), run_dir) == ref  # the same job again runs to the end
    assert "resuming from" in capsys.readouterr().out
    assert json.loads((run_dir / "metrics.json").read_text()) == ref
    a, b = load_file(tmp_path / "ref" / "model.safetensors"), load_file(run_dir / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    steps_logged = [json.loads(line)["step"] for line in (run_dir / "history.jsonl").read_text().splitlines()]
    assert steps_logged == list(range(1, 16))
    assert not list((run_dir / "checkpoints").glob(".tmp_step_*"))  # the killed saves' temp dirs are gone


def test_every_kill_point_of_a_checkpoint_save_resumes_exactly(tmp_path, monkeypatch, one_thread):
    """The tiny loop of tests/train/test_checkpoint, SIGKILLed before each file-system event of one
    save in turn (a forked child per kill point), then resumed: always the uninterrupted weights."""
    from tests.train.test_checkpoint import _same, run

    counter = KillPoints()
    counter.install(monkeypatch.setattr)
    ref, _, _ = run(tmp_path / "ref", "cosine", checkpoint_every=2, keep=2)
    monkeypatch.undo()
    save = 4  # steps 2, 3 (epoch end), 4, 6: the oldest checkpoints are pruned from the third save on
    survived = 0
    for event in range(1, counter.per_save[save - 1] + 1):
        run_dir = tmp_path / f"kill{event:03d}"
        code = killed_in_a_fork(save, event, lambda d=run_dir: run(d, "cosine", checkpoint_every=2, keep=2))
        assert code == -signal.SIGKILL, (event, code)
        weights, _, _ = run(run_dir, "cosine", checkpoint_every=2, keep=2)
        assert _same(weights, ref), f"resumed after a kill at event {event} of save {save}: other weights"
        assert not list((run_dir / "checkpoints").glob(".tmp_step_*"))
        survived += 1
    print(f"{survived} kill points of save {save} survived")
    assert survived == counter.per_save[save - 1] >= 10
