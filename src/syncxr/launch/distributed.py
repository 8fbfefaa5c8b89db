"""Multi-GPU inside one submitit job: one task per GPU, joined into a torch.distributed group.

`hydra/launcher=slurm_multigpu` starts `tasks_per_node` copies of the run in one SLURM job (srun).
`accelerate` forms its process group from the standard variables (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR, MASTER_PORT), which `accelerate launch`/`torchrun` would set; under submitit nobody
does, so `export_distributed_env()` must run in each task before the `Accelerator` is created.
Outside a submitit job it does nothing.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

# What torch.distributed's env:// initialisation (and accelerate) read.
TORCH_DIST_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def in_submitit_job() -> bool:
    """True inside a job started by submitit (its SLURM or local executor)."""
    return bool(os.environ.get("SUBMITIT_EXECUTOR"))


def export_distributed_env() -> dict[str, str] | None:
    """Exports the torch.distributed variables of this task when it is one of several tasks of a
    submitit job; returns what it exported, or None when there was nothing to do.

    Inside a submitit job the task layout comes from SLURM (or submitit's local executor) alone:
    any RANK, WORLD_SIZE, ... already in the environment were inherited from the shell that
    submitted the job (sbatch exports it) and are replaced, or removed in a one-task job, where
    they would make accelerate wait for processes that do not exist.

    CUDA_VISIBLE_DEVICES is left alone: every task sees the job's GPUs and accelerate picks
    `cuda:LOCAL_RANK` (restricting each task to device LOCAL_RANK, submitit's default, selects the
    wrong GPU when SLURM hands the job e.g. devices 2,3 without device cgroups).
    """
    if not in_submitit_job():
        return None
    import submitit  # only inside submitit jobs, where it is installed by definition

    job = submitit.JobEnvironment()
    stale = {k: os.environ[k] for k in (*TORCH_DIST_VARS, "LOCAL_WORLD_SIZE") if k in os.environ}
    if job.num_tasks <= 1:
        if stale:
            log.warning(
                "one-task job %s: ignoring torch.distributed variables inherited from the submitting shell (%s)",
                job.job_id,
                ", ".join(f"{k}={v}" for k, v in stale.items()),
            )
            for k in stale:
                del os.environ[k]
        return None
    # Every task derives the same port from the job id (a requeued job keeps it).
    dist = submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)
    exported = {k: os.environ[k] for k in (*TORCH_DIST_VARS, "LOCAL_WORLD_SIZE")}
    log.info(
        "task %d of %d (local rank %d) of job %s: process group at %s:%d",
        dist.rank,
        dist.world_size,
        dist.local_rank,
        job.job_id,
        dist.master_addr,
        dist.master_port,
    )
    return exported
