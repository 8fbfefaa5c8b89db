"""Training tables from real, synthetic or mixed datasets, with the source of every row kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .confined_paths import OutsideRootError, RootConfinement
from .dataset_format import MANIFEST, read_dataset


def load_table(directory: str | Path, split: str | None = "train", allow_external_images: bool = False) -> pd.DataFrame:
    """Manifest rows of one dataset directory with absolute image paths in `path`, and where each
    row comes from (`manifest`, `manifest_row`: named by errors about the row).

    An image path that leaves the directory (absolute, through "..", or through a symbolic link) is
    refused, naming the manifest and the row, unless `allow_external_images` (config:
    `data.allow_external_images`).
    """
    directory = Path(directory)
    df, _ = read_dataset(directory)
    manifest = directory / MANIFEST
    df = df.assign(manifest=str(manifest), manifest_row=np.arange(len(df)))
    if not allow_external_images:
        _check_inside(df, directory, manifest)
    if split is not None:
        df = df[df["split"] == split]
    df = df.reset_index(drop=True)
    df["path"] = [str(directory / p) for p in df["image"]]
    return df


def _check_inside(df: pd.DataFrame, directory: Path, manifest: Path) -> None:
    inside = RootConfinement(directory, what="dataset directory")
    for i, image in enumerate(df["image"]):
        if not isinstance(image, str) or not image.strip():
            raise ValueError(f"{manifest}: row {i} (id {df['id'].iloc[i]!r}) has no image path")
        try:
            inside.path(image)  # an absolute `image` replaces the directory, and is refused
        except OutsideRootError as e:
            raise ValueError(
                f"{manifest}: row {i} (id {df['id'].iloc[i]!r}): image {e}; "
                "set data.allow_external_images=true to read it anyway"
            ) from None


def mix_tables(
    real: pd.DataFrame | None, syn: pd.DataFrame | None, syn_fraction: float | None, seed: int
) -> pd.DataFrame:
    """Combines real and synthetic rows.

    `syn_fraction=None` keeps all rows of both (the paper's mix). A number f in [0, 1] keeps the size
    of the real set and fills a share f of it with synthetic rows, drawn without replacement.
    """
    parts = [t for t in (real, syn) if t is not None]
    if not parts:
        raise ValueError("data: neither a real nor a synthetic dataset was given")
    if syn_fraction is None or real is None or syn is None:
        return pd.concat(parts, ignore_index=True)
    if not 0.0 <= syn_fraction <= 1.0:
        raise ValueError(f"data.syn_fraction must be in [0, 1] or null, got {syn_fraction}")
    total = len(real)
    n_syn = int(round(syn_fraction * total))
    if n_syn > len(syn):
        raise ValueError(
            f"data.syn_fraction={syn_fraction} needs {n_syn} synthetic rows, the synthetic dataset has {len(syn)}"
        )
    rng = np.random.default_rng([seed, 31])
    take_real = rng.choice(len(real), size=total - n_syn, replace=False)
    take_syn = rng.choice(len(syn), size=n_syn, replace=False)
    return pd.concat([real.iloc[np.sort(take_real)], syn.iloc[np.sort(take_syn)]], ignore_index=True)
