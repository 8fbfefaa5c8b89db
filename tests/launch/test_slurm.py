"""The SLURM launchers against a real one-node cluster: a sweep, a two-task job requeued twice, and
generate.py split over two SLURM jobs (a job array), which gives the single-process dataset.
All tests of `slurm_cluster` live here: xdist runs a file on one worker, which starts it once."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from syncxr.dataset_dirs import generate_dataset
from tests.generation.test_pipeline import gen_cfg
from tests.generation.test_workers import ARGS, assert_identical
from tests.helpers import TINY
from tests.launch.helpers import (
    MULTI_STEPS,
    REPO,
    assert_like_one_process,
    finish,
    history,
    job_logs,
    parameter_digests,
    per_process,
    rank_logs,
    run_dirs,
    slurm_job_ids,
    start_train,
    stop,
    tail,
    wait_for_checkpoint,
    wait_for_line,
)

pytestmark = pytest.mark.slow


def on_cluster(cluster, cpus: int = 1, mem_gb: int = 2) -> list[str]:
    """Launcher settings the local cluster can satisfy (no GPUs, 2 cores)."""
    return [
        f"hydra.launcher.partition={cluster.partition}",
        "hydra.launcher.gpus_per_node=null",
        f"hydra.launcher.cpus_per_task={cpus}",
        f"hydra.launcher.mem_gb={mem_gb}",
        "hydra.launcher.timeout_min=10",
    ]


def test_sweep_of_two_jobs_runs_as_a_slurm_array(slurm_cluster, cache_dir, tmp_path):
    sweep = tmp_path / "sweep"
    args = [
        "-m",
        "hydra/launcher=slurm",
        "data=syn,real",
        *TINY,
        "trainer.max_steps=2",
        f"hydra.sweep.dir={sweep}",
        *on_cluster(slurm_cluster),
    ]
    finish(start_train(args, cache_dir, tmp_path), sweep, timeout=240, slurm=True)

    runs = run_dirs(sweep)
    assert len(runs) == 2, [p.name for p in runs]
    for run in runs:
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["train/steps"] == 2 and "zeroshot_cls/chexpert/auc" in metrics
        # The jobs saw the submitting process's environment (SYNCXR_CACHE, SYNCXR_OUTPUTS).
        paths = yaml.safe_load((run / "resolved_config.yaml").read_text())["paths"]
        assert paths == {"cache_dir": str(cache_dir), "output_root": str(tmp_path)}
    results = pd.read_csv(sweep / "results.csv")
    assert sorted(results["data"]) == ["real", "syn"] and (results["status"] == "ok").all()
    # Both ran as tasks of one SLURM job array, submitted with the preset's settings.
    (job,) = slurm_job_ids(sweep)
    script = (sweep / ".submitit" / job / f"{job}_submission.sh").read_text()
    for flag in (f"--partition={slurm_cluster.partition}", "--array=0-1", "--requeue", "--signal=USR2@120"):
        assert flag in script, script
    for task in ("0", "1"):
        log = (sweep / ".submitit" / f"{job}_{task}" / f"{job}_{task}_0_log.out").read_text()
        assert f"JobEnvironment(job_id={job}_{task}" in log


def test_two_tasks_of_one_job_requeued_twice_train_as_one_process_at_twice_the_batch(
    slurm_cluster, cache_dir, tmp_path, two_processes_b, one_process_2b
):
    """slurm_multigpu on CPUs: two tasks at batch 8, joined by syncxr.launch.distributed (gloo instead
    of NCCL), interrupted twice: `scontrol requeue` (what a preemption does), then USR2 (SLURM's
    warning before the time limit: submitit calls the launcher's checkpoint() on the main task and
    requeues the job itself). Each time the same job restarts in the same output dir and both tasks
    resume from its newest checkpoint; the result is that of two processes at batch 8 run without
    interruption, and follows one process at batch 16."""
    sweep = tmp_path / "multi"
    args = [
        "-m",
        "hydra/launcher=slurm_multigpu",
        "data=syn",
        *per_process(8),
        f"hydra.sweep.dir={sweep}",
        *on_cluster(slurm_cluster, mem_gb=4),
        "hydra.launcher.tasks_per_node=2",
    ]
    proc = start_train(args, cache_dir, tmp_path)

    def fail(what: str):
        out = stop(proc, sweep, slurm=True)
        pytest.fail(f"{what}:\n{tail(out)}\n{job_logs(sweep)}")

    first = wait_for_checkpoint(proc, sweep, after=6, before=MULTI_STEPS)  # in the second epoch or later
    if first is None:
        fail("no mid-run checkpoint to requeue from")
    (job,) = slurm_job_ids(sweep)
    log = sweep / ".submitit" / job / f"{job}_0_log.out"  # the main task's
    subprocess.run(["scontrol", "requeue", job], check=True, capture_output=True, timeout=30)
    resumed = wait_for_line(log, r"resuming from epoch \d+ step (\d+)", proc)
    if resumed is None:
        fail("the requeued job did not resume (did it finish before the requeue killed it?)")
    second = wait_for_checkpoint(proc, sweep, after=int(resumed[1]), before=MULTI_STEPS)
    if second is None:
        fail("no checkpoint after the first resume")
    subprocess.run(["scancel", "--signal=USR2", job], check=True, capture_output=True, timeout=30)
    finish(proc, sweep, timeout=480, slurm=True)

    logs = rank_logs(sweep, job)
    assert logs[0].count("Starting with JobEnvironment") == 3, job_logs(sweep)
    assert "Calling checkpoint method" in logs[0] and f"Requeued job {job}" in logs[0], job_logs(sweep)
    for rank in (0, 1):  # both tasks ran in each of the three starts
        assert logs[rank].count(f"task {rank} of 2 (local rank {rank})") == 3, job_logs(sweep)
    starts = [int(m) for m in re.findall(r"resuming from epoch \d+ step (\d+)", logs[0])]
    assert len(starts) == 2 and first <= starts[0] < second <= starts[1] < MULTI_STEPS, (first, second, starts)
    (run,) = run_dirs(sweep)
    (reference,) = run_dirs(two_processes_b)
    # Gradients were synchronised (same weights on both tasks) and the requeues lost and repeated
    # nothing: the losses of the uninterrupted two-process run, bit for bit, every step once.
    digests = parameter_digests(logs)
    assert digests[0] == digests[1], digests
    assert history(run) == history(reference)
    assert_like_one_process(run, one_process_2b)
    assert (pd.read_csv(sweep / "results.csv")["status"] == "ok").all()


def test_two_workers_as_a_slurm_job_array(slurm_cluster, cache_dir, tmp_path):
    sweep, out = tmp_path / "sweep", tmp_path / "k2"
    env = {**os.environ, "SYNCXR_CACHE": str(cache_dir), "SYNCXR_OUTPUTS": str(tmp_path), "WANDB_MODE": "disabled"}
    args = [
        "-m",
        "workers=2",
        "hydra/launcher=slurm",
        *ARGS,
        f"output_dir={out}",
        "progress=false",
        f"hydra.sweep.dir={sweep}",
        *on_cluster(slurm_cluster),
    ]
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "generate.py"), *args],
        env=env,
        cwd=REPO,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    finish(proc, sweep, timeout=300, slurm=True)
    (job,) = slurm_job_ids(sweep)  # one array of two tasks
    script = (sweep / ".submitit" / job / f"{job}_submission.sh").read_text()
    assert "--array=0-1" in script and f"--partition={slurm_cluster.partition}" in script, script
    one = generate_dataset(gen_cfg(ARGS), tmp_path / "k1", cache_dir, progress=False)
    assert_identical(out, one)
