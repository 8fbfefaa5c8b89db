"""Training in two processes of one submitit job (the local executor; gloo on the CPU), as
hydra/launcher=slurm_multigpu runs one task per GPU: one process at batch 2b's training, replicas
in step, evaluation and files once, exact resume after a kill."""

from __future__ import annotations

import json
import re

import pytest

from syncxr.train.checkpoint import checkpoint_dirs
from tests.launch.helpers import (
    MULTI_STEPS,
    assert_like_one_process,
    finish,
    history,
    job_logs,
    parameter_digests,
    rank_logs,
    run_dirs,
    start_train,
    stop,
    tail,
    two_tasks_local,
    wait_for_checkpoint,
)

pytestmark = pytest.mark.slow


def test_two_processes_at_batch_b_train_like_one_at_2b(two_processes_b, one_process_2b):
    (run,) = run_dirs(two_processes_b)
    logs = rank_logs(two_processes_b)
    assert sorted(logs) == [0, 1] and "task 1 of 2 (local rank 1)" in logs[1], job_logs(two_processes_b)
    assert_like_one_process(run, one_process_2b)
    # DDP kept the replicas in step: both processes ended with the same weights.
    digests = parameter_digests(logs)
    assert sorted(digests) == [0, 1] and digests[0] == digests[1], digests
    # Evaluation and the run's files once, by process 0: every step logged once, one evaluation.
    assert [h["step"] for h in history(run)] == list(range(1, MULTI_STEPS + 1))
    assert "evaluation suite (zeroshot_cls) on process 0 of 2" in logs[0]
    assert "evaluation suite" not in logs[1]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["train/steps"] == MULTI_STEPS and "zeroshot_cls/chexpert/auc" in metrics
    assert (run / "model.safetensors").is_file()


def test_two_processes_killed_resume_exactly(two_processes_b, cache_dir, tmp_path):
    """Killed (both processes and the launcher) after a checkpoint in the second epoch, the same
    command resumes both processes from it, each with its own RNG states; the result is that of the
    uninterrupted two-process run."""
    sweep = tmp_path / "sweep"
    proc = start_train(two_tasks_local(sweep), cache_dir, tmp_path)
    # After step 6: inside the second epoch (5 steps each), where the sampler's epoch must be restored.
    killed_at = wait_for_checkpoint(proc, sweep, after=6, before=MULTI_STEPS, timeout=420)
    out = stop(proc, sweep, slurm=False)
    if killed_at is None:
        pytest.fail(f"no checkpoint inside the run to kill it after:\n{tail(out)}\n{job_logs(sweep)}")
    (run,) = run_dirs(sweep)
    assert not (run / "metrics.json").exists()
    # The main process wrote the checkpoint; each process added its own RNG states (dropout draws
    # from them: a rank that resumed with another's would leave the bit-for-bit history below).
    newest = checkpoint_dirs(run / "checkpoints")[-1]
    assert sorted(p.name for p in newest.glob("rng_*.json")) == ["rng_0.json", "rng_1.json"], newest

    finish(start_train(two_tasks_local(sweep), cache_dir, tmp_path), sweep, timeout=600, slurm=False)
    logs = rank_logs(sweep)  # the second job's
    resumed = re.search(r"resuming from epoch (\d+) step (\d+)", logs[0])
    assert resumed and killed_at <= int(resumed[2]) < MULTI_STEPS, job_logs(sweep)
    (reference,) = run_dirs(two_processes_b)
    assert history(run) == history(reference)  # every step once, each loss bit for bit
    digests = parameter_digests(logs)
    assert digests[0] == digests[1] == parameter_digests(rank_logs(two_processes_b))[0]
    metrics, ref_metrics = (json.loads((r / "metrics.json").read_text()) for r in (run, reference))
    assert metrics == ref_metrics
