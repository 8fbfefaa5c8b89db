"""A Hydra callback that writes the sweep report when a multirun ends."""

from __future__ import annotations

import logging

from hydra.experimental.callback import Callback

from .cost import MISSING_HEADING, write_cost_report
from .sweep import write_report

log = logging.getLogger(__name__)


class SweepReport(Callback):
    def on_multirun_end(self, config, **kwargs) -> None:
        if config.get("dry_run"):
            path = write_cost_report(config.hydra.sweep.dir)
            log.info(f"cost preview: {path}")
            text = path.read_text()
            if MISSING_HEADING in text:  # paper mode: every missing prerequisite of the sweep, on the console
                log.warning(MISSING_HEADING + text.split(MISSING_HEADING, 1)[1])
            return
        csv, md = write_report(config.hydra.sweep.dir, config.get("logger"))
        log.info(f"sweep report: {md} ({csv})")
