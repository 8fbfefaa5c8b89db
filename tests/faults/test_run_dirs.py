"""Output directories: every launch its own sweep dir, one live writer per run dir (a dead writer's
lock taken over), and trainer.resume=false starting over beside the old run, never over it."""

from __future__ import annotations

import json
import os
import pickle
import re
import socket
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import hydra.core.utils
import pytest
from omegaconf import OmegaConf

from syncxr.data.run_lock import WRITER_LOCK, RunDirInUse
from syncxr.train.checkpoint import checkpoint_dirs
from syncxr.train.run_dir import check_same_run
from syncxr.train.training_job import run_training
from tests.helpers import REPO, TINY, compose_config, compose_train

SECOND = re.compile(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d")


def _launch_config(entry: str):
    return compose_config(entry, ["checkpoint=x"] if entry == "evaluate" else [], hydra=True)


class _FrozenClock(datetime):
    """What Hydra's `now` resolver reads: one instant, so that two launches share their second
    however long composing takes on a loaded machine."""

    @classmethod
    def now(cls, tz=None):
        return cls(2026, 1, 2, 3, 4, 5)


@pytest.mark.parametrize("entry", ["train", "generate", "evaluate"])
def test_two_launches_in_one_second_get_their_own_sweep_dirs(entry, monkeypatch):
    monkeypatch.setattr(hydra.core.utils, "datetime", _FrozenClock)
    a, b = _launch_config(entry), _launch_config(entry)
    dir_a, dir_b = str(a.hydra.sweep.dir), str(b.hydra.sweep.dir)
    assert SECOND.search(dir_a)[0] == SECOND.search(dir_b)[0] == "2026-01-02_03-04-05"
    assert dir_a != dir_b
    # One launch keeps its dir wherever it is resolved again: in the launcher, in each job's config
    # (hydra's load_sweep_config copies the root config's resolver cache) and in a submitit job,
    # which unpickles the launcher's config (also a requeued one, on another machine).
    assert str(a.hydra.sweep.dir) == dir_a
    job = _launch_config(entry)
    OmegaConf.copy_cache(from_config=a, to_config=job)
    assert str(job.hydra.sweep.dir) == dir_a
    assert str(pickle.loads(pickle.dumps(a)).hydra.sweep.dir) == dir_a


@pytest.mark.slow
def test_the_jobs_of_a_launch_write_into_its_sweep_dir(tmp_path):
    """A real multirun (two dry-run jobs): the launcher and both jobs resolve one suffix."""
    env = {
        **os.environ,
        "SYNCXR_OUTPUTS": str(tmp_path / "out"),
        "SYNCXR_CACHE": str(tmp_path / "cache"),
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "train.py"),
            "-m",
            "dry_run=true",
            "seed=0,1",
            f"hydra.sweep.dir={tmp_path}/sweep-${{launch_id:}}",
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (sweep,) = tmp_path.glob("sweep-*")
    assert re.fullmatch(r"sweep-[0-9a-f]{6}", sweep.name)
    assert (sweep / "multirun.yaml").is_file()
    assert sorted(p.parent.name for p in sweep.glob("*/cost.json")) == ["dry_run=True,seed=0", "dry_run=True,seed=1"]
    assert json.loads((sweep / "cost_summary.json").read_text())["jobs"] == 2


# Another live writer of the run dir (a second `python train.py` of the same command).
HOLD = """
import sys, time
from syncxr.data.run_lock import RunDirLock
RunDirLock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(600)
"""


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != WRITER_LOCK
    }


def _steps(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "history.jsonl").read_text().splitlines()]


def test_a_second_live_writer_is_refused_and_a_dead_writers_lock_is_taken_over(cache_dir, tmp_path, capsys):
    run = tmp_path / "run"
    cfg = compose_train([*TINY, "trainer.max_steps=2"])
    run_training(cfg, run)
    before = _files(run)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    other = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert other.stdout.readline().strip() == "held"
        holder = rf"pid {other.pid} on {re.escape(socket.gethostname())}"
        with pytest.raises(
            RunDirInUse,
            match=rf"{re.escape(str(run))} is being written by another live process "
            rf"\({holder}",
        ):
            run_training(cfg, run)
        assert _files(run) == before  # the refused writer wrote nothing
    finally:
        other.kill()
        other.wait()
    assert (run / WRITER_LOCK).is_file()  # left behind by the killed writer: it does not block
    capsys.readouterr()
    run_training(cfg, run)
    assert "resuming from epoch 0 step 2" in capsys.readouterr().out
    assert _steps(run) == [1, 2]


def test_starting_over_moves_the_old_run_aside_and_a_rerun_never_resumes_it(cache_dir, tmp_path, capsys):
    run = tmp_path / "run"
    run_training(compose_train([*TINY, "trainer.max_steps=4", "trainer.checkpoint_every=2"]), run)
    old = _files(run)
    assert "checkpoints/step_00000004/model.safetensors" in old
    (run / ".hydra").mkdir()  # this launch's hydra files and log stay where hydra writes them
    (run / ".hydra" / "overrides.yaml").write_text("- seed=1\n")
    (run / "train.log").write_text("log of this launch\n")

    # Another config (seed 1, fewer steps) starts over: its checkpoint's step is below the old ones.
    seed1 = [*TINY, "seed=1", "trainer.max_steps=2", "trainer.checkpoint_every=2"]
    run_training(compose_train([*seed1, "trainer.resume=false"]), run)
    (previous,) = run.glob("previous-*")
    assert _files(previous) == old  # nothing of the old run deleted or changed
    assert (run / ".hydra" / "overrides.yaml").is_file() and (run / "train.log").is_file()
    assert [p.name for p in checkpoint_dirs(run / "checkpoints")] == ["step_00000002"]
    started_over = (run / "model.safetensors").read_bytes()

    # The plain re-run of the seed-1 command resumes its own step 2, not the old run's step 4.
    capsys.readouterr()
    run_training(compose_train(seed1), run)
    assert "resuming from epoch 0 step 2" in capsys.readouterr().out
    assert (run / "model.safetensors").read_bytes() == started_over
    assert OmegaConf.load(run / "resolved_config.yaml").seed == 1 and _steps(run) == [1, 2]
    # The seed-0 command is refused there now, by the config stored in the checkpoint.
    with pytest.raises(
        ValueError,
        match=r"another config \(seed, .*trainer.max_steps differ from "
        r".*step_00000002/run_config.json",
    ):
        run_training(compose_train([*TINY, "trainer.max_steps=4", "trainer.checkpoint_every=2"]), run)


def test_the_config_check_reads_the_config_the_checkpoints_were_written_with(cache_dir, tmp_path):
    run = tmp_path / "run"
    run_training(compose_train([*TINY, "trainer.max_steps=2"]), run)  # seed 0
    seed1 = compose_train([*TINY, "trainer.max_steps=2", "seed=1"])
    # resolved_config.yaml says seed 1 (as trainer.resume=false used to leave it over foreign checkpoints).
    (run / "resolved_config.yaml").write_text(OmegaConf.to_yaml(seed1, resolve=True))
    with pytest.raises(ValueError, match=r"another config \(seed, .* differ from .*step_00000002/run_config.json\)"):
        check_same_run(run, seed1)
    check_same_run(run, compose_train([*TINY, "trainer.max_steps=2", "trainer.log_every=5"]))  # resumable change


def test_a_requeue_of_the_job_that_started_over_resumes_it(cache_dir, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    run_training(compose_train([*TINY, "trainer.max_steps=2"]), run)  # an earlier run in the dir
    over = [*TINY, "seed=1", "trainer.max_steps=2", "trainer.resume=false"]
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "0")
    run_training(compose_train(over), run)
    assert len(list(run.glob("previous-*"))) == 1
    # SLURM requeues job 77 (preempted, or past its time): the same command must not set aside the
    # job's own progress again.
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    capsys.readouterr()
    run_training(compose_train(over), run)
    assert "resuming from epoch 0 step 2" in capsys.readouterr().out
    assert len(list(run.glob("previous-*"))) == 1
    # Another job's resume=false starts over, as asked.
    monkeypatch.setenv("SLURM_JOB_ID", "78")
    run_training(compose_train(over), run)
    assert len(list(run.glob("previous-*"))) == 2
