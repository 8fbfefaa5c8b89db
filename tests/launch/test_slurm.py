"""The SLURM launchers against a real one-node cluster: a sweep, a requeued job, a two-task job."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.launch.helpers import finish, job_logs, slurm_job_ids, start_train, stop, tail
from tests.helpers import TINY

pytestmark = pytest.mark.slow
BATCH = int(next(o.split("=")[1] for o in TINY if o.startswith("loader.batch_size=")))


def on_cluster(cluster, cpus: int = 1, mem_gb: int = 2) -> list[str]:
    """Launcher settings the local cluster can satisfy (no GPUs, 2 cores)."""
    return [f"hydra.launcher.partition={cluster.partition}", "hydra.launcher.gpus_per_node=null",
            f"hydra.launcher.cpus_per_task={cpus}", f"hydra.launcher.mem_gb={mem_gb}",
            "hydra.launcher.timeout_min=10"]


def run_dirs(sweep: Path) -> list[Path]:
    return sorted(p.parent.parent for p in sweep.glob("*/.hydra/config.yaml"))


def history_steps(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "history.jsonl").read_text().splitlines()]


def test_sweep_of_two_jobs_runs_as_a_slurm_array(slurm_cluster, cache_dir, tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", "hydra/launcher=slurm", "data=syn,real", *TINY, "trainer.max_steps=2",
            f"hydra.sweep.dir={sweep}", *on_cluster(slurm_cluster)]
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


def wait_for_checkpoint(proc, sweep: Path, after: int, before: int, timeout: float = 180) -> int | None:
    """Waits (bounded) for a complete checkpoint with after < step < before; returns its step."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        for state in sweep.glob("*/checkpoints/step_*/trainer_state.json"):
            try:
                step = json.loads(state.read_text())["global_step"]
            except (OSError, ValueError):  # removed by keep_checkpoints meanwhile
                continue
            if after < step < before:
                return step
        time.sleep(0.1)
    return None


def wait_for_line(path: Path, pattern: str, proc, timeout: float = 180) -> re.Match | None:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        found = re.search(pattern, path.read_text(errors="replace")) if path.is_file() else None
        if found:
            return found
        time.sleep(0.1)
    return None


def test_requeued_job_resumes_from_its_last_checkpoint(slurm_cluster, cache_dir, tmp_path):
    """Interrupted twice: `scontrol requeue` (what a preemption does), then USR2 (SLURM's warning
    before the time limit: submitit calls the launcher's checkpoint() and requeues the job itself).
    Each time the same job restarts in the same output dir and resumes from its newest checkpoint."""
    sweep, steps = tmp_path / "requeue", 100  # long enough to be caught running on a quiet machine
    args = ["-m", "hydra/launcher=slurm", "data=syn", *TINY, "trainer.max_epochs=20", f"trainer.max_steps={steps}",
            "trainer.checkpoint_every=1", f"hydra.sweep.dir={sweep}", *on_cluster(slurm_cluster, cpus=2)]
    proc = start_train(args, cache_dir, tmp_path)

    def fail(what: str):
        out = stop(proc, sweep, slurm=True)
        pytest.fail(f"{what}:\n{tail(out)}\n{job_logs(sweep)}")

    first = wait_for_checkpoint(proc, sweep, after=0, before=steps)
    if first is None:
        fail("no mid-run checkpoint to requeue from")
    (job,) = slurm_job_ids(sweep)
    log = sweep / ".submitit" / job / f"{job}_0_log.out"
    subprocess.run(["scontrol", "requeue", job], check=True, capture_output=True, timeout=30)
    resumed = wait_for_line(log, r"resuming from epoch \d+ step (\d+)", proc)
    if resumed is None:
        fail("the requeued job did not resume (did it finish before the requeue killed it?)")
    second = wait_for_checkpoint(proc, sweep, after=int(resumed[1]), before=steps)
    if second is None:
        fail("no checkpoint after the first resume")
    subprocess.run(["scancel", "--signal=USR2", job], check=True, capture_output=True, timeout=30)
    finish(proc, sweep, timeout=480, slurm=True)

    text = log.read_text()
    assert text.count("Starting with JobEnvironment") == 3, job_logs(sweep)
    assert "Calling checkpoint method" in text and f"Requeued job {job}" in text, job_logs(sweep)
    starts = [int(m) for m in re.findall(r"resuming from epoch \d+ step (\d+)", text)]
    assert len(starts) == 2 and first <= starts[0] < second <= starts[1] < steps, (first, second, starts)
    (run,) = run_dirs(sweep)
    assert json.loads((run / "metrics.json").read_text())["train/steps"] == steps
    # Steps redone after a restart replaced those logged after its checkpoint: each step once.
    assert history_steps(run) == list(range(1, steps + 1))
    assert (pd.read_csv(sweep / "results.csv")["status"] == "ok").all()


def test_two_tasks_of_one_job_train_as_one_process_group(slurm_cluster, cache_dir, tmp_path):
    """slurm_multigpu on CPUs: two tasks, joined by syncxr.launch.distributed (gloo instead of NCCL)."""
    sweep, steps = tmp_path / "multi", 3
    args = ["-m", "hydra/launcher=slurm_multigpu", "data=syn", *TINY, f"trainer.max_steps={steps}",
            f"hydra.sweep.dir={sweep}", *on_cluster(slurm_cluster, mem_gb=4), "hydra.launcher.tasks_per_node=2"]
    finish(start_train(args, cache_dir, tmp_path), sweep, timeout=240, slurm=True)

    (job,) = slurm_job_ids(sweep)
    for rank in (0, 1):
        log = (sweep / ".submitit" / job / f"{job}_{rank}_log.out").read_text()
        assert f"task {rank} of 2 (local rank {rank})" in log, job_logs(sweep)
    (run,) = run_dirs(sweep)
    metrics = json.loads((run / "metrics.json").read_text())
    # Two processes share each epoch: it has half as many steps as one process's.
    per_epoch = metrics["data/train_rows"] // (BATCH * 2)
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == list(range(1, steps + 1))
    assert [h["epoch"] for h in history] == [(s - 1) // per_epoch for s in range(1, steps + 1)]
