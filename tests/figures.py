"""An inspection hook for plots: the matplotlib Figures that code under test saves, so a test checks
what a plot shows (panels, lines, their data), not only that a file was written."""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def recorded_figures():
    """Yields {file name: Figure} of every Figure saved inside the block, the last one of each name
    (code may save into a temporary directory that it then renames; closing a figure keeps its axes
    and artists readable)."""
    from matplotlib.figure import Figure  # noqa: PLC0415

    saved: dict[str, Figure] = {}
    original = Figure.savefig

    def savefig(self, fname, *args, **kwargs):
        # An atomic write saves to ".<name>.<hex>.tmp" beside the file: record it under <name>.
        saved[re.sub(r"^\.(.+)\.[0-9a-f]{32}\.tmp$", r"\1", Path(fname).name)] = self
        return original(self, fname, *args, **kwargs)

    Figure.savefig = savefig
    try:
        yield saved
    finally:
        Figure.savefig = original


def lines_by_label(ax) -> dict[str, list[float]]:
    """The y data of each labelled line of an Axes."""
    return {line.get_label(): [float(y) for y in line.get_ydata()] for line in ax.get_lines()}
