"""python -m syncxr.results <sweep dir> [--wandb] [--publish]: results.csv and report.md for a finished
(or partial) sweep; --wandb also logs them to W&B with the sweep's logger settings (multirun.yaml) and
writes the W&B Report spec (published at once when W&B is online); --publish publishes a saved spec
(an offline sweep's, after `wandb sync` of its runs) as a W&B Report."""

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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m syncxr.results", description=__doc__)
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--wandb", action="store_true", help="also log the report to W&B and write the Report spec")
    parser.add_argument(
        "--publish",
        action="store_true",
        help="publish the sweep's saved W&B Report spec (wandb_report.json) to the W&B server",
    )
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap replicates of each claim's interval")
    args = parser.parse_args(argv)
    if args.publish:
        from .wandb_report import publish

        print(publish(args.sweep_dir))
        return
    csv, md = write_report(args.sweep_dir, sweep_logger(args.sweep_dir) if args.wandb else None, args.n_boot)
    print(f"{csv}\n{md}")


if __name__ == "__main__":
    main()
