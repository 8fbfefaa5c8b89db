"""Paths named by data files (manifest rows, benchmark split files, MIMIC-CXR ids) kept inside the
directory the data belongs to: the one check every reader uses.

A path leaves its root when it is absolute, climbs out through "..", or lands outside the root once
every symbolic link on the way is followed (`os.path.realpath`): a symlink planted in a dataset or
benchmark must not read a file the data's owner never meant to hand over. A root whose subtrees
are legitimately symlinked elsewhere is read with the reader's `allow_external_*` option, which
turns the check off.
"""

from __future__ import annotations

import os
from pathlib import Path


class OutsideRootError(ValueError):
    """A path named by data that leaves its root; the message says where it leads."""


def _inside(path: str, root: str) -> bool:
    return path != root and os.path.commonpath([path, root]) == root


class RootConfinement:
    """Paths under `root`, checked unless `allow_external`. The root's real path is taken once, so
    checking many rows costs one `realpath` each."""

    def __init__(self, root: str | os.PathLike, allow_external: bool = False, what: str = "directory"):
        self.root, self.what = Path(root), what  # `what` names the root in messages
        self.allow_external = bool(allow_external)
        self._abs_root = os.path.abspath(self.root)
        self._real_root = os.path.realpath(self.root)

    def path(self, name: str | os.PathLike) -> Path:
        """`root / name` (an absolute `name` stays as it is), or OutsideRootError if it leaves the root."""
        full = self.root / name
        self.check(full, shown=name)
        return full

    def check(self, path: str | os.PathLike, shown: str | os.PathLike | None = None) -> None:
        """Raises OutsideRootError if `path` (joined to the root already) leads outside it; the message
        names it as `shown` (e.g. as the data file wrote it) where given."""
        if self.allow_external:
            return
        name = os.fspath(path if shown is None else shown)
        lexical = os.path.abspath(path)  # normalised: ".." resolved as written
        if not _inside(lexical, self._abs_root):
            raise OutsideRootError(f"{name!r} is outside the {self.what} {self.root}")
        real = os.path.realpath(path)  # what opening `path` reads: links followed before ".."
        if not _inside(real, self._real_root):
            raise OutsideRootError(
                f"{name!r} is a symbolic link (or lies under one) to {real}, outside the {self.what} {self.root}"
            )
