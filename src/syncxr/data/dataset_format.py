"""The on-disk dataset format: `manifest.parquet` + images + `dataset.json` (see DESIGN.md).

Datasets are built in a temporary sibling directory and renamed into place (after an fsync of
everything in it), so a reader never sees a half-written dataset, and are addressed by the hash of
the config that made them. The temporary directory of a killed build is removed by the next build
of the same target.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import uuid
from pathlib import Path

import pandas as pd

from .durable import StagingDir, remove_abandoned, replace_dir, write_json_atomic, write_parquet_atomic

log = logging.getLogger(__name__)

MANIFEST = "manifest.parquet"
INFO = "dataset.json"
REQUIRED_COLUMNS = ("id", "image", "findings", "impression", "entities", "source", "split")


# Hydra's instantiation keys say which code builds an object, not what data it makes: a refactor that
# moves a class must not change the address of the datasets made with it.
INSTANTIATION_KEYS = ("_target_", "_partial_", "_recursive_", "_convert_", "_args_")


def without_instantiation_keys(config):
    """`config` with Hydra's instantiation keys removed at every level."""
    if isinstance(config, dict):
        return {k: without_instantiation_keys(v) for k, v in config.items() if k not in INSTANTIATION_KEYS}
    if isinstance(config, (list, tuple)):
        return [without_instantiation_keys(v) for v in config]
    return config


def config_hash(config: dict, length: int = 12) -> str:
    """Stable content hash of a JSON-serialisable config (key order and instantiation keys do not
    matter)."""
    blob = json.dumps(without_instantiation_keys(config), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


__all__ = [
    "DatasetBuilder",
    "config_hash",
    "is_complete",
    "read_dataset",
    "validate_manifest",
    "write_json_atomic",
    "write_parquet_atomic",
]


def validate_manifest(df: pd.DataFrame, where: str) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{where}: manifest lacks column(s) {missing}; expected {list(REQUIRED_COLUMNS)}")
    dup = df["id"][df["id"].duplicated()]
    if len(dup):
        raise ValueError(f"{where}: duplicate id {dup.iloc[0]!r} (row {dup.index[0]})")
    for col in ("findings", "impression"):
        bad = df[col].isna() | (df[col].astype(str).str.strip() == "")
        # A pair with an empty FINDINGS can still train on its IMPRESSION, but not with both empty.
        if col == "impression":
            both = bad & (df["findings"].isna() | (df["findings"].astype(str).str.strip() == ""))
            if both.any():
                i = int(both.to_numpy().nonzero()[0][0])
                raise ValueError(f"{where}: row {i} (id {df['id'].iloc[i]!r}) has an empty report")


def read_dataset(directory: str | os.PathLike) -> tuple[pd.DataFrame, dict]:
    """Manifest and info of a dataset directory, checked; image paths stay relative to it."""
    directory = Path(directory)
    manifest = directory / MANIFEST
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest}: no such dataset manifest (is {directory} a syncxr dataset?)")
    df = pd.read_parquet(manifest)
    validate_manifest(df, str(manifest))
    info_path = directory / INFO
    info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    return df, info


class DatasetBuilder:
    """Context manager that builds a directory (a dataset, a benchmark twin) in a temp sibling and
    renames it into place on success. `marker` is the file a finished directory always has."""

    def __init__(self, target: Path, marker: str = MANIFEST, subdirs: tuple[str, ...] = ("images",)):
        self.target = Path(target)
        self.marker, self.subdirs = marker, subdirs
        self.tmp = self.target.with_name(f".{self.target.name}.{uuid.uuid4().hex}.building")
        self._staging = StagingDir(self.tmp)

    def __enter__(self) -> Path:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        # Builds of this target killed earlier (their process is gone) left their temp dir behind.
        for old in remove_abandoned(self.target.parent, f".{glob.escape(self.target.name)}.*.building"):
            log.warning("removed %s, left behind by a killed build of %s", old.name, self.target)
        self._staging.create()
        for d in self.subdirs:
            (self.tmp / d).mkdir()
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is not None:
                self._staging.release(remove=True)
                return False
            # False: another process finished the same dataset first; theirs is identical, keep it.
            if not replace_dir(self.tmp, self.target) and not (self.target / self.marker).is_file():
                raise FileExistsError(f"{self.target}: exists without {self.marker}; not replaced")
        finally:
            self._staging.release(remove=True)
        return False


def is_complete(directory: Path) -> bool:
    return (Path(directory) / MANIFEST).is_file() and (Path(directory) / INFO).is_file()
