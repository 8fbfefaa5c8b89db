"""The SynCXR paper's published numbers (published/*.csv, in percent): Table 1 per model, data,
dataset and metric, and the average differences the paper states in its text."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pandas as pd

PUBLISHED = Path(__file__).parent / "published"


@cache
def table1() -> pd.DataFrame:
    """Columns model, data, then `<dataset>_<metric>` (auc, f1) for the five seen-disease sets."""
    return pd.read_csv(PUBLISHED / "table1_zeroshot_seen.csv")


@cache
def table1_datasets() -> tuple[str, ...]:
    """The datasets Table 1 publishes values for (its `<dataset>_auc` columns)."""
    return tuple(c.removesuffix("_auc") for c in table1().columns if c.endswith("_auc"))


@cache
def stated_averages() -> pd.DataFrame:
    """Columns family (seen | unseen | grounding), a, b, metric, difference (points, a minus b)."""
    return pd.read_csv(PUBLISHED / "stated_averages.csv")


def table1_value(model: str, data: str, dataset: str, metric: str) -> float | None:
    """The published Table 1 value in percent, or None where the paper has none."""
    t = table1()
    col = f"{dataset}_{metric}"
    row = t[(t["model"] == model) & (t["data"] == data)]
    return None if row.empty or col not in t else float(row[col].iloc[0])


def table1_difference(models: list[str], a: str, b: str, datasets: list[str], metric: str) -> float | None:
    """Mean over `models` and `datasets` of Table 1's a - b, in points; None if any value is missing."""
    diffs = []
    for model in models:
        for ds in datasets:
            va, vb = table1_value(model, a, ds, metric), table1_value(model, b, ds, metric)
            if va is None or vb is None:
                return None
            diffs.append(va - vb)
    return sum(diffs) / len(diffs) if diffs else None


def stated_difference(family: str, a: str, b: str, metric: str) -> tuple[float, str] | None:
    """The paper's stated average a - b (points) and how it was obtained: `stated`, or `derived`
    for mix vs. syn, the difference of the two stated averages against real."""
    s = stated_averages()

    def get(x, y):
        row = s[(s["family"] == family) & (s["a"] == x) & (s["b"] == y) & (s["metric"] == metric)]
        return None if row.empty else float(row["difference"].iloc[0])

    if (d := get(a, b)) is not None:
        return d, "stated"
    if b != "real" and (da := get(a, "real")) is not None and (db := get(b, "real")) is not None:
        return da - db, "derived"
    return None
