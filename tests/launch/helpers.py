"""Running train.py sweeps from tests with every wait bounded."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import TINY

REPO = Path(__file__).resolve().parents[2]


def start_train(args: list[str], cache_dir: Path, out_root: Path) -> subprocess.Popen:
    """train.py in its own process group (so a timed-out sweep and its local jobs can be killed).
    Jobs see this environment: submitit's local executor copies it, sbatch exports it."""
    env = {
        **os.environ,
        "SYNCXR_CACHE": str(cache_dir),
        "SYNCXR_OUTPUTS": str(out_root),
        "WANDB_MODE": "disabled",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    return subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), *args],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


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
        stamps = {
            kind: datetime.strptime(t, "%Y-%m-%d %H:%M:%S,%f")
            for t, kind in _STAMP.findall(p.read_text(errors="replace"))
        }
        if len(stamps) == 2:
            spans.append((stamps["Starting with"], stamps["Exiting after"]))
    return sorted(spans)


def run_dirs(sweep: Path) -> list[Path]:
    return sorted(p.parent.parent for p in sweep.glob("*/.hydra/config.yaml"))


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


# A TINY ConVIRT run (5 steps an epoch at 16 pairs a step) long enough to be caught running: 80
# steps, a checkpoint after each (at 40, a requeue sent after step 7 once landed after the last step).
# `per_process(b)`: that run at b pairs per process and step.
MULTI = [o for o in TINY if not o.startswith(("loader.batch_size=", "trainer.max_epochs="))] + [
    "trainer.max_epochs=16",
    "trainer.max_steps=80",
    "trainer.checkpoint_every=1",
    "trainer.keep_checkpoints=3",
]
MULTI_STEPS = 80
# Two processes at batch b against one at 2b on the CPU: the same initial weights, batches, crops
# and negatives, but each process normalises its batch norm over its own b images (torch's
# SyncBatchNorm is GPU-only) and draws its own dropout masks. That moves single steps' losses by up
# to ~0.2 (measured: max 0.19, mean 0.06 over 15 steps); local negatives alone move them by ~0.6.
LOSS_TOL_MAX, LOSS_TOL_MEAN = 0.3, 0.12


def per_process(batch: int) -> list[str]:
    return [*MULTI, f"loader.batch_size={batch}"]


def two_tasks_local(sweep: Path, checkpoints: bool = True) -> list[str]:
    """train.py arguments: MULTI at 8 pairs a step in each of two processes of one submitit job
    (`checkpoints=False`: none inside the run, which changes nothing but the time it takes)."""
    return [
        "-m",
        "hydra/launcher=submitit_small",
        "hydra.launcher.tasks_per_node=2",
        "data=syn",
        *per_process(8),
        f"hydra.sweep.dir={sweep}",
        *([] if checkpoints else ["trainer.checkpoint_every=0"]),
    ]


def history(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]


def rank_logs(sweep: Path, job: str | None = None) -> dict[int, str]:
    """The log of each task of a job (the newest job of the sweep unless named)."""
    jobs = sorted(
        (p for p in (sweep / ".submitit").iterdir() if p.is_dir() and p.name.split("_")[0].isdigit()),
        key=lambda p: p.stat().st_mtime,
    )
    folder = sweep / ".submitit" / job if job else jobs[-1]
    return {int(p.name.split("_")[-2]): p.read_text(errors="replace") for p in folder.glob("*_log.out")}


def parameter_digests(logs: dict[int, str]) -> dict[int, str]:
    """The digest of the trained weights each process logged (syncxr.train.training_job)."""
    out = {}
    for text in logs.values():
        for rank, digest in re.findall(r"process (\d+) of \d+: parameter digest ([0-9a-f]{64})", text):
            out[int(rank)] = digest
    return out


def assert_like_one_process(run: Path, reference: Path) -> None:
    """`run` (two processes at batch b) followed the loss curve of `reference` (one at 2b)."""
    two, one = history(run), history(reference)
    assert [(h["step"], h["epoch"]) for h in two] == [(h["step"], h["epoch"]) for h in one]
    diffs = np.abs([a["loss"] - b["loss"] for a, b in zip(two, one)])
    assert diffs.max() <= LOSS_TOL_MAX and diffs.mean() <= LOSS_TOL_MEAN, diffs.round(3).tolist()
