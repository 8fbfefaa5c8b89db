"""Trained models cached by the hash of their training config: built once under a file lock,
published by an atomic rename, and checked file by file before use, so a damaged directory is
rebuilt (with a warning naming it), never half-loaded."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock

from ..data.dataset_format import config_hash, write_json_atomic
from ..phantom.corpus import PHANTOM_VERSION

BUILT = "built.json"  # written last: the files of the model and their checksums
log = logging.getLogger(__name__)


def model_dir(cache_dir: str | Path, kind: str, spec: dict) -> Path:
    """Where the model `kind` trained from `spec` lives (a new phantom world moves it)."""
    key = config_hash({"kind": kind, "phantom_world": PHANTOM_VERSION, "spec": spec})
    return Path(cache_dir).expanduser().resolve() / "models" / f"{kind}-{key}"


def _checksum(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _record(tmp: Path, kind: str, spec: dict, extra: dict) -> None:
    files = {str(p.relative_to(tmp)): _checksum(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
    write_json_atomic(tmp / BUILT, {"kind": kind, "spec": spec, "files": files, **extra})


def damage(target: Path) -> str | None:
    """What is wrong with the built model directory `target` (None: complete and unchanged)."""
    record = target / BUILT
    if not record.is_file():
        return f"no {BUILT} (an unfinished or foreign directory)"
    try:
        files = json.loads(record.read_text())["files"]
    except (ValueError, KeyError) as e:
        return f"{BUILT} unreadable ({e})"
    for name, digest in files.items():
        p = target / name
        if not p.is_file():
            return f"{name} is missing"
        if _checksum(p) != digest:
            return f"{name} differs from the file built"
    return None


def built_record(target: Path) -> dict:
    """The record a build left in `target` (its spec, files and what the build reported)."""
    return json.loads((target / BUILT).read_text())


def ensure_model(cache_dir: str | Path, kind: str, spec: dict, build: Callable[[Path], dict | None]) -> Path:
    """The directory of model `kind` trained from `spec`, built on first use by `build(tmp_dir)`,
    which writes the model into tmp_dir and may return figures to record (build time, losses). A
    directory that fails its checks is moved aside and rebuilt."""
    target = model_dir(cache_dir, kind, spec)
    if target.is_dir() and damage(target) is None:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if target.is_dir():
            problem = damage(target)
            if problem is None:
                return target  # built by another process while this one waited
            aside = target.with_name(f"{target.name}.damaged-{uuid.uuid4().hex[:8]}")
            log.warning("cached model %s is damaged (%s): moved to %s and rebuilt", target, problem, aside)
            target.rename(aside)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
        tmp.mkdir()
        try:
            extra = build(tmp) or {}
            _record(tmp, kind, spec, extra)
            tmp.rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target
