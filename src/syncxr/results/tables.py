"""The paper's tables from whatever a sweep holds: which apply, their rows and columns, and cells of
mean ± std over seeds (in percent; published Table 1 values beside the measured ones in paper mode).

Rows are model × data × the other swept axes; columns are datasets × metrics. Which datasets a
table holds, in which order, and their names come from the benchmarks (`layout.Layout`). A table is
rendered only when some job reported one of its columns, and a column only when some job reported it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .jobs import ordered, swept_axes
from .layout import Layout, sweep_layout
from .published import table1_datasets, table1_value

METRIC_NAMES = {"auc": "AUC", "f1": "F1", "acc": "ACC", "iou": "IoU", "dice": "Dice"}
FRACTIONS = ("1pct", "10pct", "100pct")
# Axes of the paper's ablations (Figure 3): the headline metric is plotted against each.
FIGURE3_AXES = {
    "sweep/generation.entity_ratio": "entity ratio",
    "sweep/llm": "LLM",
    "sweep/imagegen": "image generator",
}
SAMPLING_AXIS = "sweep/sampling"
PARTIAL_DATA = ("real_image_syn_report", "syn_image_real_report")
HEADLINE = "headline/zeroshot_seen_auc"  # per job: mean zero-shot AUC over the seen-disease sets it has


def metric_name(metric: str) -> str:
    base, _, frac = metric.partition("_")
    return METRIC_NAMES.get(base, base) + (f" {frac.removesuffix('pct')}%" if frac else "")


@dataclass(frozen=True)
class PaperTable:
    key: str  # table1, table2a, ...
    title: str
    task: str
    datasets_of: str  # the table key the benchmarks name (`Benchmark.tables`) for the datasets it shows
    metrics: tuple[str, ...]
    published: bool = False  # cells carry Table 1's published values in paper mode

    def columns(self, layout: Layout) -> list[tuple[str, str, str]]:
        """(metric key, dataset, metric) in the paper's order: datasets outer, metrics inner."""
        return [(f"{self.task}/{d}/{m}", d, m) for d in layout.columns.get(self.datasets_of, []) for m in self.metrics]


SEEN = dict(task="zeroshot_cls", datasets_of="table1", metrics=("auc", "f1"))
TABLE1 = PaperTable("table1", "Table 1: zero-shot classification, seen diseases", **SEEN, published=True)
TABLE2A = PaperTable(
    "table2a", "Table 2a: zero-shot classification, unseen and rare diseases", "zeroshot_cls", "table2a", ("auc", "f1")
)
TABLE2B = PaperTable("table2b", "Table 2b: zero-shot grounding", "zeroshot_grounding", "table2b", ("iou", "dice"))
TABLE3A = PaperTable(
    "table3a",
    "Table 3a: fine-tuned classification (AUC; 1 / 10 / 100 % of the labels)",
    "finetune_cls",
    "table3a",
    tuple(f"auc_{f}" for f in FRACTIONS),
)
TABLE3B = PaperTable(
    "table3b",
    "Table 3b: fine-tuned segmentation (Dice; 1 / 10 / 100 % of the labels)",
    "finetune_seg",
    "table3b",
    tuple(f"dice_{f}" for f in FRACTIONS),
)
TABLE4A = PaperTable("table4a", "Table 4a: balanced vs. long-tailed entity sampling (zero-shot, seen diseases)", **SEEN)
TABLE4B = PaperTable("table4b", "Table 4b: what is synthetic (zero-shot, seen diseases)", **SEEN)


def add_headline(df: pd.DataFrame, layout: Layout | None = None) -> pd.DataFrame:
    """Adds HEADLINE: per job, the mean zero-shot AUC over the Table 1 sets it reported (`layout`:
    the sweep's, default the project's benchmarks)."""
    cols = [c for c, _, _ in TABLE1.columns(layout or sweep_layout([])) if c.endswith("/auc") and c in df]
    df = df.copy()
    df[HEADLINE] = df[cols].astype(float).mean(axis=1, skipna=True) if cols else np.nan
    return df


def applicable(df: pd.DataFrame, layout: Layout) -> list[PaperTable]:
    """The tables this sweep holds, in the paper's order. Table 4a replaces Table 1 in a sampling
    study and Table 4b in a what-is-synthetic study (the same columns, other rows)."""
    ok = df[df["status"] == "ok"]
    has = lambda t: any(c in ok and ok[c].notna().any() for c, _, _ in t.columns(layout))  # noqa: E731
    tables = []
    if SAMPLING_AXIS in swept_axes(df):
        tables.append(TABLE4A)
    elif ok["data"].isin(PARTIAL_DATA).any():
        tables.append(TABLE4B)
    else:
        tables.append(TABLE1)
    tables += [TABLE2A, TABLE2B, TABLE3A, TABLE3B]
    quoted = (df["status"] == "quoted").any()  # paper.reuse_published_real: Table 1's quoted rows
    return [t for t in tables if has(t) or (t is TABLE1 and quoted)]


def row_axes(df: pd.DataFrame) -> list[str]:
    """model, data, then every other swept axis."""
    return ["model", "data"] + [a for a in swept_axes(df) if a not in ("sweep/model", "sweep/data")]


def axis_name(axis: str) -> str:
    return axis.removeprefix("sweep/")


def cell(values: pd.Series) -> str:
    """mean ± std over seeds in percent; the mean alone for one seed (no misleading '± 0.00')."""
    v = values.dropna().astype(float) * 100
    if v.empty:
        return "—"
    return f"{v.mean():.2f}" if len(v) < 2 else f"{v.mean():.2f} ± {v.std(ddof=1):.2f}"


def group_rows(ok: pd.DataFrame, axes: list[str]) -> list[tuple[tuple, pd.DataFrame]]:
    """Groups of jobs per row (each key a tuple of axis values) in reading order."""
    groups = dict(list(ok.groupby(axes, dropna=False, sort=False)))
    groups = {(k if isinstance(k, tuple) else (k,)): g for k, g in groups.items()}
    orders = [ordered(ok[a].tolist()) for a in axes]
    return sorted(groups.items(), key=lambda kv: [o.index(v) if v in o else len(o) for o, v in zip(orders, kv[0])])


QUOTED_MARK = "‡"  # a published value the paper quoted from MAVL (its real rows, §4.2)


def published_text(row: dict, dataset: str, metric: str, jobs: pd.DataFrame) -> str:
    """The published Table 1 value beside a row of the exact published configuration (every job of
    the row: `published_config`), marked ‡ where the paper quoted it; nothing beside any other row."""
    if "published_config" not in jobs or not jobs["published_config"].astype(bool).all():
        return ""
    pub = table1_value(row["model"], row["data"], dataset, metric)
    mark = f" {QUOTED_MARK}" if row["data"] == "real" else ""
    if (jobs["status"] == "quoted").all():
        return f"quoted {pub:.2f}{mark}" if pub is not None else "—"
    return f" (paper {pub:.2f}{mark})" if pub is not None else " (paper —)"


def render(
    df: pd.DataFrame, table: PaperTable, paper_mode: bool, twins: set[str], layout: Layout
) -> tuple[pd.DataFrame, list[str]]:
    """(the table as text cells, the metric keys it shows). Columns of benchmarks that were phantom
    twins carry † in paper mode; in paper mode Table 1 cells of the published configuration carry
    the published value, and the quoted rows (paper.reuse_published_real) show it alone."""
    ok = df[df["status"] == "ok"]
    quoting = table.published and paper_mode and (df["status"] == "quoted").any()
    shown = df[df["status"].isin(["ok", "quoted"] if quoting else ["ok"])]
    axes = row_axes(df)
    cols = [
        (k, d, m)
        for k, d, m in table.columns(layout)
        if (k in ok and ok[k].notna().any()) or (quoting and d in table1_datasets())
    ]
    rows = []
    for key, g in group_rows(shown, axes):
        row = {axis_name(a): v for a, v in zip(axes, key)}
        measured = g[g["status"] == "ok"]
        for k, d, m in cols:
            header = f"{layout.title(d)} {metric_name(m)}"
            if paper_mode and layout.benchmark(d) in twins:
                header += " †"
            if measured.empty:  # a quoted row: the published value alone
                text = published_text(row, d, m, g)
            elif k in measured and measured[k].notna().any():
                text = cell(measured[k]) + (published_text(row, d, m, g) if table.published and paper_mode else "")
            else:  # a column only the quoted rows fill
                text = "—"
            row[header] = text
        row["seeds"] = int(measured["seed"].nunique())
        rows.append(row)
    return pd.DataFrame(rows), [k for k, _, _ in cols]


def figure3_table(df: pd.DataFrame, axis: str) -> pd.DataFrame:
    """The headline metric per model and value of a Figure 3 axis (mean ± std over seeds)."""
    ok = df[df["status"] == "ok"]
    rows = []
    for (model, value), g in group_rows(ok, ["model", axis]):
        rows.append(
            {
                "model": model,
                axis_name(axis): value,
                "mean zero-shot AUC, seen": cell(g[HEADLINE]),
                "seeds": int(g["seed"].nunique()),
            }
        )
    return pd.DataFrame(rows)


def other_metrics(df: pd.DataFrame, shown: set[str]) -> pd.DataFrame:
    """Dataset-level metrics no paper table shows (retrieval, linear probe, random baselines, ...),
    one row per metric and one column per row of the paper tables."""
    ok = df[df["status"] == "ok"]
    skip = ("skipped", "n_positive", "n_pairs", "threshold", "random_threshold")  # counts and cut-offs, not scores
    keys = sorted(
        c
        for c in ok.columns
        if c.count("/") == 2
        and not c.startswith(("sweep/", "headline/"))
        and c not in shown
        and c.rsplit("/", 1)[1] not in skip
        and not c.rsplit("/", 1)[1].endswith(("_ci_low", "_ci_high"))
        and ok[c].notna().any()
    )
    if not keys:
        return pd.DataFrame()
    axes = row_axes(df)
    out = {"metric": keys}
    for key, g in group_rows(ok, axes):
        out[", ".join(str(v) for v in key)] = [cell(g[k]) for k in keys]
    return pd.DataFrame(out)
