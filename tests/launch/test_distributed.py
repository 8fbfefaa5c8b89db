"""export_distributed_env: the torch.distributed variables of a task in a multi-task submitit job."""

from __future__ import annotations

import os

import pytest

from syncxr.launch.distributed import export_distributed_env

DIST = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture
def env(monkeypatch):
    """A clean slate, and the whole environment restored afterwards (the export writes os.environ)."""
    for k in [k for k in os.environ if k.startswith(("SLURM_", "SUBMITIT_", "CUDA_VISIBLE"))]:
        monkeypatch.delenv(k)
    for k in (*DIST, "CUDA_VISIBLE_DEVICES"):
        # setenv then delenv: monkeypatch records the prior state, so whatever the export writes
        # into os.environ is undone, and no later test (or subprocess) inherits RANK/WORLD_SIZE.
        monkeypatch.setenv(k, "")
        monkeypatch.delenv(k)
    yield monkeypatch


def slurm_task(env, rank: int, ntasks: int, nodes: str = "gpu[07-08]", num_nodes: int = 2):
    env.setenv("SUBMITIT_EXECUTOR", "slurm")
    env.setenv("SLURM_JOB_ID", "4242")
    env.setenv("SLURM_NTASKS", str(ntasks))
    env.setenv("SLURM_JOB_NUM_NODES", str(num_nodes))
    env.setenv("SLURM_NODEID", str(rank * num_nodes // ntasks))
    env.setenv("SLURM_PROCID", str(rank))
    env.setenv("SLURM_LOCALID", str(rank % (ntasks // num_nodes)))
    env.setenv("SLURM_JOB_NODELIST", nodes)


def test_no_op_outside_submitit(env):
    env.setenv("SLURM_JOB_ID", "1")  # a plain SLURM allocation (salloc, sbatch without submitit)
    assert export_distributed_env() is None
    assert not any(k in os.environ for k in DIST)


def test_no_op_in_a_one_task_job(env):
    slurm_task(env, rank=0, ntasks=1, nodes="gpu07", num_nodes=1)
    assert export_distributed_env() is None
    assert "RANK" not in os.environ


def test_task_of_a_two_node_job_gets_its_rank_and_the_first_node_as_master(env):
    slurm_task(env, rank=5, ntasks=8)
    env.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    exported = export_distributed_env()
    assert exported == {k: os.environ[k] for k in DIST}
    assert (os.environ["RANK"], os.environ["WORLD_SIZE"]) == ("5", "8")
    assert (os.environ["LOCAL_RANK"], os.environ["LOCAL_WORLD_SIZE"]) == ("1", "4")
    assert os.environ["MASTER_ADDR"] == "gpu07"
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "4,5,6,7"  # accelerate picks cuda:LOCAL_RANK among these
    port = os.environ["MASTER_PORT"]
    for k in DIST:
        env.delenv(k)
    slurm_task(env, rank=0, ntasks=8)
    export_distributed_env()
    assert os.environ["MASTER_PORT"] == port  # every task of the job agrees on the port


def test_variables_inherited_from_the_submitting_shell_are_replaced(env):
    slurm_task(env, rank=1, ntasks=2, nodes="gpu07", num_nodes=1)
    env.setenv("RANK", "0")
    env.setenv("WORLD_SIZE", "4")
    env.setenv("MASTER_ADDR", "elsewhere")
    export_distributed_env()
    assert (os.environ["RANK"], os.environ["WORLD_SIZE"], os.environ["MASTER_ADDR"]) == ("1", "2", "gpu07")


def test_one_task_job_drops_inherited_variables(env):
    slurm_task(env, rank=0, ntasks=1, nodes="gpu07", num_nodes=1)
    env.setenv("RANK", "3")
    env.setenv("WORLD_SIZE", "4")
    assert export_distributed_env() is None
    assert "RANK" not in os.environ and "WORLD_SIZE" not in os.environ


def test_local_executor_tasks(env):
    env.setenv("SUBMITIT_EXECUTOR", "local")
    env.setenv("SUBMITIT_LOCAL_JOB_ID", "999")
    env.setenv("SUBMITIT_LOCAL_NTASKS", "2")
    env.setenv("SUBMITIT_LOCAL_GLOBALID", "1")
    env.setenv("SUBMITIT_LOCAL_LOCALID", "1")
    env.setenv("SUBMITIT_LOCAL_NODEID", "0")
    env.setenv("SUBMITIT_LOCAL_JOB_NUM_NODES", "1")
    export_distributed_env()
    assert (os.environ["RANK"], os.environ["WORLD_SIZE"], os.environ["LOCAL_RANK"]) == ("1", "2", "1")
