"""A training run's directory: one live writer at a time, resumed only by the config that wrote its
checkpoints, and set aside whole (never deleted) when `trainer.resume=false` starts over in it."""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ..data.durable import fsync_dir, write_text_atomic
from ..data.run_lock import WRITER_LOCK, RunDirInUse, RunDirLock
from .checkpoint import RUN_CONFIG, checkpoint_dirs

# Keys that may change between a run and its resumption: they do not change what is trained.
RESUMABLE_CHANGES = (
    "trainer.resume",
    "trainer.log_every",
    "trainer.checkpoint_every",
    "trainer.keep_checkpoints",
    "logger",
    "paths",
    "evaluation",
    "task",
    "benchmark",
    "dry_run",
    "loader.num_workers",
)
PREVIOUS = "previous-"  # <run dir>/previous-<time>/: a run that trainer.resume=false started over from
STARTED_OVER = "started_over.json"  # which SLURM job last started over here (its requeues resume)


@contextmanager
def claimed_run_dir(out_dir: Path, accelerator):
    """Holds `out_dir`'s writer lock for the block. Only the main process takes it (the ranks of one
    job share the directory); every process learns whether it got it, so all of them fail together
    when another live job writes there, rather than the others waiting on a main process that left."""
    lock = RunDirLock(out_dir)
    refused = None
    if accelerator.is_main_process:
        try:
            lock.acquire()
        except RunDirInUse as e:
            refused = str(e)
    if accelerator.num_processes > 1:
        from accelerate.utils import broadcast_object_list  # noqa: PLC0415

        refused = broadcast_object_list([refused])[0]
    if refused:
        raise RunDirInUse(refused)
    try:
        yield
    finally:
        lock.release()


def set_aside_previous_run(out_dir: Path) -> Path | None:
    """Moves everything an earlier run wrote in `out_dir` into `out_dir/previous-<time>/` and returns
    that directory (None when there was nothing). Inside the run dir, not beside it: a sibling would
    count as one more job of the sweep (results.jobs.find_jobs reads every `<sweep>/*/.hydra`), and
    the old run stays with the command that made it. Hydra's `.hydra/` and log (this launch's) and
    the writer lock stay. The checkpoints move last: after a kill half-way they are still where a
    re-run finds them, each with its own config (a re-run of another config is refused, not resumed)."""
    keep = {".hydra", WRITER_LOCK}
    old = [
        p
        for p in out_dir.iterdir()
        if p.name not in keep and not p.name.startswith(PREVIOUS) and not (p.is_file() and p.suffix == ".log")
    ]
    if not old:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target, n = out_dir / f"{PREVIOUS}{stamp}", 1
    while True:
        try:
            target.mkdir()
            break
        except FileExistsError:
            n += 1
            target = out_dir / f"{PREVIOUS}{stamp}-{n}"
    for p in sorted(old, key=lambda p: p.name == "checkpoints"):
        os.rename(p, target / p.name)
    fsync_dir(target)
    fsync_dir(out_dir)
    return target


def is_requeue_of_start_over(out_dir: Path) -> bool:
    """True when this process is a SLURM requeue (SLURM_RESTART_COUNT > 0) of the very job that
    started over in `out_dir`: its trainer.resume=false was carried out when the job first ran, and
    doing it again would set aside the job's own progress, so a requeue resumes instead."""
    job, restarts = os.environ.get("SLURM_JOB_ID"), os.environ.get("SLURM_RESTART_COUNT", "0")
    if not job or not restarts.isdigit() or int(restarts) == 0:
        return False
    try:
        return json.loads((out_dir / STARTED_OVER).read_text()).get("slurm_job_id") == job
    except (OSError, ValueError, AttributeError):
        return False


def note_start_over(out_dir: Path) -> None:
    """Records which SLURM job (if any) started over in `out_dir` (see is_requeue_of_start_over)."""
    write_text_atomic(out_dir / STARTED_OVER, json.dumps({"slurm_job_id": os.environ.get("SLURM_JOB_ID")}))


def check_same_run(out_dir: Path, cfg: DictConfig) -> None:
    """Refuses to resume, in `out_dir`, checkpoints that another config wrote (naming the keys). Each
    checkpoint is checked against the config stored in it; checkpoints of an older syncxr, which
    stored none, against the run's resolved_config.yaml."""
    new = OmegaConf.to_container(cfg, resolve=True)
    new_as_json = json.loads(json.dumps(new, default=str))  # as save_checkpoint stored it (str keys)
    legacy = out_dir / "resolved_config.yaml"
    for ckpt in checkpoint_dirs(out_dir / "checkpoints"):
        source = ckpt / RUN_CONFIG
        if source.is_file():
            try:
                old = json.loads(source.read_text())
            except (OSError, ValueError) as e:
                raise ValueError(
                    f"{source}: cannot be read ({type(e).__name__}: {e}); the config of its "
                    "checkpoint is unknown: trainer.resume=false starts over"
                ) from e
        elif legacy.is_file():
            source, old = legacy, OmegaConf.to_container(OmegaConf.load(legacy), resolve=True)
        else:
            continue
        differ = [
            k
            for k in config_diff(old, new_as_json if source.suffix == ".json" else new)
            if not k.startswith(RESUMABLE_CHANGES)
        ]
        if differ:
            raise ValueError(
                f"{out_dir} holds checkpoints of another config ({', '.join(differ[:8])}"
                f"{' ...' if len(differ) > 8 else ''} differ from {source}): give this run its own "
                f"output dir, or trainer.resume=false to start over there (the old run is moved "
                f"into {out_dir}/{PREVIOUS}<time>/)"
            )


def config_diff(a, b, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two plain configs."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b), key=str) for d in config_diff(a.get(k), b.get(k), f"{prefix}{k}.")]
    return [] if a == b else [prefix.rstrip(".")]
