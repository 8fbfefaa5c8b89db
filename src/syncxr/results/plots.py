"""Plots written next to the results they show."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on clusters and CI
import matplotlib.pyplot as plt  # noqa: E402

from ..data.durable import save_figure_atomic  # noqa: E402


def plot_loss(history: list[dict], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot([h["step"] for h in history], [h["loss"] for h in history])
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=100)
    plt.close(fig)


def plot_axis(df, axis: str, metric: str, ylabel: str, path: Path) -> Path:
    """Saves `axis_figure` as a PNG."""
    fig = axis_figure(df, axis, metric, ylabel)
    save_figure_atomic(fig, path, dpi=100)
    plt.close(fig)
    return path


def axis_figure(df, axis: str, metric: str, ylabel: str):
    """The metric against one swept axis, a line per model: mean ± std over seeds of the `ok` jobs,
    in percent (Figure 3's shape). Numeric axes are spaced by value, others evenly in reading order."""
    from .jobs import ordered  # noqa: PLC0415

    ok = df[(df["status"] == "ok") & df[metric].notna()]
    values = ordered(ok[axis].tolist())
    numeric = all(_is_number(v) for v in values)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for model, m in ok.groupby("model"):
        g = m.groupby(axis)[metric]
        present = [v for v in values if v in g.groups]
        mean = g.mean().reindex(present) * 100
        std = g.std(ddof=1).reindex(present).fillna(0) * 100
        xs = [float(v) for v in present] if numeric else [values.index(v) for v in present]
        ax.errorbar(xs, mean.to_numpy(), yerr=std.to_numpy(), marker="o", capsize=3, label=str(model))
    if not numeric:
        ax.set_xticks(range(len(values)), [str(v) for v in values])
    ax.set_xlabel(axis.removeprefix("sweep/"))
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _is_number(v) -> bool:
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False
