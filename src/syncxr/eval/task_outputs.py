"""How the evaluation tasks name label fractions and tabulate per-image scores."""

from __future__ import annotations

import numpy as np
import pandas as pd


def fraction_key(fraction: float) -> str:
    return f"{fraction * 100:g}pct"


def per_image_scores(ids, classes: list[str], labels, scores) -> pd.DataFrame:
    """One row per image: `id`, then `label/<class>` and `score/<class>` for every class."""
    labels, scores = np.asarray(labels), np.asarray(scores)
    cols = {"id": list(ids)}
    for c, name in enumerate(classes):
        cols[f"label/{name}"] = labels[:, c]
        cols[f"score/{name}"] = scores[:, c]
    return pd.DataFrame(cols)
