"""Collect the jobs of a sweep into `results.csv` and a `report.md` with paper-shaped tables and plots.

  python -m syncxr.results <sweep dir>

A job is a sub-directory holding `.hydra/overrides.yaml`; it is `ok` when it wrote `metrics.json`
and `failed` otherwise (failed jobs stay in the table as rows, they never silently vanish).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ..data.dataset_format import write_json_atomic
from ..data.durable import atomic_path, save_figure_atomic, write_text_atomic

# Headline metrics shown in the report tables (all metrics go to results.csv).
HEADLINE = ("auc", "f1", "acc")


def _overrides(job_dir: Path) -> dict[str, str]:
    items = yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text()) or []
    out = {}
    for item in items:
        key, _, value = str(item).lstrip("+~").partition("=")
        out[key] = value
    return out


def collect(sweep_dir: str | Path) -> pd.DataFrame:
    """One row per job: swept values (`sweep/<key>`), seed, status and every metric."""
    sweep_dir = Path(sweep_dir)
    jobs = sorted(p.parent.parent for p in sweep_dir.glob("*/.hydra/overrides.yaml"))
    if not jobs:
        raise FileNotFoundError(f"{sweep_dir}: no jobs (no */.hydra/overrides.yaml)")
    rows = []
    for job in jobs:
        ov = _overrides(job)
        row = {"job": job.name, **{f"sweep/{k}": v for k, v in ov.items()}}
        cfg_path = job / ".hydra" / "config.yaml"
        cfg = yaml.safe_load(cfg_path.read_text()) if cfg_path.is_file() else {}
        row["seed"] = int(ov.get("seed", cfg.get("seed", 0)))
        row["data"] = ov.get("data", (cfg.get("data") or {}).get("name", ""))
        row["model"] = ov.get("model", (cfg.get("model") or {}).get("name", ""))
        metrics = job / "metrics.json"
        if metrics.is_file():
            row["status"] = "ok"
            row.update(json.loads(metrics.read_text()))
        else:
            row["status"] = "failed"
        rows.append(row)
    return pd.DataFrame(rows)


def swept_axes(df: pd.DataFrame) -> list[str]:
    """Swept keys that take more than one value (seed excluded: it is what we average over)."""
    return [c for c in df.columns if c.startswith("sweep/") and c != "sweep/seed" and df[c].nunique() > 1]


def mean_std_table(df: pd.DataFrame, rows: list[str], metrics: list[str]) -> pd.DataFrame:
    """`mean ± std` over seeds of each metric, one row per combination of `rows`."""
    ok = df[df["status"] == "ok"]
    if ok.empty or not metrics:
        return pd.DataFrame()
    g = ok.groupby(rows, dropna=False)[metrics]
    mean, std, n = g.mean(), g.std(ddof=1), g.size()
    table = mean.copy().astype(object)
    for c in metrics:
        # One seed has no spread: the mean alone, not a misleading "± 0.00".
        table[c] = [f"{m * 100:.2f}" if k < 2 else f"{m * 100:.2f} ± {s * 100:.2f}"
                    for m, s, k in zip(mean[c], std[c], n)]
    table["seeds"] = n
    return table.reset_index()


def _metric_columns(df: pd.DataFrame) -> list[str]:
    """Dataset-level headline metrics: `<task>/<dataset>/<metric>` with no class level."""
    return [c for c in df.columns if c.count("/") == 2 and c.rsplit("/", 1)[1] in HEADLINE]


def direction_summary(df: pd.DataFrame, metric: str) -> list[str]:
    """Per model, the paper's claims (syn vs. real, mix vs. both) as direction and spread over seeds."""
    lines = []
    ok = df[df["status"] == "ok"]
    if metric not in ok or not {"real", "syn", "mix"} <= set(ok["data"]):
        return lines
    for model, m in ok.groupby("model"):
        by = {d: m[m["data"] == d].set_index("seed")[metric] for d in ("real", "syn", "mix")}
        for a, b in (("syn", "real"), ("mix", "real"), ("mix", "syn")):
            common = by[a].index.intersection(by[b].index)
            if len(common) == 0:
                continue
            diff = (by[a].loc[common] - by[b].loc[common]) * 100
            wins = int((diff > 0).sum())
            sign = ">" if diff.mean() > 0 else "<"
            spread = f" ± {diff.std(ddof=1):.2f}" if len(diff) > 1 else ""
            agrees = "as the paper" if sign == ">" else "unlike the paper"  # paper: syn > real, mix > both
            lines.append(f"- {model}: {a} {sign} {b} on `{metric}` by {diff.mean():+.2f}{spread} points "
                         f"({a} ahead in {wins}/{len(diff)} seeds; {agrees}: {a} > {b})")
    return lines


def plot_axes(df: pd.DataFrame, metric: str, out_dir: Path) -> list[Path]:
    """One PNG per swept axis: the metric against the axis, a line per model (mean ± std over seeds)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = df[df["status"] == "ok"]
    paths = []
    for axis in swept_axes(df):
        if axis == "sweep/model" or metric not in ok:
            continue
        fig, ax = plt.subplots(figsize=(5, 3.2))
        for model, m in ok.groupby("model"):
            g = m.groupby(axis)[metric]
            x = list(g.mean().index)
            try:
                order = np.argsort([float(v) for v in x])
            except ValueError:
                order = np.arange(len(x))
            xs = [x[i] for i in order]
            ax.errorbar(range(len(xs)), g.mean().iloc[order] * 100, yerr=g.std(ddof=1).fillna(0).iloc[order] * 100,
                        marker="o", capsize=3, label=str(model))
            ax.set_xticks(range(len(xs)), xs)
        ax.set_xlabel(axis.removeprefix("sweep/"))
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out_dir / f"{axis.removeprefix('sweep/').replace('/', '_').replace('.', '_')}.png"
        save_figure_atomic(fig, path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths


def write_report(sweep_dir: str | Path, logger_cfg=None) -> tuple[Path, Path]:
    """results.csv, report.md and the plots of a sweep; with a W&B `logger_cfg` (logger=wandb) also
    logged to W&B as a table, the report text and images."""
    sweep_dir = Path(sweep_dir)
    df = collect(sweep_dir)
    with atomic_path(sweep_dir / "results.csv") as tmp:
        df.to_csv(tmp, index=False)
    metrics = _metric_columns(df)
    rows = ["model", "data"] + [a for a in swept_axes(df) if a not in ("sweep/model", "sweep/data")]
    table = mean_std_table(df, rows, metrics)
    n_failed = int((df["status"] == "failed").sum())
    lines = [f"# Sweep report: {sweep_dir.name}", "",
             f"{len(df)} jobs, {len(df) - n_failed} ok, {n_failed} failed. Values are mean ± std over seeds, "
             "in percent.", ""]
    if not table.empty:
        lines += [table.to_markdown(index=False), ""]
    headline = "zeroshot_cls/chexpert/auc"
    claims = direction_summary(df, headline)
    if claims:
        lines += ["## The paper's claims on this sweep", "", *claims, ""]
    if n_failed:
        lines += ["## Failed jobs", "", *[f"- {j}" for j in df.loc[df["status"] == "failed", "job"]], ""]
    plots = plot_axes(df, headline, sweep_dir)
    for p in plots:
        lines += [f"![{p.stem}]({p.name})", ""]
    report = sweep_dir / "report.md"
    write_text_atomic(report, "\n".join(lines))
    write_json_atomic(sweep_dir / "report_summary.json", {"jobs": len(df), "failed": n_failed})
    if logger_cfg is not None and logger_cfg.get("name") == "wandb":
        from .wandb_logger import log_sweep_report
        log_sweep_report(sweep_dir, logger_cfg, df, plots, report)
    return sweep_dir / "results.csv", report
