"""Writes that survive a kill or a power cut: temp file, fsync, rename, fsync of the directory.

A file written through `atomic_path` is either the old one or the whole new one, also after a
crash of the machine (the rename is a commit point only once the data and the directory entry
have reached the disk). `StagingDir` claims a temporary directory with a lock that the operating
system drops when its process dies, so a later run can tell an abandoned one (removed) from one
that another live process is still writing (left alone).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def fsync_file(path: str | os.PathLike) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str | os.PathLike) -> None:
    """Makes the entries of `path` (a rename, a new file) durable; a no-op where directories
    cannot be synced (some network file systems refuse it)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def fsync_tree(root: str | os.PathLike) -> None:
    """Every file under `root`, then every directory (deepest first), made durable."""
    dirs = []
    for d, _, files in os.walk(root):
        dirs.append(d)
        for f in files:
            fsync_file(os.path.join(d, f))
    for d in reversed(dirs):
        fsync_dir(d)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path beside `path` to write to; on success it replaces `path` durably,
    on failure it is removed and `path` is left as it was."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(path: str | os.PathLike, obj) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=str))


def write_parquet_atomic(path: str | os.PathLike, df) -> None:
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)


def save_figure_atomic(fig, path: str | os.PathLike, **kwargs) -> None:
    """`fig.savefig(path)` through a temp file (the format comes from `path`'s suffix)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or None, **kwargs)


def replace_dir(src: Path, dst: Path) -> bool:
    """Moves the finished directory `src` to `dst` durably. Returns False (and removes `src`) when
    another process put an equal `dst` in place first (`dst` non-empty)."""
    fsync_tree(src)
    try:
        os.rename(src, dst)
    except OSError as e:
        if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
        shutil.rmtree(src, ignore_errors=True)
        return False
    fsync_dir(dst.parent)
    return True


def link_file(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """`src` also at `dst`: a hard link (no second copy), or a copy where the file system refuses hard
    links, e.g. across devices. Never a symbolic link: it would lead out of `dst`'s dataset, and
    readers refuse those (`syncxr.data.confined_paths`)."""
    src, dst = Path(src), Path(dst)
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


# --------------------------------------------------------------------------- staging directories
def try_flock(lock_path: Path) -> int | None:
    """An fd holding an exclusive flock on `lock_path` (created if needed), or None if another
    open file holds it. flock locks belong to the open file, so the kernel drops them when the
    holder dies, however it dies."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return None
        raise
    return fd


class StagingDir:
    """A temporary directory held by this process until `release()` (or its death)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self._fd: int | None = None

    def create(self) -> Path:
        fd = try_flock(self.lock_path)  # locked before the directory exists: never seen unlocked
        if fd is None:
            raise FileExistsError(f"{self.path}: staging directory already held by another process")
        self._fd = fd
        self.path.mkdir(parents=True)
        return self.path

    def release(self, remove: bool = False) -> None:
        if remove:
            shutil.rmtree(self.path, ignore_errors=True)
        if self._fd is not None:
            self.lock_path.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None


def remove_abandoned(parent: str | os.PathLike, pattern: str) -> list[Path]:
    """Removes the directories under `parent` matching `pattern` whose owner is gone (their lock is
    free); returns them. Directories another live process holds are left alone."""
    parent = Path(parent)
    removed = []
    if not parent.is_dir():
        return removed
    dirs = [d for d in parent.glob(pattern) if d.is_dir()]
    # A lock without its directory: the owner died between taking the lock and creating it.
    orphans = [p.with_name(p.name[: -len(".lock")]) for p in parent.glob(pattern + ".lock")]
    for d in sorted(set(dirs) | {o for o in orphans if not o.exists()}):
        lock_path = d.with_name(d.name + ".lock")
        fd = try_flock(lock_path)
        if fd is None:
            continue
        try:
            if d.is_dir():
                shutil.rmtree(d, ignore_errors=True)
                removed.append(d)
        finally:
            lock_path.unlink(missing_ok=True)
            os.close(fd)
    return removed
