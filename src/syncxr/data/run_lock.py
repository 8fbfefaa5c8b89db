"""One live writer per output directory: an flock on `<dir>/.writer.lock`, held for the writer's life.

The kernel drops an flock when its holder dies, however it dies, so the lock file a killed job
leaves behind never blocks anyone: a SLURM requeue or a re-run takes the lock over and resumes. A
second writer while the first is alive fails at once, naming the directory and the holder (pid,
host, SLURM job, as the holder wrote them into the lock file). The file is never removed: a writer
that unlinked it on release could let a waiter lock the old inode while a newcomer locks a new one.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from .durable import try_flock

WRITER_LOCK = ".writer.lock"


class RunDirInUse(RuntimeError):
    """Another live process writes the directory."""


class RunDirLock:
    """`with RunDirLock(run_dir):` holds the directory's writer lock (or raises RunDirInUse)."""

    def __init__(self, run_dir: str | os.PathLike):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / WRITER_LOCK
        self._fd: int | None = None

    def acquire(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = try_flock(self.path)
        if fd is None:
            raise RunDirInUse(
                f"{self.run_dir} is being written by another live process ({self.holder()}); "
                "wait for it to end or give this run another output dir"
            )
        self._fd = fd
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%d %H:%M:%S"),
            "slurm_job": os.environ.get("SLURM_JOB_ID"),
        }
        os.ftruncate(fd, 0)  # a dead holder's note goes
        os.pwrite(fd, json.dumps(info).encode(), 0)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # drops the flock; the file stays (see the module doc)
            self._fd = None

    def holder(self) -> str:
        """Who holds the lock, as its holder noted it (unknown while it is writing the note)."""
        try:
            info = json.loads(self.path.read_text())
        except (OSError, ValueError):
            info = None
        if not isinstance(info, dict):
            return "holder unknown"
        job = f", SLURM job {info['slurm_job']}" if info.get("slurm_job") else ""
        return f"pid {info.get('pid')} on {info.get('host')}{job}, since {info.get('since')}"

    def __enter__(self) -> RunDirLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
