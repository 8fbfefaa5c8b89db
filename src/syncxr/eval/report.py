"""evaluate.py's human-readable outputs: a Markdown summary and a grounding figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.durable import save_figure_atomic

# Columns of each task's summary table, in order (metrics not listed follow alphabetically).
SUMMARY_ORDER = (
    "auc",
    "f1",
    "acc",
    "iou",
    "dice",
    "random_iou",
    "random_dice",
    "dice_over_random",
    "oracle_iou",
    "oracle_dice",
    "threshold",
    "i2t_r1",
    "i2t_r5",
    "i2t_r10",
    "t2i_r1",
    "t2i_r5",
    "t2i_r10",
)


def _column_order(metric: str):
    """Summary metrics first in SUMMARY_ORDER; `auc_1pct`-style fractions numerically (1, 10, 100)."""
    base, _, pct = metric.rpartition("_")
    if base and pct.endswith("pct"):
        try:
            frac = float(pct[:-3])
        except ValueError:
            frac = None
        if frac is not None:
            return (*_column_order(base)[:2], frac)
    return (SUMMARY_ORDER.index(metric) if metric in SUMMARY_ORDER else len(SUMMARY_ORDER), metric, 0.0)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 1000 and v != int(v) else f"{v:g}"
    return str(v)


def _table(header: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(_fmt(c) for c in r) + " |" for r in rows]
    return out


def split_key(key: str) -> tuple[str, str, str | None, str]:
    """`task/dataset/metric` or `task/dataset/class/metric` -> (task, dataset, class, metric)."""
    parts = key.split("/")
    if len(parts) == 3:
        return parts[0], parts[1], None, parts[2]
    if len(parts) == 4:
        return parts[0], parts[1], parts[2], parts[3]
    raise ValueError(f"metric key {key!r} is not task/dataset[/class]/metric")


def markdown_report(metrics: dict[str, float], info: dict, header: dict) -> str:
    """Markdown: a header (checkpoint, protocol, ...), then per task a summary table (one row per
    dataset) with the threshold source, and per-class tables where there are classes."""
    lines = ["# Evaluation", ""]
    lines += [f"- **{k}**: {v}" for k, v in header.items()]
    tasks: dict[str, dict] = {}
    for key, v in metrics.items():
        task, ds, cls, metric = split_key(key)
        t = tasks.setdefault(task, {"summary": {}, "classes": {}})
        if cls is None:
            t["summary"].setdefault(ds, {})[metric] = v
        else:
            t["classes"].setdefault(ds, {}).setdefault(cls, {})[metric] = v
    for task, t in tasks.items():
        lines += ["", f"## {task}", ""]
        cols = sorted({m for d in t["summary"].values() for m in d}, key=_column_order)
        has_source = any("threshold_source" in info.get(task, {}).get(ds, {}) for ds in t["summary"])
        header_row = ["dataset", *cols] + (["thresholds from"] if has_source else [])
        rows = []
        for ds, d in t["summary"].items():
            row = [ds, *[d.get(c, "") for c in cols]]
            if has_source:
                row.append(info.get(task, {}).get(ds, {}).get("threshold_source", ""))
            rows.append(row)
        lines += _table(header_row, rows)
        for ds, classes in t["classes"].items():
            cols = sorted({m for d in classes.values() for m in d}, key=_column_order)
            lines += ["", f"### {task} / {ds} per class", ""]
            lines += _table(["class", *cols], [[c, *[d.get(m, "") for m in cols]] for c, d in classes.items()])
    return "\n".join(lines) + "\n"


def grounding_figure(cases: dict[str, list[dict]], path: str | Path) -> Path | None:
    """One row per case: image, similarity map over the image, binarised prediction, ground truth."""
    rows = [(ds, c) for ds, cs in cases.items() for c in cs]
    if not rows:
        return None
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, axes = plt.subplots(len(rows), 4, figsize=(8, 2.1 * len(rows)), squeeze=False)
    for r, (ds, c) in enumerate(rows):
        img = np.asarray(c["image"])
        panels = [
            ("image", img, None),
            ("map", c["map"], "jet"),
            ("prediction", c["prediction"], "gray"),
            ("ground truth", c["target"], "gray"),
        ]
        for k, (title, data, cmap) in enumerate(panels):
            ax = axes[r, k]
            if title == "map":
                ax.imshow(img, cmap="gray")
                ax.imshow(data, cmap=cmap, alpha=0.5, vmin=0, vmax=1)
            else:
                ax.imshow(data, cmap="gray" if cmap is None else cmap)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=9)
        axes[r, 0].set_ylabel(f"{ds}\n{str(c['id'])[:18]}", fontsize=7)
    fig.tight_layout()
    path = Path(path)
    save_figure_atomic(fig, path, dpi=90)
    plt.close(fig)
    return path
