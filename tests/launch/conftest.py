"""A real one-node SLURM cluster for the launcher tests, started once per session."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts" / "slurm"
DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "srun", "squeue", "scontrol")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@dataclass
class SlurmCluster:
    dir: Path
    conf: Path  # SLURM_CONF for sbatch/squeue/scontrol and submitit
    partition: str
    start_s: float


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")


def missing_slurm() -> str | None:
    """Why this machine cannot run the cluster, or None when it can."""
    absent = [d for d in DAEMONS if _which(d) is None]
    if absent:
        return f"SLURM/munge not installed ({', '.join(absent)} missing): apt-get install -y slurm-wlm munge"
    if os.geteuid() != 0:
        return "the one-node SLURM cluster runs its daemons as root"
    return None


def _tail(path: Path, n: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


@pytest.fixture(scope="session")
def slurm_cluster():
    """Starts scripts/slurm/start_local_cluster.sh in a fresh directory (fresh state: job ids start
    at 1) and stops exactly that cluster at the end. Skips when SLURM is absent, except in CI."""
    why = missing_slurm()
    if why:
        if IN_CI:
            pytest.fail(f"CI must run the SLURM tests: {why} (.ci/run installs the packages)")
        pytest.skip(why)
    # munged runs as the munge user: the directory's parents must be world-executable (not pytest's tmp).
    base = Path(tempfile.mkdtemp(prefix="syncxr-slurm-", dir="/tmp"))
    base.chmod(0o755)
    env = {
        **os.environ,
        "PATH": os.environ.get("PATH", "") + ":/usr/sbin:/sbin",
        # A requeued job dies ~2.5 s after SIGTERM instead of ~7 s, well before the requeued
        # two-task job (80 steps, a checkpoint each) could finish.
        "SYNCXR_SLURM_KILL_WAIT": "1",
        "SYNCXR_SLURM_PARTITION": "local",
    }
    conf = base / "etc" / "slurm.conf"
    saved = os.environ.get("SLURM_CONF")
    try:
        t0 = time.perf_counter()
        start = subprocess.run(
            ["bash", str(SCRIPTS / "start_local_cluster.sh"), str(base)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        start_s = time.perf_counter() - t0
        if start.returncode != 0:
            logs = "\n".join(f"--- {p.name}\n{_tail(p)}" for p in sorted((base / "log").glob("*.log")))
            pytest.fail(f"start_local_cluster.sh failed ({start.returncode}):\n{start.stdout}{start.stderr}\n{logs}")
        os.environ["SLURM_CONF"] = str(conf)
        yield SlurmCluster(dir=base, conf=conf, partition="local", start_s=start_s)
    finally:
        subprocess.run(
            ["bash", str(SCRIPTS / "stop_local_cluster.sh"), str(base)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if saved is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = saved
        if not os.environ.get("SYNCXR_KEEP_SLURM"):  # set it to keep config, state and logs for a look
            shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def one_process_2b(cache_dir, tmp_path_factory) -> Path:
    """The MULTI run in this process at 16 pairs a step: what two processes at 8 must match.
    Built once per session, though two files (on two xdist workers) use it."""
    from syncxr.train.training_job import run_training  # noqa: PLC0415
    from tests.conftest import built_once  # noqa: PLC0415
    from tests.helpers import compose_train  # noqa: PLC0415
    from tests.launch.helpers import per_process  # noqa: PLC0415

    return built_once(
        tmp_path_factory,
        "one_process_2b",
        lambda out: run_training(compose_train([*per_process(16), "trainer.checkpoint_every=0"]), out),
    )


@pytest.fixture(scope="session")
def two_processes_b(cache_dir, tmp_path_factory) -> Path:
    """The sweep dir of the MULTI run in two processes of one submitit job (local executor), 8 pairs
    a step each, uninterrupted: what resumed and requeued two-process runs must reproduce.
    Built once per session, though two files (on two xdist workers) use it."""
    from tests.conftest import built_once  # noqa: PLC0415
    from tests.launch.helpers import finish, start_train, two_tasks_local  # noqa: PLC0415

    def build(root: Path) -> None:
        sweep = root / "sweep"
        proc = start_train(two_tasks_local(sweep, checkpoints=False), cache_dir, root)
        finish(proc, sweep, timeout=600, slurm=False)

    return built_once(tmp_path_factory, "two_processes_b", build) / "sweep"
