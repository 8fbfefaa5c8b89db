"""Kill points inside checkpoint writing: every call of the file-system operations a checkpoint is
made of (fsync, rename/replace, mkdir, unlink, rmtree) while `save_checkpoint` runs is one event.
`KillPoints(save=s, event=e)` SIGKILLs the process just before event e of its s-th save;
`KillPoints()` only counts the events of each save (`per_save`)."""

from __future__ import annotations

import os
import shutil
import signal

OPERATIONS = ((os, "fsync"), (os, "replace"), (os, "rename"), (os, "mkdir"), (os, "unlink"), (shutil, "rmtree"))


class KillPoints:
    def __init__(self, save: int | None = None, event: int | None = None):
        self.save, self.event = save, event
        self.per_save: list[int] = []  # events counted in each save so far
        self._inside = False

    def install(self, patch=setattr) -> KillPoints:
        """Wraps the operations and `syncxr.train.loop.save_checkpoint` (`patch`: setattr, or
        pytest's monkeypatch.setattr so the test undoes it)."""
        from syncxr.train import loop  # noqa: PLC0415

        real_save = loop.save_checkpoint

        def save_checkpoint(*args, **kwargs):
            self.per_save.append(0)
            self._inside = True
            try:
                return real_save(*args, **kwargs)
            finally:
                self._inside = False

        patch(loop, "save_checkpoint", save_checkpoint)
        for module, name in OPERATIONS:
            patch(module, name, self._wrap(getattr(module, name)))
        return self

    def _wrap(self, real):
        def operation(*args, **kwargs):
            if self._inside:
                self.per_save[-1] += 1
                if len(self.per_save) == self.save and self.per_save[-1] == self.event:
                    os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)

        return operation
