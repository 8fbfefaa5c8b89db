"""hydra/launcher=submitit_small: each run in its own process through submitit, one at a time."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import TINY
from tests.launch.helpers import finish, job_intervals, job_logs, start_train

pytestmark = pytest.mark.slow


def alive(pid: int) -> bool:
    """The process runs (a finished child not yet reaped is a zombie: not alive)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def watch_jobs(sweep: Path, stop: threading.Event, seen: list) -> None:
    """Every 20 ms until `stop`: {job pid: has its run begun} of the local jobs alive right then
    (a local job's folder is named by its process id; submitit logs "Starting with" when the run,
    past the slot lock, begins)."""
    while not stop.is_set():
        jobs = {}
        for folder in (sweep / ".submitit").glob("*") if (sweep / ".submitit").is_dir() else ():
            if folder.name.isdigit() and alive(int(folder.name)):
                log = folder / f"{folder.name}_0_log.out"
                jobs[int(folder.name)] = log.is_file() and "Starting with" in log.read_text(errors="replace")
        seen.append(jobs)
        time.sleep(0.02)


def test_sweep_starts_its_jobs_at_once_and_runs_them_one_after_the_other(cache_dir, tmp_path):
    sweep = tmp_path / "sweep"
    args = [
        "-m",
        "hydra/launcher=submitit_small",
        "data=syn,real",
        *TINY,
        "trainer.max_steps=1",
        f"hydra.sweep.dir={sweep}",
    ]
    seen: list[dict[int, bool]] = []
    stop = threading.Event()
    watcher = threading.Thread(target=watch_jobs, args=(sweep, stop, seen), daemon=True)
    watcher.start()
    try:
        finish(start_train(args, cache_dir, tmp_path), sweep, timeout=240, slurm=False)
    finally:
        stop.set()
        watcher.join(timeout=10)

    metrics = [json.loads(p.read_text()) for p in sweep.glob("*/metrics.json")]
    assert len(metrics) == 2 and all(m["train/steps"] == 1 for m in metrics)
    assert (pd.read_csv(sweep / "results.csv")["status"] == "ok").all()
    # Both job processes were alive at once, one running, the other waiting for the slot lock (a
    # launcher that started the second job only after the first ended would never show this) ...
    waiting = [jobs for jobs in seen if len(jobs) == 2 and sorted(jobs.values()) == [False, True]]
    assert waiting, f"never saw both jobs alive, one waiting: {[s for s in seen if s][:20]}"
    # ... and the slot lock kept their runs from overlapping.
    (a_start, a_end), (b_start, b_end) = job_intervals(sweep)
    assert a_end <= b_start, job_logs(sweep)
