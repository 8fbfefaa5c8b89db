"""Collect the jobs of a sweep into `results.csv` and a `report.md` in the shape of the SynCXR paper.

  python -m syncxr.results <sweep dir> [--wandb] [--publish]

results.csv: one row per job (swept values, seed, status, recipe, phantom twins, every metric).
report.md: the paper's tables the sweep holds (Tables 1-4, Figure 3; mean ± std over seeds), the
paper's claims with bootstrap intervals over seeds and test images, other metrics, plots, failures.
In paper mode (jobs with recipe=paper) Table 1 cells carry the published values, and benchmarks
evaluated on phantom twins are flagged.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from ..data.dataset_format import write_json_atomic
from ..data.durable import atomic_path, write_text_atomic
from .datasets import datasets_markdown
from .jobs import find_jobs, results_frame, swept_axes
from .layout import sweep_layout
from .plots import plot_axis
from .provenance import SOURCES
from .tables import (
    FIGURE3_AXES,
    HEADLINE,
    QUOTED_MARK,
    add_headline,
    applicable,
    axis_name,
    figure3_table,
    other_metrics,
    render,
)
from .trend import all_claims

log = logging.getLogger(__name__)
HEADLINE_LABEL = "mean zero-shot AUC, seen diseases (%)"
TABLE_NOTES = {
    "table2a": "\n\nTwo unseen-disease sets, PadChest unseen and PadChest rare: the paper's caption speaks of "
    "three datasets for unseen diseases, but its §4.1 names only these two among its seven zero-shot sets.",
    "table2b": "\n\nColumns in the published order: RSNA, COVID-19 Rural, SIIM.",
}


def collect(sweep_dir: str | Path) -> pd.DataFrame:
    """One row per job (see jobs.results_frame)."""
    return results_frame(find_jobs(sweep_dir))


def _markdown(table: pd.DataFrame) -> str:
    # Cells are text as written ("48.70"): tabulate must not reparse them as numbers ("48.7").
    return table.to_markdown(index=False, disable_numparse=True) if not table.empty else ""


def _paper_mode_notes(df: pd.DataFrame) -> tuple[bool, set[str], list[str]]:
    """(paper mode?, benchmarks that were phantom twins, the report's notes on both)."""
    ok = df[df["status"].isin(["ok", "quoted"])]  # finished: trained, or quoted the published row
    paper = ok[ok["recipe"] == "paper"]
    evaluated = ok[ok["status"] == "ok"]  # a quoted job evaluated nothing
    twins = {b for s in evaluated["phantom_twins"].fillna("") for b in str(s).split(";") if b}
    if paper.empty:
        note = [f"Benchmarks evaluated on their phantom twins: {', '.join(sorted(twins))}.", ""] if twins else []
        return False, twins, note
    lines = [
        f"**Paper mode** (recipe=paper in {len(paper)} of {len(ok)} finished jobs): Table 1 cells of the "
        "configuration the paper published (ConVIRT or GLoRIA, ResNet-50, real / syn / mix, SynCXR as "
        "generated in §3.2: Llama 3.1 70B, RoentGen, balanced sampling, entity ratio 1.0, mix = all of "
        "both) show the published value in parentheses; no other row does. Syn and mix values are the "
        f"paper's own runs; real values ({QUOTED_MARK}) are {SOURCES['real']}.",
        "",
    ]
    quoted = df[df["status"] == "quoted"]
    if not quoted.empty:
        lines += [
            f"{len(quoted)} data=real job(s) did not train (`paper.reuse_published_real=true`): their rows "
            "show the published value alone, marked `quoted`; no claim compares a run with them (nothing "
            "was measured), the published differences are in each claim's `Paper:` part.",
            "",
        ]
    if twins:
        lines += [
            "> **WARNING — PHANTOM TWINS, NOT THE PUBLISHED BENCHMARKS:** "
            f"{', '.join(sorted(twins))} {'was' if len(twins) == 1 else 'were'} evaluated on phantom twins "
            "(their root unset). Their columns are marked †; their numbers are not comparable with the "
            "paper's. Evaluate on the real data with `benchmark.<name>.root=...`.",
            "",
        ]
    return True, twins, lines


def _counts(df: pd.DataFrame) -> str:
    """'4 ok, 2 failed' (and the quoted jobs, where any)."""
    n = df["status"].value_counts()
    quoted = f", {n['quoted']} quoted" if n.get("quoted") else ""
    return f"{n.get('ok', 0)} ok{quoted}, {n.get('failed', 0)} failed"


def build_sections(df: pd.DataFrame, jobs, sweep_dir: Path, n_boot: int):
    """The report's sections: [(title, markdown, swept axes, headline metrics, table)], the claims
    and the plots."""
    paper_mode, twins, notes = _paper_mode_notes(df)
    layout = sweep_layout(jobs)
    axes = [a for a in ["model", "data"] if df.loc[df["status"] == "ok", a].nunique() > 1]
    axes += [a for a in swept_axes(df) if a not in ("sweep/model", "sweep/data")]
    sections, shown = [], set()
    for spec in applicable(df, layout):
        table, keys = render(df, spec, paper_mode, twins, layout)
        shown |= set(keys)
        headline = [k for k in keys if k.rsplit("/", 1)[1] in ("auc", "iou", "auc_100pct", "dice_100pct")]
        text = "\n".join([_markdown(table), "", "Keys: " + ", ".join(f"`{k}`" for k in keys)])
        if any(str(c).endswith(" †") for c in table.columns):
            text += "\n\n† phantom twin, not the published benchmark."
        text += TABLE_NOTES.get(spec.key, "")
        sections.append((spec.title, text, axes, headline, table, spec.key))
    plots = []
    seen_auc = [
        k
        for k in shown
        if k.startswith("zeroshot_cls/") and k.endswith("/auc") and k.split("/")[1] in layout.columns.get("table1", [])
    ]
    if df[HEADLINE].notna().any():
        for axis in [a for a in swept_axes(df) if a != "sweep/model"]:
            name = axis_name(axis).replace("/", "_").replace(".", "_")
            path = plot_axis(df, axis, HEADLINE, HEADLINE_LABEL, sweep_dir / f"{name}.png")
            plots.append(path)
            if axis in FIGURE3_AXES:
                table = figure3_table(df, axis)
                text = "\n".join(
                    [
                        f"![{path.stem}]({path.name})",
                        "",
                        _markdown(table),
                        "",
                        f"`{HEADLINE}`: the mean of {', '.join(f'`{k}`' for k in sorted(seen_auc))} per job.",
                    ]
                )
                sections.append(
                    (
                        f"Figure 3: {FIGURE3_AXES[axis]}",
                        text,
                        [axis],
                        sorted(seen_auc),
                        table,
                        f"figure3_{axis_name(axis).replace('.', '_')}",
                    )
                )
    claims = all_claims(jobs, df, n_boot=n_boot)
    return notes, sections, shown, plots, claims


def claims_markdown(claims) -> list[str]:
    if not claims:
        return []
    lines = [
        "## The paper's claims on this sweep",
        "",
        "Difference in points (percent), a minus b, mean over paired runs (same seed, model and other axes); "
        "95% percentile interval of a two-stage bootstrap (seeds, then test images jointly for the two runs). "
        "Agrees: the interval excludes 0 on the paper's side."
        + (
            " Trend lines: Spearman's rho between the entity ratio and the metric over every swept ratio, "
            "per seed, averaged over seeds; the same bootstrap, the images resampled jointly for all of a "
            "seed's runs."
            if any(c.a == "more entities" for c in claims)
            else ""
        ),
        "",
    ]
    families = list(dict.fromkeys(c.family for c in claims))  # in the order of the first claim of each
    for family in families:
        lines += [
            f"### {family.label[0].upper()}{family.label[1:]}",
            "",
            *[c.line() for c in claims if c.family == family],
            "",
        ]
    return lines


def _closing_lines(df: pd.DataFrame, shown: set[str], plots: list[Path], n_failed: int) -> list[str]:
    """The report's last sections: the metrics no table showed, the plots not already in a Figure 3
    section, and the failed jobs (each only when there is any)."""
    lines = []
    other = other_metrics(df, shown)
    if not other.empty:
        lines += ["## Other metrics", "", _markdown(other), ""]
    figure3 = {f"{axis_name(a).replace('.', '_')}.png" for a in FIGURE3_AXES}
    rest = [p for p in plots if p.name not in figure3]
    if rest:
        lines += ["## Plots", "", *[f"![{p.stem}]({p.name})\n" for p in rest]]
    if n_failed:
        lines += ["## Failed jobs", "", *[f"- {j}" for j in df.loc[df["status"] == "failed", "job"]], ""]
    return lines


def _report_summary(df: pd.DataFrame, n_failed: int, sections, claims) -> dict:
    """report_summary.json: the sweep's counts, its tables and its claims, for machines to read."""
    return {
        "jobs": len(df),
        "failed": n_failed,
        "paper_mode": bool((df["recipe"] == "paper").any()),
        "tables": [key for *_, key in sections],
        "claims": [
            {
                "who": c.who,
                "a": c.a,
                "b": c.b,
                "family": c.family.key,
                "metric": c.metric,
                "difference": c.diff,
                "ci": list(c.ci),
                "verdict": c.verdict,
            }
            for c in claims
        ],
    }


def write_report(sweep_dir: str | Path, logger_cfg=None, n_boot: int = 1000) -> tuple[Path, Path]:
    """results.csv, report.md and the plots of a sweep; with a W&B `logger_cfg` (logger=wandb) also the
    W&B report run, the W&B Report spec, and the published Report when the server is reachable."""
    sweep_dir = Path(sweep_dir)
    jobs = find_jobs(sweep_dir)
    df = add_headline(results_frame(jobs), sweep_layout(jobs))
    with atomic_path(sweep_dir / "results.csv") as tmp:
        df.to_csv(tmp, index=False)
    n_failed = int((df["status"] == "failed").sum())
    notes, sections, shown, plots, claims = build_sections(df, jobs, sweep_dir, n_boot)
    lines = [
        f"# Sweep report: {sweep_dir.name}",
        "",
        f"{len(df)} jobs, {_counts(df)}. Cells are mean ± std over seeds in percent (one seed: its value).",
        "",
        *notes,
    ]
    for title, text, *_ in sections:
        lines += [f"## {title}", "", text, ""]
    lines += claims_markdown(claims)
    lines += datasets_markdown(jobs)
    lines += _closing_lines(df, shown, plots, n_failed)
    tables = {key: table for _, _, _, _, table, key in sections}
    if claims:
        tables["claims"] = pd.DataFrame({"claim": [c.line()[2:] for c in claims]})
    report = sweep_dir / "report.md"
    write_text_atomic(report, "\n".join(lines))
    write_json_atomic(sweep_dir / "report_summary.json", _report_summary(df, n_failed, sections, claims))
    if logger_cfg is not None and logger_cfg.get("name") == "wandb":
        # After report.md and results.csv exist: a W&B problem must not cost the report.
        from .wandb_logger import log_sweep_report

        lines += _wandb_report(sweep_dir, logger_cfg, "\n".join(claims_markdown(claims)) or lines[2], sections)
        write_text_atomic(report, "\n".join(lines))
        log_sweep_report(sweep_dir, logger_cfg, df, plots, report, tables)
    return sweep_dir / "results.csv", report


def _wandb_report(sweep_dir: Path, logger_cfg, intro: str, sections) -> list[str]:
    """Saves the W&B Report spec and publishes it when W&B is online; the report.md lines saying where."""
    from .wandb_logger import check_configured
    from .wandb_report import publish, report_spec, save_spec, section

    spec = report_spec(
        sweep_dir,
        logger_cfg,
        intro,
        [section(title, text, axes, metrics) for title, text, axes, metrics, _, _ in sections],
    )
    path = save_spec(sweep_dir, spec)
    later = f"`python -m syncxr.results {sweep_dir} --publish`"
    if check_configured(logger_cfg.get("mode")) == "online":
        try:
            return ["## W&B report", "", f"Published: {publish(sweep_dir)}", ""]
        except Exception as e:  # noqa: BLE001 - no server: the spec stays, to publish later
            log.warning(f"W&B report not published ({e}); spec in {path}; publish with {later}")
            return [
                "## W&B report",
                "",
                f"Not published ({type(e).__name__}); the spec is {path.name}: publish it with {later}.",
                "",
            ]
    return [
        "## W&B report",
        "",
        f"Offline: the spec is {path.name}; after `wandb sync` of the runs, publish it with {later}.",
        "",
    ]
