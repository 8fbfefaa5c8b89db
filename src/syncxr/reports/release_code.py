"""Backends whose public release is a research codebase rather than a library: they run the release's
own package, imported where the user installed it (or from a clone named by the preset's `code_dir`),
and refuse with one message naming the package, the preset key and how to install it when it is
missing. Nothing is downloaded here."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType


class MissingReleaseError(ValueError):
    """A backend's public release (its own package, or its weights) is not where the preset says.
    A ValueError, so that `syncxr.config.build` prefixes it with the config key of the preset."""


def import_release(module: str, *, backend: str, code_dir: str | None, install: str) -> ModuleType:
    """`module` of a release, with `code_dir` (a clone of it) first on sys.path when given."""
    if code_dir is not None:
        root = Path(code_dir).expanduser()
        if not root.is_dir():
            raise MissingReleaseError(f"{backend}: code_dir={code_dir} is not a directory ({install})")
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
    try:
        return importlib.import_module(module)
    except ImportError as e:
        where = f" in code_dir={code_dir} nor" if code_dir is not None else ""
        raise MissingReleaseError(
            f"{backend} runs its public release's own package `{module}`, which is not importable{where} "
            f"on sys.path ({e}). {install}"
        ) from e


def require_weights(path: str | None, *, backend: str, key: str, hint: str) -> str:
    """`path` (a local directory/file or a hub id), or a refusal naming the key that must give it."""
    if path is None or not str(path).strip():
        raise MissingReleaseError(f"{backend} needs its weights: set {key}=<local path or hub id> ({hint})")
    return str(path)
