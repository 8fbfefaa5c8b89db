"""generate.py split over two SLURM jobs (a job array) on the real one-node cluster gives the
single-process dataset."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from syncxr.dataset_dirs import generate_dataset
from tests.generation.test_pipeline import gen_cfg
from tests.generation.test_workers import ARGS, assert_identical
from tests.launch.helpers import REPO, finish, slurm_job_ids
from tests.launch.test_slurm import on_cluster

pytestmark = pytest.mark.slow


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
