"""A Hydra callback that writes the sweep report when a multirun ends."""

from __future__ import annotations

import logging

from hydra.experimental.callback import Callback

log = logging.getLogger(__name__)


class SweepReport(Callback):
    def on_multirun_end(self, config, **kwargs) -> None:
        # Imported here, not when Hydra builds the callback at every start: the report's modules load
        # pandas and torch, which a refused config or a single run need not wait for.
        from .cost import MISSING_HEADING, write_cost_report  # noqa: PLC0415
        from .sweep import write_report  # noqa: PLC0415

        if config.get("dry_run"):
            path = write_cost_report(config.hydra.sweep.dir)
            log.info(f"cost preview: {path}")
            text = path.read_text()
            if MISSING_HEADING in text:  # paper mode: every missing prerequisite of the sweep, on the console
                log.warning(MISSING_HEADING + text.split(MISSING_HEADING, 1)[1])
            return
        csv, md = write_report(config.hydra.sweep.dir, config.get("logger"))
        log.info(f"sweep report: {md} ({csv})")
