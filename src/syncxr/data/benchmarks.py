"""Readers of downstream benchmark split files, as published (real data and phantom twins alike)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def read_chexpert(root: str | Path, split_csv: str, classes: list[str]) -> tuple[list[Path], pd.DataFrame]:
    """CheXpert split file: `Path` + label columns (0/1). Returns image paths and the chosen labels."""
    root = Path(root)
    csv = root / split_csv
    if not csv.is_file():
        raise FileNotFoundError(f"{csv}: CheXpert split file not found")
    df = pd.read_csv(csv)
    missing = [c for c in ["Path", *classes] if c not in df.columns]
    if missing:
        raise ValueError(f"{csv}: missing column(s) {missing}; has {list(df.columns)}")
    labels = df[classes].fillna(0)
    bad = ~labels.isin([0, 1]).all(axis=1)
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        raise ValueError(f"{csv}: row {i} has a label other than 0/1: {labels.iloc[i].to_dict()}")
    paths = [root / p for p in df["Path"]]
    for i, p in enumerate(paths):
        if not p.is_file():
            raise FileNotFoundError(f"{csv}: row {i}: image {p} not found")
    return paths, labels.astype(int).reset_index(drop=True)
