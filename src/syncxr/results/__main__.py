"""python -m syncxr.results <sweep dir> [--wandb] [--publish]: results.csv and report.md for a finished
(or partial) sweep; --wandb also logs them to W&B with the sweep's logger settings (multirun.yaml) and
writes the W&B Report spec (published at once when W&B is online); --publish publishes a saved spec
(an offline sweep's, after `wandb sync` of its runs) as a W&B Report.

python -m syncxr.results DIR1 DIR2 ... [--out DIR] [--publish] (or a study file, YAML with `sweeps:`
and `out:`): one report over the whole study (study.py) in the output dir, with one W&B Report spec,
published only with --publish."""

import argparse
from pathlib import Path

import yaml

from .sweep import write_report

DEFAULT_WANDB = {"name": "wandb", "project": "syncxr", "entity": None, "mode": None, "dir": None, "tags": []}


def sweep_logger(sweep_dir: Path) -> dict:
    """The W&B logger config the sweep ran with, or the defaults of conf/logger/wandb.yaml."""
    path = sweep_dir / "multirun.yaml"
    logger = (yaml.safe_load(path.read_text()) or {}).get("logger") if path.is_file() else None
    return logger if logger and logger.get("name") == "wandb" else dict(DEFAULT_WANDB)


def study(args) -> None:
    """The whole study's report (several sweep dirs, or a study file)."""
    from .study import read_study_file, write_study_report  # noqa: PLC0415
    from .wandb_report import publish  # noqa: PLC0415

    dirs, out = read_study_file(args.paths[0]) if args.paths[0].is_file() else (args.paths, None)
    out = args.out or out or dirs[0].parent / "study"
    report = write_study_report(dirs, out, args.n_boot, sweep_logger(dirs[0]))
    print(report)
    if args.publish:
        print(publish(out))
    else:
        print(
            f"W&B Report spec: {out / 'wandb_report.json'}; publish it with `python -m syncxr.results {out} --publish`"
        )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m syncxr.results", description=__doc__)
    parser.add_argument("paths", type=Path, nargs="+", help="a sweep dir; several, or a study file: the study")
    parser.add_argument(
        "--out",
        type=Path,
        help="the study report's dir (default: the study file's `out`, else <first sweep's parent>/study)",
    )
    parser.add_argument("--wandb", action="store_true", help="also log the report to W&B and write the Report spec")
    parser.add_argument(
        "--publish",
        action="store_true",
        help="publish the sweep's saved W&B Report spec (wandb_report.json) to the W&B server; for a study, "
        "build its report, then publish it",
    )
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap replicates of each claim's interval")
    args = parser.parse_args(argv)
    if len(args.paths) > 1 or args.paths[0].is_file():
        study(args)
        return
    sweep_dir = args.paths[0]
    if args.publish:
        from .wandb_report import publish

        print(publish(sweep_dir))
        return
    csv, md = write_report(sweep_dir, sweep_logger(sweep_dir) if args.wandb else None, args.n_boot)
    print(f"{csv}\n{md}")


if __name__ == "__main__":
    main()
