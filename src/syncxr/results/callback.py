"""A Hydra callback that writes the sweep report when a multirun ends."""

from __future__ import annotations

import logging

from hydra.experimental.callback import Callback

from .cost import write_cost_report
from .sweep import write_report

log = logging.getLogger(__name__)


class SweepReport(Callback):
    def on_multirun_end(self, config, **kwargs) -> None:
        if config.get("dry_run"):
            log.info(f"cost preview: {write_cost_report(config.hydra.sweep.dir)}")
            return
        csv, md = write_report(config.hydra.sweep.dir, config.get("logger"))
        log.info(f"sweep report: {md} ({csv})")
