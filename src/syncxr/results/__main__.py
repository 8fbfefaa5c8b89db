"""python -m syncxr.results <sweep dir> [--wandb]: results.csv and report.md for a finished (or partial)
sweep; --wandb also logs them to W&B with the sweep's logger settings (multirun.yaml)."""

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
    parser.add_argument("--wandb", action="store_true", help="also log the report to W&B")
    args = parser.parse_args(argv)
    csv, md = write_report(args.sweep_dir, sweep_logger(args.sweep_dir) if args.wandb else None)
    print(f"{csv}\n{md}")


if __name__ == "__main__":
    main()
