"""hydra/launcher=submitit_small: each run in its own process through submitit, one at a time."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.launch.helpers import finish, job_intervals, job_logs, start_train
from tests.helpers import TINY

pytestmark = pytest.mark.slow


def test_sweep_runs_its_jobs_one_after_the_other(cache_dir, tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", "hydra/launcher=submitit_small", "data=syn,real", *TINY, "trainer.max_steps=1",
            f"hydra.sweep.dir={sweep}"]
    finish(start_train(args, cache_dir, tmp_path), sweep, timeout=240, slurm=False)

    metrics = [json.loads(p.read_text()) for p in sweep.glob("*/metrics.json")]
    assert len(metrics) == 2 and all(m["train/steps"] == 1 for m in metrics)
    assert (pd.read_csv(sweep / "results.csv")["status"] == "ok").all()
    # Both processes were started at once; the slot lock kept their runs from overlapping.
    (a_start, a_end), (b_start, b_end) = job_intervals(sweep)
    assert a_end <= b_start, job_logs(sweep)
