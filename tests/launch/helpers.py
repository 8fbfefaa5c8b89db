"""Running train.py sweeps from tests with every wait bounded."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def start_train(args: list[str], cache_dir: Path, out_root: Path) -> subprocess.Popen:
    """train.py in its own process group (so a timed-out sweep and its local jobs can be killed).
    Jobs see this environment: submitit's local executor copies it, sbatch exports it."""
    env = {**os.environ, "SYNCXR_CACHE": str(cache_dir), "SYNCXR_OUTPUTS": str(out_root),
           "WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.Popen([sys.executable, str(REPO / "train.py"), *args], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def slurm_job_ids(sweep: Path) -> list[str]:
    """Ids of the SLURM jobs a sweep submitted (submitit's folders are named after them)."""
    names = {p.name.split("_")[0] for p in (sweep / ".submitit").glob("*") if p.is_dir()}
    return sorted(n for n in names if n.isdigit())


def job_logs(sweep: Path, n: int = 25) -> str:
    parts = []
    for p in sorted((sweep / ".submitit").glob("*/*_log.*")):
        lines = [x for x in p.read_text(errors="replace").splitlines() if "sacct" not in x]
        parts.append(f"--- {p.relative_to(sweep)}\n" + "\n".join(lines[-n:]))
    return "\n".join(parts)


def stop(proc: subprocess.Popen, sweep: Path, slurm: bool) -> str:
    """Kills a sweep that ran too long: train.py, its local jobs and its SLURM jobs."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    out, _ = proc.communicate(timeout=30)
    if slurm and slurm_job_ids(sweep):
        subprocess.run(["scancel", *slurm_job_ids(sweep)], capture_output=True, timeout=30)
    return out or ""


def tail(text: str, n: int = 40) -> str:
    return "\n".join([x for x in text.splitlines() if "sacct" not in x][-n:])


def finish(proc: subprocess.Popen, sweep: Path, timeout: float, slurm: bool) -> str:
    """Waits at most `timeout` seconds for the sweep; fails with its output and job logs otherwise."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        out = stop(proc, sweep, slurm)
        pytest.fail(f"sweep still running after {timeout:.0f} s (killed):\n{tail(out)}\n{job_logs(sweep)}")
    if proc.returncode != 0:
        pytest.fail(f"train.py exited {proc.returncode}:\n{tail(out)}\n{job_logs(sweep)}")
    return out


_STAMP = re.compile(r"submitit INFO \((\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+)\) - (Starting with|Exiting after)")


def job_intervals(sweep: Path) -> list[tuple[datetime, datetime]]:
    """(start, end) of every completed job of a sweep, from submitit's log lines."""
    spans = []
    for p in sorted((sweep / ".submitit").glob("*/*_0_log.out")):
        stamps = {kind: datetime.strptime(t, "%Y-%m-%d %H:%M:%S,%f")
                  for t, kind in _STAMP.findall(p.read_text(errors="replace"))}
        if len(stamps) == 2:
            spans.append((stamps["Starting with"], stamps["Exiting after"]))
    return sorted(spans)
