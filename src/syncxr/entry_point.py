"""How the entry points (train.py, generate.py, evaluate.py, analyze.py) meet a bad config: one line on
stderr naming the key and what it may be, exit status 2, no traceback. A secret on the command line is
refused before Hydra composes anything (Hydra would resolve it into the run directory's name first,
and print its own traceback); every other value is checked by config_validation once composed."""

from __future__ import annotations

import functools
import sys

from .config import ConfigError, refuse_secrets
from .config_validation import validate

EXIT_CONFIG_ERROR = 2  # as argparse exits on a bad command line


def _exit(error: ConfigError):
    print(f"error: {error}", file=sys.stderr)
    raise SystemExit(EXIT_CONFIG_ERROR)


def validated(task):
    """Under @hydra.main: the task gets only a valid config. SystemExit passes through Hydra's error
    report (which catches Exception and prints the traceback)."""

    @functools.wraps(task)
    def checked(cfg):
        try:
            validate(cfg)
            return task(cfg)
        except ConfigError as e:
            _exit(e)

    return checked


def run(main, argv=None) -> None:
    """`main` (a @hydra.main function) with the command line's overrides, secrets refused first."""
    try:
        refuse_secrets(a for a in (sys.argv[1:] if argv is None else argv) if not a.startswith("-"))
    except ConfigError as e:
        _exit(e)
    main()
