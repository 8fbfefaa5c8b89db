"""One report over the whole study: the sweeps of the SynCXR study (main_table, sampling,
synthetic_type, entity_ratio, llm, imagegen, ...) together, Tables 1-4 and Figure 3 in the paper's
order, every sweep's claims, the generated datasets, and one W&B Report spec over all their runs.

  python -m syncxr.results DIR1 DIR2 ... [--out DIR] [--publish]
  python -m syncxr.results study.yaml [--publish]      (sweeps: [DIR, ...], out: DIR)

The W&B Report is only written as a spec (wandb_report.json in the output dir): nothing is sent
unless --publish is given (then, or later with `python -m syncxr.results <out dir> --publish`).
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from ..data.dataset_format import write_json_atomic
from ..data.durable import write_text_atomic
from .datasets import datasets_markdown
from .jobs import find_jobs, results_frame
from .layout import sweep_layout
from .sweep import build_sections, claims_markdown
from .tables import add_headline

# The paper's order of the report's sections (their keys; Figure 3's start with "figure3_").
ORDER = ("table1", "table2a", "table2b", "table3a", "table3b", "table4a", "table4b", "figure3_")


def read_study_file(path: Path) -> tuple[list[Path], Path | None]:
    """(sweep dirs, output dir or None) of a study file: YAML with `sweeps` (paths relative to the
    file) and optionally `out`."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    sweeps = data.get("sweeps") if isinstance(data, dict) else None
    if not isinstance(sweeps, list) or not sweeps:
        raise ValueError(f"{path}: a study file lists its sweep dirs under `sweeps:` (a non-empty list)")
    base = Path(path).parent
    out = data.get("out")
    return [base / str(s) for s in sweeps], (base / str(out)) if out else None


def _rank(key: str) -> int:
    return next(i for i, k in enumerate(ORDER + ("",)) if key.startswith(k))


def _sweep_parts(sweep_dir: Path, out_dir: Path, n_boot: int):
    """(notes, [(rank, title, text, axes, metrics, group)], claims lines, jobs) of one sweep; its
    plots go to out_dir/<sweep name>/ and the text links them from there."""
    jobs = find_jobs(sweep_dir)
    df = add_headline(results_frame(jobs), sweep_layout(jobs))
    plot_dir = out_dir / sweep_dir.name
    plot_dir.mkdir(parents=True, exist_ok=True)
    notes, sections, _, plots, claims = build_sections(df, jobs, plot_dir, n_boot)
    parts = []
    for title, text, axes, metrics, _, key in sections:
        for p in plots:
            text = text.replace(f"]({p.name})", f"]({sweep_dir.name}/{p.name})")
        parts.append((_rank(key), f"{title} ({sweep_dir.name})", text, axes, metrics, sweep_dir.name))
    claim_lines = [line.replace("### ", "#### ") for line in claims_markdown(claims)]
    return notes, parts, claim_lines, jobs, len(claims)


def _intro(sweep_dirs: list[Path], n_jobs: int) -> list[str]:
    names = ", ".join(f"`{d.name}`" for d in sweep_dirs)
    return [
        f"{len(sweep_dirs)} sweeps ({names}), {n_jobs} jobs. Each section is one sweep's table (its name in "
        "parentheses), in the paper's order: Tables 1-4, then Figure 3. Cells are mean ± std over seeds in "
        "percent (one seed: its value).",
        "",
    ]


def write_study_report(sweep_dirs: list[Path], out_dir: Path, n_boot: int = 1000, logger_cfg=None) -> Path:
    """report.md, study_summary.json and the W&B Report spec (wandb_report.json) of the whole study in
    `out_dir`; `logger_cfg`: the W&B project and entity of the spec (None: the defaults)."""
    out_dir = Path(out_dir)
    names = [Path(d).name for d in sweep_dirs]
    if len(set(names)) < len(names):  # a sweep's name titles its sections and holds its plots
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"study sweeps must have distinct dir names; given twice: {', '.join(twice)} ({sweep_dirs})")
    out_dir.mkdir(parents=True, exist_ok=True)
    notes, parts, claims, all_jobs, n_claims, how = [], [], [], [], 0, ""
    for sweep_dir in map(Path, sweep_dirs):
        s_notes, s_parts, s_claims, jobs, n = _sweep_parts(sweep_dir, out_dir, n_boot)
        notes += [line for line in s_notes if line and line not in notes]
        parts += s_parts
        if s_claims:  # its heading and how claims are computed (the same for every sweep) once
            how = s_claims[2]
            claims += [f"### {sweep_dir.name}", "", *s_claims[4:]]
        all_jobs += jobs
        n_claims += n
    parts.sort(key=lambda p: p[0])  # stable: within a table, the sweeps in the order given
    lines = [f"# Study report: {out_dir.name}", "", *_intro(sweep_dirs, len(all_jobs))]
    lines += [x for note in notes for x in (note, "")]
    for _, title, text, *_ in parts:
        lines += [f"## {title}", "", text, ""]
    if claims:
        lines += ["## The paper's claims", "", how, "", *claims]
    lines += datasets_markdown(all_jobs)
    report = out_dir / "report.md"
    write_text_atomic(report, "\n".join(lines))
    write_json_atomic(
        out_dir / "study_summary.json",
        {
            "sweeps": [os.fspath(d) for d in sweep_dirs],
            "jobs": len(all_jobs),
            "sections": [title for _, title, *_ in parts],
            "claims": n_claims,
        },
    )
    _save_wandb_spec(out_dir, logger_cfg or {}, "\n".join(claims) or lines[2], parts)
    return report


def _save_wandb_spec(out_dir: Path, logger_cfg: dict, intro: str, parts) -> Path:
    """The study's W&B Report spec: a section per table of each sweep, over that sweep's runs."""
    from .wandb_report import report_spec, save_spec, section  # noqa: PLC0415

    sections = [
        section(title, text, axes, metrics) | {"group": group} for _, title, text, axes, metrics, group in parts
    ]
    spec = report_spec(out_dir, logger_cfg, intro, sections)
    spec["title"] = f"SynCXR study {out_dir.name}"[:128]
    spec["description"] = "Generated by python -m syncxr.results from the study's sweeps."
    return save_spec(out_dir, spec)
